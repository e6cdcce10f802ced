"""Tone of voice: what a brand's texts look like, and how close a draft comes to them.

Plain Python over text and vectors: the core feeds it embeddings from the encoder.
Lexical features (sentence lengths, register markers, vocabulary) work for any
language wordfreq knows; the register rules know English and French.
"""

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import wordfreq

# Languages told apart by the language detector (the register rules know en and fr).
LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "nl")
MAX_SIGNATURE_TERMS = 50
# Brand word distribution kept for scoring; the rest falls back to the background.
MAX_DISTRIBUTION_TERMS = 3000
PASSAGE_SENTENCES = 3
PASSAGE_MAX_CHARS = 600

# Informative Dirichlet prior of the weighted log-odds (Monroe, Colaresi & Quinn 2008):
# the background is wordfreq's frequency list seen as a corpus of this many tokens.
BACKGROUND_TOKENS = 1_000_000.0
PRIOR_TOKENS = 1_000.0
FREQUENCY_FLOOR = 1e-8

SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»”)\]]*\s+|\n\s*\n|\n(?=\s*(?:[-*+•]|\d+[.)]|#))")
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MARKDOWN_MARKUP = re.compile(r"(?m)^\s{0,3}(?:#{1,6}\s+|[-*+•]\s+|\d+[.)]\s+|>\s?)|[*_`]{1,3}")
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f1e6-\U0001f1ff]")

# Straight or typographic apostrophe.
APOSTROPHE = "['\u2019]"
SECOND_PERSON = {
    "en": re.compile(r"\b(?:you|your|yours|yourself|yourselves)\b", re.I),
    "fr": re.compile(rf"\b(?:vous|votre|vos|tu|toi|ton|ta|tes)\b|\bt{APOSTROPHE}", re.I),
}
FRENCH_INFORMAL_ADDRESS = re.compile(rf"\b(?:tu|toi|ton|ta|tes)\b|\bt{APOSTROPHE}", re.I)
FRENCH_FORMAL_ADDRESS = re.compile(r"\b(?:vous|votre|vos)\b", re.I)
FIRST_PERSON_PLURAL = {
    "en": re.compile(r"\b(?:we|us|our|ours|ourselves)\b", re.I),
    "fr": re.compile(r"\b(?:nous|notre|nos)\b", re.I),
}
CONTRACTION = {
    "en": re.compile(
        rf"\b(?:\w+n{APOSTROPHE}t|\w+{APOSTROPHE}(?:re|ve|ll|d|m)|(?:it|that|there|here|what|who|he|she|let){APOSTROPHE}s)\b",
        re.I,
    ),
    "fr": re.compile(rf"\b(?:c|j|t|qu|y){APOSTROPHE}", re.I),
}


class AddressForm(Enum):
    UNSPECIFIED = 0
    FORMAL = 1
    INFORMAL = 2
    MIXED = 3


@dataclass(frozen=True)
class Sentence:
    text: str
    # Offsets in the original text, in code points.
    start: int
    end: int

    @property
    def words(self) -> list[str]:
        return words_of(self.text)


@dataclass(frozen=True)
class SentenceLengthStats:
    mean: float
    stddev: float
    p10: float
    p50: float
    p90: float


@dataclass(frozen=True)
class RegisterMarkers:
    second_person_rate: float
    first_person_plural_rate: float
    contraction_rate: float
    exclamation_rate: float
    question_rate: float
    emoji_rate: float
    formality: float
    address: AddressForm

    def rates(self) -> np.ndarray:
        return np.array(
            [
                self.second_person_rate,
                self.first_person_plural_rate,
                self.contraction_rate,
                self.exclamation_rate,
                self.question_rate,
                min(self.emoji_rate, 1.0),
                self.formality,
            ]
        )


@dataclass(frozen=True)
class SignatureTerm:
    term: str
    weight: float
    count: int


@dataclass(frozen=True)
class Passage:
    text: str
    document_id: str


@dataclass(frozen=True)
class LexicalProfile:
    """Everything about a voice that needs no model."""

    languages: list[str]
    document_count: int
    sentence_count: int
    sentence_length: SentenceLengthStats
    register: RegisterMarkers
    signature_terms: list[SignatureTerm]
    # Relative frequency of the brand's most used words.
    word_distribution: dict[str, float]
    # Mean log-likelihood ratio brand/background of the brand's own documents (scale of the vocabulary score).
    vocabulary_reference: float


@dataclass(frozen=True)
class Flag:
    code: str
    message: str
    severity: str  # "INFO", "WARNING" or "ERROR"
    spans: list[tuple[int, int]] = field(default_factory=list)


def plain_text(text: str) -> str:
    """Markdown to plain text, keeping the character count stable enough for sentence splitting."""
    return MARKDOWN_MARKUP.sub("", MARKDOWN_LINK.sub(r"\1", text))


def split_sentences(text: str) -> list[Sentence]:
    sentences, start = [], 0
    for boundary in [*SENTENCE_END.finditer(text), None]:
        end = boundary.start() if boundary else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if WORD.search(stripped):
            offset = start + piece.index(stripped)
            sentences.append(Sentence(stripped, offset, offset + len(stripped)))
        if boundary:
            start = boundary.end()
    return sentences


def words_of(text: str) -> list[str]:
    return [word.lower() for word in WORD.findall(text)]


def detect_language(words: list[str]) -> str:
    """The language in which these words are most frequent on average (wordfreq's Zipf scale)."""
    sample = words[:400]
    if not sample:
        return "en"
    scores = {
        language: sum(wordfreq.zipf_frequency(word, language) for word in sample) / len(sample)
        for language in LANGUAGES
    }
    return max(scores, key=scores.__getitem__)


def _background_frequency(term: str, languages: list[str]) -> float:
    return max(FREQUENCY_FLOOR, *(wordfreq.word_frequency(term, language) for language in languages))


def sentence_length_stats(sentences: list[Sentence]) -> SentenceLengthStats:
    lengths = np.array([len(sentence.words) for sentence in sentences], dtype=float)
    p10, p50, p90 = np.percentile(lengths, [10, 50, 90])
    return SentenceLengthStats(float(lengths.mean()), float(lengths.std()), float(p10), float(p50), float(p90))


def register_markers(sentences: list[Sentence], language: str) -> RegisterMarkers:
    rules = language if language in SECOND_PERSON else "en"
    count = max(1, len(sentences))

    def rate(pattern: re.Pattern) -> float:
        return sum(1 for sentence in sentences if pattern.search(sentence.text)) / count

    second_person = rate(SECOND_PERSON[rules])
    contraction = rate(CONTRACTION[rules])
    exclamation = sum(1 for sentence in sentences if sentence.text.rstrip("\"'»”) ").endswith("!")) / count
    question = sum(1 for sentence in sentences if sentence.text.rstrip("\"'»”) ").endswith("?")) / count
    emoji = sum(len(EMOJI.findall(sentence.text)) for sentence in sentences) / count
    informal_share = 0.0
    if rules == "fr":
        informal = rate(FRENCH_INFORMAL_ADDRESS)
        formal = rate(FRENCH_FORMAL_ADDRESS)
        informal_share = informal / (informal + formal) if informal + formal else 0.0
    # Each casual marker pulls formality down; tutoiement weighs as much as contractions.
    formality = 1.0 - min(1.0, 0.35 * contraction + 0.25 * exclamation + 0.2 * min(emoji, 1.0) + 0.35 * informal_share)
    return RegisterMarkers(
        second_person_rate=second_person,
        first_person_plural_rate=rate(FIRST_PERSON_PLURAL[rules]),
        contraction_rate=contraction,
        exclamation_rate=exclamation,
        question_rate=question,
        emoji_rate=emoji,
        formality=formality,
        address=_address_form(rules, second_person, formality, informal_share),
    )


def _address_form(rules: str, second_person: float, formality: float, informal_share: float) -> AddressForm:
    if second_person == 0:
        return AddressForm.UNSPECIFIED
    if rules == "fr":
        if informal_share >= 0.8:
            return AddressForm.INFORMAL
        return AddressForm.FORMAL if informal_share <= 0.2 else AddressForm.MIXED
    if formality >= 0.9:
        return AddressForm.FORMAL
    return AddressForm.INFORMAL if formality <= 0.75 else AddressForm.MIXED


def signature_terms(documents_words: list[list[str]], languages: list[str]) -> list[SignatureTerm]:
    """Words and two-word phrases over-represented against the background, by weighted log-odds z-score."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    stopwords = {word for language in languages for word in wordfreq.top_n_list(language, 150)}
    for words in documents_words:
        unigrams.update(word for word in words if len(word) > 2 and word not in stopwords)
        bigrams.update(
            f"{first} {second}"
            for first, second in itertools.pairwise(words)
            if first not in stopwords and second not in stopwords and len(first) > 1 and len(second) > 1
        )
    total = max(1, sum(len(words) for words in documents_words))
    terms = []
    for counts in (unigrams, bigrams):
        for term, count in counts.items():
            if count < 2:
                continue
            frequency = _background_frequency(term, languages)
            prior = PRIOR_TOKENS * frequency
            background = BACKGROUND_TOKENS * frequency
            delta = math.log((count + prior) / (total + PRIOR_TOKENS - count - prior)) - math.log(
                (background + prior) / (BACKGROUND_TOKENS + PRIOR_TOKENS - background - prior)
            )
            z = delta / math.sqrt(1 / (count + prior) + 1 / (background + prior))
            if z > 0:
                terms.append(SignatureTerm(term, z, count))
    terms.sort(key=lambda term: term.weight, reverse=True)
    return terms[:MAX_SIGNATURE_TERMS]


def word_distribution(documents_words: list[list[str]]) -> dict[str, float]:
    counts = Counter(word for words in documents_words for word in words)
    total = sum(counts.values()) or 1
    return {word: count / total for word, count in counts.most_common(MAX_DISTRIBUTION_TERMS)}


def vocabulary_log_ratio(words: list[str], distribution: dict[str, float], languages: list[str]) -> float:
    """Mean per-word log-likelihood ratio of the brand's word model (mixed with the background) to the background."""
    if not words:
        return 0.0
    total = 0.0
    for word in words:
        background = _background_frequency(word, languages)
        total += math.log((0.5 * distribution.get(word, 0.0) + 0.5 * background) / background)
    return total / len(words)


def passages_of(document_id: str, sentences: list[Sentence]) -> list[Passage]:
    """Consecutive sentences grouped by up to three, the unit of exemplars and of semantic scoring."""
    passages: list[Passage] = []
    current: list[Sentence] = []
    for sentence in sentences:
        if current and (
            len(current) == PASSAGE_SENTENCES
            or sum(len(s.text) for s in current) + len(sentence.text) > PASSAGE_MAX_CHARS
        ):
            passages.append(Passage(" ".join(s.text for s in current), document_id))
            current = []
        current.append(sentence)
    if current:
        passages.append(Passage(" ".join(s.text for s in current), document_id))
    return passages


def lexical_profile(documents: list[tuple[str, str]]) -> tuple[LexicalProfile, list[Passage]]:
    """Analyses (id, text) documents; also returns their passages for the embedding side."""
    sentences_by_document = [(document_id, split_sentences(plain_text(text))) for document_id, text in documents]
    documents_words = [[word for s in sentences for word in s.words] for _, sentences in sentences_by_document]
    language_counts = Counter(detect_language(words) for words in documents_words if words)
    languages = [language for language, _ in language_counts.most_common()] or ["en"]
    all_sentences = [sentence for _, sentences in sentences_by_document for sentence in sentences]
    distribution = word_distribution(documents_words)
    reference = float(
        np.mean([vocabulary_log_ratio(words, distribution, languages) for words in documents_words if words])
    )
    profile = LexicalProfile(
        languages=languages,
        document_count=len(documents),
        sentence_count=len(all_sentences),
        sentence_length=sentence_length_stats(all_sentences),
        register=register_markers(all_sentences, languages[0]),
        signature_terms=signature_terms(documents_words, languages),
        word_distribution=distribution,
        vocabulary_reference=reference,
    )
    passages = [
        passage for document_id, sentences in sentences_by_document for passage in passages_of(document_id, sentences)
    ]
    return profile, passages


def term_pattern(term: str) -> re.Pattern:
    """A user-given term matched case-insensitively on word boundaries."""
    return re.compile(rf"(?<!\w){re.escape(term.strip())}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class SemanticReference:
    """How close the brand's own passages are to their centroid."""

    centroid: np.ndarray
    p05: float
    p50: float


def semantic_reference(passage_vectors: np.ndarray) -> tuple[SemanticReference, np.ndarray]:
    """The centroid of normalised passage vectors, and each passage's cosine similarity to it."""
    centroid = passage_vectors.mean(axis=0)
    centroid = centroid / (np.linalg.norm(centroid) or 1.0)
    similarities = passage_vectors @ centroid
    p05, p50 = np.percentile(similarities, [5, 50])
    return SemanticReference(centroid.astype(np.float32), float(p05), float(p50)), similarities


@dataclass(frozen=True)
class VoiceScore:
    score: float
    sentence_length: float
    register: float
    vocabulary: float
    semantic: float
    flags: list[Flag]


# Weights of the sub-scores in the overall score.
SEMANTIC_WEIGHT, VOCABULARY_WEIGHT, REGISTER_WEIGHT, LENGTH_WEIGHT = 0.4, 0.25, 0.2, 0.15
BANNED_TERM_PENALTY = 30.0
PREFERRED_TERM_BONUS = 5.0


def score_draft(
    text: str,
    *,
    profile: LexicalProfile,
    preferred_terms: list[str],
    banned_terms: list[str],
    reference: SemanticReference,
    passage_vectors: np.ndarray,
) -> VoiceScore:
    """Scores a draft whose passages (`passages_of(split_sentences(text))`) were embedded into `passage_vectors`."""
    # A draft of symbols only ("!!!") still gets a score, as one sentence of no words.
    sentences = split_sentences(text) or [Sentence(text, 0, len(text))]
    words = [word for sentence in sentences for word in sentence.words]
    language = detect_language(words)
    flags: list[Flag] = []

    brand_length = profile.sentence_length
    lengths = np.array([len(sentence.words) for sentence in sentences], dtype=float)
    deviation = (lengths.mean() - brand_length.mean) / max(brand_length.stddev, 1.0)
    length_score = 100.0 * math.exp(-0.5 * deviation**2)
    limit = 1.5 * brand_length.p90
    long_sentences = [sentence for sentence, length in zip(sentences, lengths, strict=True) if length > limit]
    if long_sentences:
        flags.append(
            Flag(
                "voice.long_sentence",
                f"{len(long_sentences)} sentence(s) longer than {limit:.0f} words (the brand's 90th percentile "
                f"is {brand_length.p90:.0f})",
                "WARNING",
                [(sentence.start, sentence.end) for sentence in long_sentences],
            )
        )

    draft_register = register_markers(sentences, language)
    register_score = 100.0 * (1.0 - float(np.mean(np.abs(draft_register.rates() - profile.register.rates()))))
    opposite = {AddressForm.FORMAL: AddressForm.INFORMAL, AddressForm.INFORMAL: AddressForm.FORMAL}
    if opposite.get(profile.register.address) == draft_register.address:
        flags.append(
            Flag(
                "voice.register_mismatch",
                f"the draft addresses the reader {draft_register.address.name.lower()}ly; "
                f"the brand is {profile.register.address.name.lower()}",
                "WARNING",
            )
        )

    ratio = vocabulary_log_ratio(words, profile.word_distribution, profile.languages)
    vocabulary_score = (
        100.0 * min(1.0, max(0.0, ratio / profile.vocabulary_reference)) if profile.vocabulary_reference > 0 else 0.0
    )
    for term in banned_terms:
        spans = [(match.start(), match.end()) for match in term_pattern(term).finditer(text)]
        if spans:
            vocabulary_score -= BANNED_TERM_PENALTY
            flags.append(Flag("voice.banned_term", f'banned term "{term}"', "ERROR", spans))
    vocabulary_score += PREFERRED_TERM_BONUS * sum(1 for term in preferred_terms if term_pattern(term).search(text))
    vocabulary_score = min(100.0, max(0.0, vocabulary_score))

    similarity = float(np.mean(passage_vectors @ reference.centroid))
    spread = max(reference.p50 - reference.p05, 1e-3)
    semantic_score = 100.0 * min(1.0, max(0.0, 0.5 + 0.5 * (similarity - reference.p05) / spread))
    if similarity < reference.p05:
        flags.append(
            Flag(
                "voice.off_voice",
                f"embedding similarity {similarity:.2f} is below the brand's 5th percentile {reference.p05:.2f}",
                "WARNING",
            )
        )

    overall = (
        SEMANTIC_WEIGHT * semantic_score
        + VOCABULARY_WEIGHT * vocabulary_score
        + REGISTER_WEIGHT * register_score
        + LENGTH_WEIGHT * length_score
    )
    return VoiceScore(overall, length_score, register_score, vocabulary_score, semantic_score, flags)
