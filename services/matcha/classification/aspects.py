"""Aspect-level sentiment: which clauses of a text mention each aspect, and their polarity.

A text is cut into clauses (sentences, then contrast: "but", "however", "mais", "par contre", ...);
a clause that mentions two aspects is cut again at the comma or "and"/"et" between their mentions
("great coffee and slow delivery"). Each clause that mentions an aspect is scored by the service's
sentiment model, and an aspect's polarity is the mean over its clauses. Aspects are found by their
terms only: a clause that names no term is not attributed to any aspect.
"""

import itertools
import re
from dataclasses import dataclass, field

from matcha.classification.sentiment import POLARITIES, ModelRef, SentimentScore

# Words that turn a sentence: what follows is judged apart from what precedes.
ENGLISH_CONTRASTS = (
    "but",
    "however",
    "although",
    "even though",
    "whereas",
    "on the other hand",
    "except that",
    "apart from that",
    "that said",
    "nevertheless",
    "nonetheless",
)
FRENCH_CONTRASTS = (
    "mais",
    "par contre",
    "en revanche",
    "cependant",
    "pourtant",
    "toutefois",
    "néanmoins",
    "alors que",
    "tandis que",
    "sauf que",
    "bien que",
    "quoique",
    "par ailleurs",
    "en dehors de ça",
    "à part ça",
)
# Sentence ends, and semicolons, which join two statements.
_SENTENCE_END = re.compile(r"[.!?;…]+(?=\s|$)|\n+")
_CONTRAST = re.compile(
    r"(?<!\w)(?:"
    + "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ENGLISH_CONTRASTS + FRENCH_CONTRASTS)
    + r")(?!\w)",
    re.IGNORECASE,
)
# "nothing but praise", "not only the coffee but also the delivery", "non seulement ... mais aussi": no turn.
_NOT_A_TURN_BEFORE = re.compile(r"(?:nothing|anything|rien)\W*$", re.IGNORECASE)
_NOT_A_TURN_AFTER = re.compile(r"\s*(?:also|aussi)(?!\w)", re.IGNORECASE)
# Where a clause that mentions two aspects is cut, between their mentions.
_LIST_BREAK = re.compile(r",|:|\s[-\u2013\u2014]\s|\(|\)|(?<!\w)(?:and|et)(?!\w)", re.IGNORECASE)
# Dashes and quotes included.
_TRIM = " \t\r\n,:;-\u2013\u2014()\"'\u00ab\u00bb"


@dataclass(frozen=True)
class Aspect:
    label: str
    terms: tuple[str, ...] = ()

    def pattern(self) -> re.Pattern[str]:
        """The label and terms as whole words, any case, an optional plural ("prices", "prix", "gâteaux")."""
        phrases = sorted({self.label.strip(), *(term.strip() for term in self.terms)} - {""}, key=len, reverse=True)
        alternatives = "|".join(re.escape(phrase).replace(r"\ ", r"\s+") for phrase in phrases)
        return re.compile(rf"(?<!\w)(?:{alternatives})(?:s|es|x)?(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class AspectSentiment:
    aspect: str
    label: str
    negative: float
    neutral: float
    positive: float
    evidence: list[Span]
    model: ModelRef


@dataclass
class _Clause:
    span: Span
    aspects: list[int] = field(default_factory=list)


def _trimmed(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start] in _TRIM:
        start += 1
    while end > start and text[end - 1] in _TRIM:
        end -= 1
    return Span(start, end) if start < end else None


def clauses(text: str) -> list[Span]:
    """Sentences cut at contrast words; the contrast word itself belongs to neither side."""
    spans = []
    sentence_start = 0
    sentence_ends = [match.span() for match in _SENTENCE_END.finditer(text)] + [(len(text), len(text))]
    for sentence_end, next_start in sentence_ends:
        start = sentence_start
        for match in _CONTRAST.finditer(text, sentence_start, sentence_end):
            # "the delivery, however, was slow": an aside, not a turn.
            parenthetical = text[match.end() : sentence_end].lstrip().startswith(",") and text[
                sentence_start : match.start()
            ].rstrip().endswith(",")
            if (
                parenthetical
                or _NOT_A_TURN_BEFORE.search(text, sentence_start, match.start())
                or _NOT_A_TURN_AFTER.match(text, match.end())
            ):
                continue
            if span := _trimmed(text, start, match.start()):
                spans.append(span)
            start = match.end()
        if span := _trimmed(text, start, sentence_end):
            spans.append(span)
        sentence_start = next_start
    return spans


def _mentions(text: str, span: Span, patterns: list[re.Pattern[str]]) -> list[tuple[int, int]]:
    """(offset, aspect index) of every mention in the span, in text order."""
    found = [
        (match.start(), index)
        for index, pattern in enumerate(patterns)
        for match in pattern.finditer(text, span.start, span.end)
    ]
    return sorted(found)


def _split_between_aspects(text: str, span: Span, mentions: list[tuple[int, int]]) -> list[_Clause]:
    """A clause naming several aspects, cut at the last list break before each change of aspect."""
    pieces: list[_Clause] = []
    start = span.start
    current = _Clause(span)
    for (offset, aspect), (next_offset, next_aspect) in itertools.pairwise(mentions):
        if aspect not in current.aspects:
            current.aspects.append(aspect)
        if next_aspect == aspect:
            continue
        breaks = list(_LIST_BREAK.finditer(text, offset, next_offset))
        if not breaks:
            continue
        cut = breaks[-1]
        if piece := _trimmed(text, start, cut.start()):
            pieces.append(_Clause(piece, current.aspects))
        start = cut.end()
        current = _Clause(span)
    if mentions and mentions[-1][1] not in current.aspects:
        current.aspects.append(mentions[-1][1])
    if piece := _trimmed(text, start, span.end):
        pieces.append(_Clause(piece, current.aspects))
    return pieces


def aspect_clauses(text: str, aspects: list[Aspect]) -> list[tuple[Span, list[int]]]:
    """The clauses of `text` that mention aspects, with the indexes of the aspects each mentions."""
    patterns = [aspect.pattern() for aspect in aspects]
    found = []
    for span in clauses(text):
        mentions = _mentions(text, span, patterns)
        if not mentions:
            continue
        for clause in _split_between_aspects(text, span, mentions):
            if clause.aspects:
                found.append((clause.span, clause.aspects))
    return found


def aspect_sentiments(
    found: list[list[tuple[Span, list[int]]]], aspects: list[Aspect], scores: list[SentimentScore]
) -> list[list[AspectSentiment]]:
    """Per text, the aspects it mentions in task order. `found` is `aspect_clauses` of every text, `scores`
    the sentiment of each of their clauses, in the same order."""
    remaining = iter(scores)
    results = []
    for spans in found:
        per_aspect: dict[int, list[tuple[Span, SentimentScore]]] = {}
        for span, indexes in spans:
            clause_score = next(remaining)
            for index in indexes:
                per_aspect.setdefault(index, []).append((span, clause_score))
        results.append([_mean(aspects[index].label, per_aspect[index]) for index in sorted(per_aspect)])
    return results


def _mean(label: str, scored: list[tuple[Span, SentimentScore]]) -> AspectSentiment:
    count = len(scored)
    negative = sum(score.negative for _, score in scored) / count
    neutral = sum(score.neutral for _, score in scored) / count
    positive = sum(score.positive for _, score in scored) / count
    labels = {score.label for _, score in scored}
    # Clauses that agree keep the model's own label (the French lexicon's has a band around 0); mixed
    # evidence takes the most likely polarity of the mean.
    shares = (negative, neutral, positive)
    best = labels.pop() if len(labels) == 1 else POLARITIES[max(range(3), key=shares.__getitem__)]
    return AspectSentiment(label, best, negative, neutral, positive, [span for span, _ in scored], scored[0][1].model)
