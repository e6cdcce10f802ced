"""The personal-data detection engine: validated patterns, phone numbering plans, NER and context rules.

One engine per process (its NER pipelines weigh tens of megabytes); it is thread-safe and keeps no text.
Time is linear in the input: every detector is a single pass, and overlaps are settled on a character mask
rather than by comparing findings with each other.
"""

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wordfreq import zipf_frequency

from matcha.runtime.errors import FieldViolation, InvalidArgument
from matcha.runtime.pii import patterns, rules
from matcha.runtime.pii.kinds import (
    ADDRESS,
    AGE,
    ALL_KINDS,
    DATE_OF_BIRTH,
    EMAIL,
    FR_NIR,
    IBAN,
    IP_ADDRESS,
    PAYMENT_CARD,
    PERSON,
    PHONE,
    URL_TOKEN,
    Finding,
)
from matcha.runtime.pii.language import (
    DEFAULT_LANGUAGE,
    LanguageIdentifier,
    ModelInfo,
    Pipelines,
    pipeline_versions,
)

ENGINE_NAME = "matcha-pii"
ENGINE_VERSION = "1.0.0"
# Findings at least this sure make a record PERSONAL on ingestion (redaction takes every finding).
DISCOVERY_MIN_SCORE = 0.7
# spaCy's own limit per document; longer texts are refused rather than cut (a cut could split a name).
MAX_TEXT_CHARS = 1_000_000
# Texts are fed to the NER by paragraph, in chunks of at most this size (the model's cost is per token).
_CHUNK_CHARS = 5_000
# Settles overlaps: checksum-backed kinds first, then the structured ones, then what rests on a model.
_PRIORITY = {
    kind: rank
    for rank, kind in enumerate(
        [URL_TOKEN, EMAIL, IBAN, FR_NIR, PAYMENT_CARD, DATE_OF_BIRTH, ADDRESS, IP_ADDRESS, PHONE, PERSON, AGE]
    )
}
PLACEHOLDER = re.compile(r"\[(?:" + "|".join(sorted(ALL_KINDS)) + r")_[0-9a-f]{10}\]")
# A capitalised word: without one there is no name for the NER to find.
_CAPITALISED = re.compile(r"[A-ZÀ-ÖØ-ÞŁŒŠŽ][a-zà-öø-ÿłœšž]")
_PARAGRAPH = re.compile(r"[^\n]+")
_NER_PERSON_LABELS = frozenset({"PERSON", "PER"})
# Words an NER span may start with that are not part of the name ("Bonjour Mme Dupont", "Dear Anna").
_LEADING_NON_NAMES = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "dear",
        "thanks",
        "thank",
        "cc",
        "attn",
        "re",
        "fw",
        "fwd",
        "call",
        "email",
        "mail",
        "ask",
        "contact",
        "bonjour",
        "bonsoir",
        "salut",
        "coucou",
        "cher",
        "chère",
        "chers",
        "chères",
        "merci",
        "rappeler",
        "appeler",
        "contacter",
        "relancer",
        "madame",
        "monsieur",
        "mademoiselle",
        "hola",
        "ciao",
        "hallo",
        "liebe",
        "lieber",
    ]
)
# A single capitalised word after a determiner names a thing ("the Morgan bag", "le modèle Austin").
_DETERMINER_BEFORE = re.compile(
    r"(?i)\b(?:(?:the|our|your|this|that|a|an|new|le|la|les|un|une|notre|votre|nos|vos|ce|cette|du|des|au|aux)"
    r"(?:\s+(?!client|cliente|customer|docteur|doctor|conseill|vendeu|livreur|fils|fille|ami|amie|madame|monsieur)"
    r"[a-zà-ÿ]{3,})?|modèle|model|collection|gamme|range|line)\s+$"
)
_WORD_AT = re.compile(r"[\w'\u2019-]+")
# wordfreq's Zipf scale: 4.4 is about 25 per million words ("rappel", "grace"); most given names are rarer.
_COMMON_WORD_ZIPF = 4.4
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*)\W*$")
_MASK = "\u25a0"
# A sentence end, with the word before it: "M.", "Dr." or "St." end no sentence.
_SENTENCE_END = re.compile(r"(\S*?)[.!?]+\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


@dataclass(frozen=True)
class EngineInfo:
    """What the audit ledger records of the detector that ran."""

    name: str
    version: str
    # The NER pipelines (package and version); empty for a patterns-only engine.
    models: tuple[ModelInfo, ...]

    def __str__(self) -> str:
        if not self.models:
            return f"{self.name} {self.version} (patterns)"
        return f"{self.name} {self.version} ({', '.join(f'{model.name} {model.version}' for model in self.models)})"


class PiiEngine:
    def __init__(
        self, *, ner: bool = True, max_text_chars: int = MAX_TEXT_CHARS, cached_sentences: int = 20_000
    ) -> None:
        self.max_text_chars = max_text_chars
        self._languages = LanguageIdentifier()
        self._pipelines = Pipelines() if ner else None
        self._cache: OrderedDict[bytes, tuple[tuple[int, int], ...]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cached_sentences = cached_sentences
        self.info = EngineInfo(ENGINE_NAME, ENGINE_VERSION, pipeline_versions() if ner else ())

    def language(self, text: str) -> str:
        return self._languages.identify(text)

    def analyze(self, text: str, kinds: Iterable[str] = ALL_KINDS, *, language: str | None = None) -> list[Finding]:
        """Non-overlapping findings of `kinds`, by position. `language` ("en", "fr") skips identification."""
        return self.analyze_many([text], kinds, language=language, field="text")[0]

    def analyze_many(
        self,
        texts: Sequence[str],
        kinds: Iterable[str] = ALL_KINDS,
        *,
        language: str | None = None,
        field: str = "texts",
    ) -> list[list[Finding]]:
        """`analyze` over many texts, their NER run in batches. `field` names the texts in a refusal."""
        too_long = [
            FieldViolation(
                field if field == "text" else f"{field}[{index}]", f"at most {self.max_text_chars} characters"
            )
            for index, text in enumerate(texts)
            if len(text) > self.max_text_chars
        ]
        if too_long:
            raise InvalidArgument("text too long for personal-data detection", violations=too_long)
        wanted = frozenset(kinds) & ALL_KINDS
        # Placeholders become an opaque run of one symbol, same length: no rule or model reads a name into them,
        # nor across them ("signed by [PERSON_...], IBAN ..." must not make "IBAN" a name).
        masked = [PLACEHOLDER.sub(lambda match: _MASK * len(match[0]), text) if "[" in text else text for text in texts]
        # One identification per text (its first 2,000 characters); paragraphs of a longer text get their own.
        languages = [
            language or (self.language(text[:2000]) if _CAPITALISED.search(text) else DEFAULT_LANGUAGE)
            for text in masked
        ]
        persons = (
            self._ner_persons(masked, languages, fixed=language is not None)
            if PERSON in wanted or AGE in wanted
            else [[] for _ in texts]
        )
        return [
            self._settle(text, masked_text, wanted, text_language, names)
            for text, masked_text, text_language, names in zip(texts, masked, languages, persons, strict=True)
        ]

    # -- NER -----------------------------------------------------------------------------------

    def _ner_persons(self, texts: list[str], languages: list[str], *, fixed: bool) -> list[list[Finding]]:
        found: list[list[Finding]] = [[] for _ in texts]
        titled = [
            [*rules.titled_persons(text), *rules.greeted_persons(text), *rules.cued_persons(text)]
            if _CAPITALISED.search(text)
            else []
            for text in texts
        ]
        pipelines = self._pipelines
        if pipelines is None:
            return titled
        # Sentences are the model's units: cached by digest (a plan's steps and a run's retries redact the same
        # inputs again), and skipped when no word in them could be a name.
        batches: dict[str, list[tuple[int, int, str]]] = {}
        for index, text in enumerate(texts):
            if not _CAPITALISED.search(text) or _is_binary(text):
                continue
            paragraphs = list(_chunks(text))
            whole = languages[index] if fixed or len(paragraphs) < 2 else None
            for offset, paragraph in paragraphs:
                if not _CAPITALISED.search(paragraph):
                    continue
                code = whole or self.language(paragraph)
                for start, sentence in _sentences(paragraph):
                    if _may_hold_a_name(sentence, code):
                        batches.setdefault(code, []).append((index, offset + start, sentence))
        for code, units in batches.items():
            spans = self._person_spans(pipelines, code, [sentence for _, _, sentence in units])
            for (index, offset, sentence), sentence_spans in zip(units, spans, strict=True):
                for entity_start, entity_end in sentence_spans:
                    finding = _person(sentence, entity_start, entity_end, offset, code)
                    if finding is not None:
                        found[index].append(finding)
        return [titled_here + found_here for titled_here, found_here in zip(titled, found, strict=True)]

    def _person_spans(
        self, pipelines: Pipelines, language: str, sentences: list[str]
    ) -> list[tuple[tuple[int, int], ...]]:
        """The NER's person spans per sentence; the cache keeps digests and offsets, never text."""
        keys = [
            hashlib.blake2b(f"{language}\x00{sentence}".encode(), digest_size=16).digest() for sentence in sentences
        ]
        with self._cache_lock:
            known = {key: self._cache[key] for key in keys if key in self._cache}
            for key in known:
                self._cache.move_to_end(key)
        missing = {key: sentence for key, sentence in zip(keys, sentences, strict=True) if key not in known}
        if missing:
            nlp = pipelines.get(language)
            for key, doc in zip(missing, nlp.pipe(missing.values()), strict=True):
                known[key] = tuple(
                    (entity.start_char, entity.end_char) for entity in doc.ents if entity.label_ in _NER_PERSON_LABELS
                )
            with self._cache_lock:
                for key in missing:
                    self._cache[key] = known[key]
                while len(self._cache) > self._cached_sentences:
                    self._cache.popitem(last=False)
        return [known[key] for key in keys]

    # -- combining -------------------------------------------------------------------------------

    def _settle(
        self, text: str, masked: str, wanted: frozenset[str], language: str, persons: list[Finding]
    ) -> list[Finding]:
        candidates: list[Finding] = [finding for _, finding in patterns.validated_findings(masked, wanted)]
        if DATE_OF_BIRTH in wanted:
            candidates.extend(rules.dates_of_birth(masked))
        if ADDRESS in wanted or PERSON in wanted:
            found_addresses = list(rules.addresses(masked))
            candidates.extend(found_addresses)
            persons = [*persons, *rules.addressees(masked, found_addresses)]
        if PHONE in wanted:
            candidates.extend(patterns.phone_findings(masked, language))
        if IP_ADDRESS in wanted:
            candidates.extend(patterns.ip_findings(masked))
        if PERSON in wanted:
            contacts = [finding for finding in candidates if finding.kind in (PHONE, EMAIL)]
            candidates.extend(persons)
            candidates.extend(rules.companions(masked, persons, contacts))
        if AGE in wanted:
            candidates.extend(rules.ages(masked, persons))
        candidates.sort(key=lambda finding: (_PRIORITY[finding.kind], finding.start, -finding.end))
        taken = bytearray(len(text))
        kept: list[Finding] = []
        for finding in candidates:
            if finding.kind not in wanted or taken.find(1, finding.start, finding.end) != -1:
                continue
            if masked is not text and _MASK in masked[finding.start : finding.end]:
                continue
            taken[finding.start : finding.end] = b"\x01" * (finding.end - finding.start)
            kept.append(
                Finding(finding.kind, finding.start, finding.end, text[finding.start : finding.end], finding.score)
            )
        kept.sort(key=lambda finding: finding.start)
        return kept


def _chunks(text: str):
    """(offset, piece) by paragraph, long paragraphs cut at a sentence end or a space."""
    for paragraph in _PARAGRAPH.finditer(text):
        start, end = paragraph.span()
        while end - start > _CHUNK_CHARS:
            cut = max(text.rfind(". ", start, start + _CHUNK_CHARS), text.rfind(" ", start, start + _CHUNK_CHARS))
            cut = cut + 1 if cut > start else start + _CHUNK_CHARS
            yield start, text[start:cut]
            start = cut
        if text[start:end].strip():
            yield start, text[start:end]


def _sentences(paragraph: str):
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        if len(match[1]) <= 3 and match[1][:1].isupper():
            continue
        yield start, paragraph[start : match.end()]
        start = match.end()
    if paragraph[start:].strip():
        yield start, paragraph[start:]


def _may_hold_a_name(sentence: str, language: str) -> bool:
    """A capitalised word after the first, or a first word that is not a common one ("Camille called")."""
    words = _CAPITALISED.finditer(sentence)
    first = next(words, None)
    if first is None:
        return False
    if sentence[: first.start()].strip(" \t\"'([-\u2013\u2014*#@"):
        return True
    if next(words, None) is not None:
        return True
    # The whole word the capitalised start belongs to.
    whole = _WORD_AT.match(sentence, first.start())
    word = whole[0] if whole else first[0]
    return zipf_frequency(word.lower(), language) < _COMMON_WORD_ZIPF


def _is_binary(text: str) -> bool:
    """Decoded bytes rather than language: the NER would only read noise."""
    sample = text[:4096]
    return "\x00" in sample or len(_CONTROL.findall(sample)) > len(sample) // 20


def _person(chunk: str, start: int, end: int, offset: int, language: str) -> Finding | None:
    value = chunk[start:end]
    start += rules.strip_title(value)
    words = chunk[start:end].split()
    while words and words[0].lower().strip(",.!:;") in _LEADING_NON_NAMES:
        start = chunk.index(words[0], start) + len(words[0])
        start += len(chunk[start:end]) - len(chunk[start:end].lstrip(" ,.!:;"))
        start += rules.strip_title(chunk[start:end])
        words = chunk[start:end].split()
    value = chunk[start:end].rstrip(" ,.;:!?'\u2019")
    if value.endswith(("'s", "\u2019s")):
        value = value[:-2]
    if not value or not value[0].isupper() or any(char.isdigit() or char in "@/#_[]" for char in value):
        return None
    if len(words) == 1 and (value.isupper() or _DETERMINER_BEFORE.search(chunk[max(0, start - 30) : start])):
        return None
    # Beside a placeholder the model reads a name into its neighbours ("Livraison à [PERSON_...]").
    if len(words) == 1 and _MASK in chunk[max(0, start - 8) : start + len(value) + 8]:
        return None
    # A lone capitalised word opening a sentence is most often a common word ("Viens nous voir", "Gift message").
    if (
        len(words) == 1
        and _SENTENCE_START.search(chunk[:start])
        and zipf_frequency(value.lower(), language) >= _COMMON_WORD_ZIPF
    ):
        return None
    # A lone word is a name far less surely than a first and last name together.
    return Finding(PERSON, offset + start, offset + start + len(value), value, 0.85 if len(words) > 1 else 0.6)
