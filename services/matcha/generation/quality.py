"""Automatic quality checks of a draft, the same for every backend.

Plain Python over text: language, fluency (words unknown to the language's wordfreq list),
repeated n-grams, length against the requested length, grounding (figures, dates and names
that appear in none of the sources) and personal data. Each check yields a measure and, past
the tenant's threshold, a flag with the spans a reviewer should look at.
"""

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

import wordfreq

from matcha.generation.facts import MONTH_NAMES
from matcha.generation.voice import Flag, detect_language
from matcha.runtime.pii import Finding

# Languages a draft can be asked for and checked in (those wordfreq and the voice rules know well).
CheckedLanguage = Literal["en", "fr"]
CHECKED_LANGUAGES: tuple[CheckedLanguage, ...] = get_args(CheckedLanguage)
LANGUAGE_NAMES = {"en": "English", "fr": "French"}
# The instruction in the language asked for: small models follow it better than one in English.
LANGUAGE_INSTRUCTIONS = {
    "en": "Write your reply in English only.",
    "fr": "Rédige ta réponse uniquement en français.",
}
REPEATED_NGRAM = 3
# Personal-data kinds of the detector, as ContentFlag codes.
PII_CODES = {
    "EMAIL": "pii.email",
    "PHONE": "pii.phone",
    "IBAN": "pii.iban",
    "PAYMENT_CARD": "pii.payment_card",
    "FR_NIR": "pii.national_id",
    "IP_ADDRESS": "pii.ip_address",
    "URL_TOKEN": "pii.url_token",
}

WORD_SPAN = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*", re.UNICODE)
MONTHS = {
    "en": "january|february|march|april|may|june|july|august|september|october|november|december",
    "fr": "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre|decembre",
}
_MONTH = "|".join(MONTHS.values())
# A figure with what makes it a claim: a currency, a percentage, a unit of time, or a month (a date).
NUMBER = r"\d+(?:[ \u00a0\u202f]\d{3})*(?:[.,]\d+)?"
CLAIM = re.compile(
    rf"(?:[€$£]\s?{NUMBER}|{NUMBER}\s?(?:€|\$|£|eur\b|euros?\b|%|pour ?cent\b|percent\b)"
    rf"|\b\d{{1,2}}(?:er)?\s+(?:{_MONTH})\b(?:\s+\d{{4}})?|\b(?:{_MONTH})\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"
    rf"|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b|\b{NUMBER}\b)",
    re.IGNORECASE,
)
# "1." or "2)" opening a line numbers a list, it claims nothing.
LIST_MARKER = re.compile(r"(?<![^\n])\d{1,2}[.)]\s")
# Capitalised words that are not a sentence's first word: candidate product, brand or place names.
SENTENCE_START = re.compile(r"(?:^|[.!?…:\n]\s*|[\"«“]\s*)$")
# Common words are not names even when capitalised (titles, emphasis).
COMMON_WORD_ZIPF = 4.5


@dataclass(frozen=True)
class Thresholds:
    """Where a measure starts to flag a draft (per tenant, in settings)."""

    min_voice_score: float = 45.0
    max_unknown_word_share: float = 0.03
    max_repeated_ngram_share: float = 0.15
    min_length_ratio: float = 0.5
    max_length_ratio: float = 1.6
    max_unsupported_claims: int = 0
    max_personal_data: int = 0


@dataclass(frozen=True)
class Sources:
    """What a draft may state: the brief, the facts and the brand's own passages."""

    texts: tuple[str, ...]
    # Indexes of the texts, built once.
    _words: set[str] = field(init=False, repr=False, compare=False)
    _claims: set[str] = field(init=False, repr=False, compare=False)
    _numbers: set[str] = field(init=False, repr=False, compare=False)
    _dates: set[tuple[int, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        joined = "\n".join(self.texts)
        object.__setattr__(self, "_words", {_fold(word) for word in WORD_SPAN.findall(joined)})
        object.__setattr__(self, "_claims", {_claim_key(match[0]) for match in CLAIM.finditer(joined)})
        object.__setattr__(self, "_numbers", {_number_key(number) for number in re.findall(NUMBER, joined)})
        object.__setattr__(self, "_dates", set(_dates(joined)))

    def knows_word(self, word: str) -> bool:
        return _fold(word) in self._words

    def supports(self, claim: str) -> bool:
        if not any(char.isdigit() for char in claim):
            return all(self.knows_word(word) for word in WORD_SPAN.findall(claim))
        if _claim_key(claim) in self._claims:
            return True
        dates = _dates(claim)
        if dates:
            # A date is supported by the same day of the same month, whatever the language or the year.
            return all(day in self._dates for day in dates)
        # "12,90 €" is supported by a source that says "12.90" or "€12,90": the figures must all be there.
        figures = [_number_key(number) for number in re.findall(NUMBER, claim)]
        return bool(figures) and all(figure in self._numbers for figure in figures)


@dataclass(frozen=True)
class QualityReport:
    language: str
    detected_language: str
    language_match: bool
    word_count: int
    unknown_word_share: float
    unknown_words: list[str]
    repeated_ngram_share: float
    target_words: int
    length_ratio: float
    unsupported_claims: list[str]
    personal_data: int
    voice_score: float | None
    flags: list[Flag] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Codes of the checks below threshold (flags of WARNING or ERROR)."""
        return sorted({flag.code for flag in self.flags if flag.severity != "INFO"})

    @property
    def overall(self) -> float:
        """0-100: what selection maximises once the number of failed checks is equal."""
        fluency = max(0.0, 1.0 - 10.0 * self.unknown_word_share)
        repetition = max(0.0, 1.0 - 2.0 * self.repeated_ngram_share)
        length = 1.0 if not self.target_words else max(0.0, 1.0 - abs(1.0 - self.length_ratio))
        grounding = 1.0 / (1.0 + len(self.unsupported_claims))
        voice = 0.5 if self.voice_score is None else self.voice_score / 100.0
        language = 1.0 if self.language_match else 0.0
        return 100.0 * (
            0.25 * language + 0.25 * fluency + 0.1 * repetition + 0.1 * length + 0.1 * grounding + 0.2 * voice
        )

    @property
    def rank(self) -> tuple[int, float, float]:
        """Sort key, best first: right language, the lightest failed checks, then the overall score."""
        return (0 if self.language_match else 1, failure_weight(self.failed), -self.overall)


# What a failed check costs a candidate in selection: a reader stumbles on garbled words, invented
# figures, loops and personal data before a sentence a little long for the brand.
FAILURE_WEIGHTS = {
    "quality.unknown_words": 3.0,
    "quality.unsupported_claim": 2.0,
    "quality.repetition": 2.0,
    "quality.length": 1.0,
    "quality.low_voice_score": 1.0,
}
DEFAULT_FAILURE_WEIGHT = 0.5


def failure_weight(failed: list[str]) -> float:
    return sum(FAILURE_WEIGHTS.get(code, 2.0 if code.startswith("pii.") else DEFAULT_FAILURE_WEIGHT) for code in failed)


def brief_language(text: str, languages: tuple[str, ...] = CHECKED_LANGUAGES) -> str:
    """The language among `languages` whose words are most frequent in the text."""
    words = [word.lower() for word in WORD_SPAN.findall(text)][:400]
    if not words:
        return languages[0]
    return max(languages, key=lambda language: sum(wordfreq.zipf_frequency(word, language) for word in words))


def assess(
    text: str,
    *,
    language: str,
    sources: Sources,
    thresholds: Thresholds,
    target_words: int = 0,
    voice_score: float | None = None,
    voice_flags: list[Flag] | None = None,
    personal_data: Callable[[str], list[Finding]] = lambda text: [],
) -> QualityReport:
    """`personal_data` is the runtime's detection engine (its `analyze`)."""
    flags: list[Flag] = list(voice_flags or [])
    spans = [(match.start(), match.end(), match[0]) for match in WORD_SPAN.finditer(text)]
    words = [word.lower() for _, _, word in spans]
    detected = detect_language(words) if words else language
    match = detected == language
    if not match:
        flags.append(
            Flag(
                "quality.wrong_language",
                f"written in {_language_name(detected)}, asked for {_language_name(language)}",
                "ERROR",
            )
        )

    unknown = [(start, end, word) for start, end, word in spans if _unknown(word, language, sources)]
    share = len(unknown) / len(spans) if spans else 0.0
    if share > thresholds.max_unknown_word_share:
        flags.append(
            Flag(
                "quality.unknown_words",
                f"{share:.1%} of the words are not {LANGUAGE_NAMES.get(language, language)} "
                f"(at most {thresholds.max_unknown_word_share:.0%}): "
                + ", ".join(dict.fromkeys(word for _, _, word in unknown[:12])),
                "WARNING",
                [(start, end) for start, end, _ in unknown],
            )
        )

    repeated_share, repeated_spans = _repetition(spans)
    if repeated_share > thresholds.max_repeated_ngram_share:
        flags.append(
            Flag(
                "quality.repetition",
                f"{repeated_share:.0%} of the {REPEATED_NGRAM}-word sequences repeat an earlier one",
                "WARNING",
                repeated_spans,
            )
        )

    ratio = len(spans) / target_words if target_words else 0.0
    if target_words and not thresholds.min_length_ratio <= ratio <= thresholds.max_length_ratio:
        flags.append(
            Flag(
                "quality.length",
                f"{len(spans)} words for the {target_words} asked",
                "WARNING",
            )
        )

    findings = personal_data(text)
    claims = [
        (start, end, claim)
        for start, end, claim in _claims(text, spans, language)
        if not sources.supports(claim) and not any(start < f.end and f.start < end for f in findings)
    ]
    if len(claims) > thresholds.max_unsupported_claims:
        flags.append(
            Flag(
                "quality.unsupported_claim",
                "not in the brief, the facts or the brand's pages: "
                + ", ".join(dict.fromkeys(c for _, _, c in claims)),
                "ERROR",
                [(start, end) for start, end, _ in claims],
            )
        )

    by_code: dict[str, list[Finding]] = {}
    for finding in findings:
        by_code.setdefault(PII_CODES.get(finding.kind) or "pii." + finding.kind.lower(), []).append(finding)
    if len(findings) > thresholds.max_personal_data:
        flags.extend(
            Flag(
                code,
                f"personal data in the draft ({code.removeprefix('pii.').replace('_', ' ')})",
                # Checksum-backed kinds are certain; names, addresses and ages come from a model or context.
                "ERROR" if all(finding.score >= 1.0 for finding in found) else "WARNING",
                [(finding.start, finding.end) for finding in found],
            )
            for code, found in sorted(by_code.items())
        )

    if voice_score is not None and voice_score < thresholds.min_voice_score:
        flags.append(
            Flag(
                "quality.low_voice_score",
                f"voice score {voice_score:.0f} (at least {thresholds.min_voice_score:.0f})",
                "WARNING",
            )
        )
    return QualityReport(
        language=language,
        detected_language=detected,
        language_match=match,
        word_count=len(spans),
        unknown_word_share=share,
        unknown_words=list(dict.fromkeys(word for _, _, word in unknown)),
        repeated_ngram_share=repeated_share,
        target_words=target_words,
        length_ratio=ratio,
        unsupported_claims=[claim for _, _, claim in claims],
        personal_data=len(findings),
        voice_score=voice_score,
        flags=flags,
    )


def below_threshold_flag(report: QualityReport, candidates: int) -> Flag:
    return Flag(
        "quality.below_threshold",
        f"best of {candidates} draft(s) still fails: {', '.join(report.failed)}",
        "ERROR",
    )


def _language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def _fold(word: str) -> str:
    return unicodedata.normalize("NFC", word.lower().replace("\u2019", "'"))


def _unknown(word: str, language: str, sources: Sources) -> bool:
    if sources.knows_word(word):
        return False
    # Elisions and hyphenated words are known when each part is ("l'éthiopie", "peut-être").
    parts = [part for part in re.split(r"['\u2019-]", word.lower()) if part]
    return any(wordfreq.zipf_frequency(part, language) == 0.0 and not sources.knows_word(part) for part in parts)


def _repetition(spans: list[tuple[int, int, str]]) -> tuple[float, list[tuple[int, int]]]:
    words = [word.lower() for _, _, word in spans]
    total = len(words) - REPEATED_NGRAM + 1
    if total <= 0:
        return 0.0, []
    seen: Counter = Counter()
    repeated: list[tuple[int, int]] = []
    for index in range(total):
        gram = tuple(words[index : index + REPEATED_NGRAM])
        if seen[gram]:
            repeated.append((spans[index][0], spans[index + REPEATED_NGRAM - 1][1]))
        seen[gram] += 1
    return len(repeated) / total, _merge(repeated)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _claims(text: str, spans: list[tuple[int, int, str]], language: str) -> list[tuple[int, int, str]]:
    """Figures, prices, dates and names, in text order."""
    found = [
        (match.start(), match.end(), match[0].strip())
        for match in CLAIM.finditer(text)
        if not LIST_MARKER.match(text, match.start())
    ]
    for start, end, word in spans:
        if not word[0].isupper() or any(start < other_end and other_start < end for other_start, other_end, _ in found):
            continue
        if SENTENCE_START.search(text[:start]) or len(word) < 3:
            continue
        if wordfreq.zipf_frequency(word.lower(), language) >= COMMON_WORD_ZIPF:
            continue
        found.append((start, end, word))
    return sorted(found)


_MONTH_NUMBER = {name.lower(): index + 1 for names in MONTH_NAMES.values() for index, name in enumerate(names)} | {
    "fevrier": 2,
    "aout": 8,
    "decembre": 12,
}
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:er)?\s+({_MONTH})\b|\b({_MONTH})\s+(\d{{1,2}})", re.IGNORECASE)


def _dates(text: str) -> list[tuple[int, int]]:
    found = []
    for match in _DAY_MONTH.finditer(text):
        day, month = (match[1], match[2]) if match[1] else (match[4], match[3])
        found.append((int(day), _MONTH_NUMBER[month.lower()]))
    return found


def _claim_key(claim: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", claim.lower().replace(",", ".")).strip()


def _number_key(number: str) -> str:
    compact = re.sub(r"[\s\u00a0\u202f]", "", number).replace(",", ".")
    return compact.rstrip("0").rstrip(".") if "." in compact else compact
