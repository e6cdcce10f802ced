"""Sentiment: a head on MiniLM embeddings and VADER's scores for English, a French VADER lexicon for French.

The English head reads, for each text, its sentence embedding followed by the lexicon's own view of it
(`lexicon_features`: VADER's compound and shares, the polarity under negations, length and
punctuation): the embedding knows vocabulary and register, the lexicon knows boosters, emoji and
negation, which a linear head on one sentence embedding misses. It was trained on several registers
(crowd-labelled tweets about airlines, brands and products, critics' snippets, plot summaries, patients'
reviews of drugs; see `train_sentiment`). Where a text's polar words sit under a negation
(`NegationScopes`), the negated phrases' own polarity then takes over part of the decision.
all-MiniLM-L6-v2 was trained on English, so its embeddings of French text carry little polarity; French
goes to `vaderSentiment-fr` alone. Every other language is scored as English and reported as detected.
"""

import hashlib
import importlib.resources
import json
import re
import warnings
from dataclasses import dataclass
from importlib.metadata import version as package_version

import numpy as np

from matcha.classification.training import LinearHead

POLARITIES = ("negative", "neutral", "positive")
HEAD_PACKAGE = "matcha.classification.models"
HEAD_FILE = "sentiment_en.npz"
HEAD_CARD = "sentiment_en.json"
ENGLISH_MODEL_ID = "matcha-sentiment-en/minilm+vader-logreg"
ENGLISH_LEXICON_PACKAGE = "vadersentiment"
# Recorded in the card: the features the head was trained on, in order.
LEXICON_FEATURES_VERSION = "1"
# The language code (py3langid's) scored by the French lexicon rather than the English head.
FRENCH = "fr"
FRENCH_MODEL_ID = "vadersentiment-fr"
FRENCH_PACKAGE = "vadersentiment-fr"
# VADER's documented decision band on the compound score.
LEXICON_NEUTRAL_BAND = 0.05

_NEGATOR_TEXT = (
    "not no never nothing nobody none nor neither without cannot hardly barely cant dont didnt doesnt isnt "
    "wasnt arent werent wont wouldnt couldnt shouldnt havent hasnt hadnt aint mustnt neednt"
)
# Contractions as tokenised: "couldn't" is "couldnt".
NEGATORS = frozenset(_NEGATOR_TEXT.split())
# "not only good but cheap", "nothing but praise": no negation of what follows.
NOT_NEGATING_NEXT = frozenset({"only", "just", "but", "doubt", "wonder"})
# Words after which a clause turns: a negation does not reach past them.
CLAUSE_BREAKS = frozenset({"but", "though", "although", "however", "yet", "except", "whereas", "while"})
# Weight of the negated phrases when they hold all of a text's polar words. Critics' negations are
# subtler than customers' ("not as awful as ..., but far from groundbreaking"): on negated reviews of
# the training movies, full weight lost 7 in 100 that the blend got right; 0.4 loses under 1.
NEGATION_WEIGHT = 0.4
# Recorded in the model version: a change of the rules changes the scores the audit ledger refers to.
NEGATION_RULES_VERSION = "1"
# Weakest lexicon valence (VADER's scale, -4 to 4) that counts as polar.
MIN_VALENCE = 0.5
# "never again": a customer leaving, as strong as "bad" is in VADER's lexicon.
NEVER_AGAIN = 2.5
# Tokens a negation reaches: "never had a problem", "not a single issue", "can't say I'm impressed".
NEGATION_REACH = 4
# Customer-service complaints VADER's lexicon lacks (valences on its scale, -4 to 4), and "work",
# whose negation ("doesn't work") is a common complaint.
CUSTOMER_TERMS = {
    "issue": -1.5,
    "issues": -1.5,
    "hassle": -1.5,
    "hassles": -1.5,
    "glitch": -1.5,
    "glitches": -1.5,
    "hiccup": -1.0,
    "hiccups": -1.0,
    "fuss": -1.0,
    "delays": -1.3,
    "late": -1.0,
    "work": 1.0,
    "works": 1.0,
    "worked": 1.0,
}
# After a negation, a comparison keeps its polarity: "couldn't be happier", "can't recommend them enough".
COMPARATIVES = frozenset({"better", "happier", "nicer", "easier", "worse", "best", "worst"})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?()]")


@dataclass(frozen=True)
class ModelRef:
    id: str
    version: str


@dataclass(frozen=True)
class SentimentScore:
    label: str
    negative: float
    neutral: float
    positive: float
    model: ModelRef


@dataclass(frozen=True)
class NegatedPolarity:
    """What negations do to a text: the polarity mass of its negated phrases, and of its other polar words."""

    positive: float
    negative: float
    other: float

    @property
    def share(self) -> float:
        """Share of the text's polar mass that sits under a negation, in [0, 1]."""
        negated = self.positive + self.negative
        return negated / (negated + self.other) if negated else 0.0

    def shares(self) -> tuple[float, float, float]:
        """The negated phrases as negative, neutral, positive shares."""
        negated = self.positive + self.negative
        return self.negative / negated, 0.0, self.positive / negated


class NegationScopes:
    """Finds negated polar phrases with VADER's lexicon: "never had a problem" is positive, "not worth it"
    negative, "couldn't be happier" positive, "never again" negative.

    A negation reaches the next few words of its clause; the first polar word it meets is flipped,
    unless it is a comparison ("couldn't be happier"), which keeps its polarity.
    """

    def __init__(self, lexicon: dict[str, float]) -> None:
        self._valence = {**lexicon, **CUSTOMER_TERMS}

    def polar(self, word: str) -> float:
        return 0.0 if word in NEGATORS else self._valence.get(word, 0.0)

    def measure(self, text: str) -> NegatedPolarity:
        words = _WORD.findall(text.lower().replace("\u2019", "'"))
        tokens = [word.replace("n't", "nt").replace("'", "") for word in words]
        positive = negative = 0.0
        negated: set[int] = set()
        for index, token in enumerate(tokens):
            if token not in NEGATORS or index in negated:
                continue
            scope = self._scope(tokens, index)
            if not scope or tokens[scope[0]] in NOT_NEGATING_NEXT:
                continue
            if token == "never" and tokens[scope[0]] == "again":
                negative += NEVER_AGAIN
                negated.add(scope[0])
                continue
            for position in scope:
                valence = self.polar(tokens[position])
                if abs(valence) < MIN_VALENCE:
                    continue
                before = tokens[scope[0] : position]
                after = tokens[position + 1 : self._clause_end(tokens, position)]
                compared = ("be" in before and (tokens[position] in COMPARATIVES or "more" in before)) or (
                    "enough" in after
                )
                polarity = valence if compared else -valence
                positive += max(polarity, 0.0)
                negative += max(-polarity, 0.0)
                negated.add(position)
                break
        other = sum(abs(self.polar(token)) for index, token in enumerate(tokens) if index not in negated)
        return NegatedPolarity(positive, negative, other)

    @staticmethod
    def _clause_end(tokens: list[str], start: int) -> int:
        for position in range(start, len(tokens)):
            if not tokens[position][0].isalpha() or tokens[position] in CLAUSE_BREAKS:
                return position
        return len(tokens)

    def _scope(self, tokens: list[str], index: int) -> list[int]:
        end = min(self._clause_end(tokens, index + 1), index + 1 + NEGATION_REACH)
        return list(range(index + 1, end))


def lexicon_features(scores: dict[str, float], negations: NegatedPolarity, text: str) -> list[float]:
    """What the lexicon sees in a text, on the scale of a unit-norm embedding's largest components:
    VADER's compound and positive/negative/neutral shares, the shares of the text's polar mass that are
    negated praise and negated complaint, length (log words) and exclamation/question marks."""
    polar = negations.positive + negations.negative + negations.other
    return [
        scores["compound"],
        scores["pos"],
        scores["neg"],
        scores["neu"],
        negations.positive / polar if polar else 0.0,
        negations.negative / polar if polar else 0.0,
        float(np.log1p(len(text.split())) / 5),
        min(text.count("!"), 3) / 3,
        float("?" in text),
    ]


class EnglishLexicon:
    """VADER and the negation scopes over its lexicon: the head's lexicon features, for every text."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self.negations = NegationScopes(self._analyzer.lexicon)
        lexicon_version = package_version(ENGLISH_LEXICON_PACKAGE)
        self.version = f"{LEXICON_FEATURES_VERSION}+negation.{NEGATION_RULES_VERSION}+vader.{lexicon_version}"

    def measure(self, text: str) -> tuple[list[float], NegatedPolarity]:
        negations = self.negations.measure(text)
        return lexicon_features(self._analyzer.polarity_scores(text), negations, text), negations

    def features(self, texts: list[str]) -> np.ndarray:
        return np.array([self.measure(text)[0] for text in texts], dtype=np.float32).reshape(-1, 9)


class EnglishSentiment:
    """The shipped head (see `train_sentiment`) on embeddings and lexicon features: negative / neutral / positive."""

    def __init__(self, lexicon: EnglishLexicon | None = None) -> None:
        files = importlib.resources.files(HEAD_PACKAGE)
        data = (files / HEAD_FILE).read_bytes()
        self.card = json.loads((files / HEAD_CARD).read_text())
        self._head = LinearHead.from_bytes(data)
        if self._head.labels != tuple(sorted(POLARITIES)):
            raise RuntimeError(f"sentiment head labels {self._head.labels} are not {sorted(POLARITIES)}")
        self.lexicon = lexicon or EnglishLexicon()
        if self.card["lexicon_features"]["version"] != LEXICON_FEATURES_VERSION:
            raise RuntimeError(f"the sentiment head was trained on lexicon features {self.card['lexicon_features']}")
        self._lexicon_scale = float(self.card["lexicon_features"]["scale"])
        self._negation_weight = float(self.card["negation_weight"])
        self._lexicon_weight = float(self.card["lexicon_weight"])
        digest = hashlib.sha256(data).hexdigest()[:16]
        self.model = ModelRef(ENGLISH_MODEL_ID, f"{self.card['version']}+sha256.{digest}+{self.lexicon.version}")
        self.embedding_model_id = self.card["embedding_model"]["id"]

    def head_features(self, embeddings: np.ndarray, lexicon: np.ndarray) -> np.ndarray:
        return np.hstack([embeddings, self._lexicon_scale * lexicon]).astype(np.float32)

    def score(self, texts: list[str], embeddings: np.ndarray) -> list[SentimentScore]:
        measured = [self.lexicon.measure(text) for text in texts]
        lexicon = np.array([features for features, _ in measured], dtype=np.float32).reshape(-1, 9)
        probabilities = self._head.probabilities(self.head_features(embeddings, lexicon))
        head = probabilities[:, [self._head.labels.index(p) for p in POLARITIES]]
        # VADER's compound score, spread over the three classes, keeps a share of the decision: the head saw
        # three registers; the lexicon's rules hold on registers it never saw (product reviews, editorials).
        spread = np.array([_spread(features[0]) for features, _ in measured]).reshape(-1, 3)
        blended = (1 - self._lexicon_weight) * head + self._lexicon_weight * spread
        for row, (_, negations) in enumerate(measured):
            if negations.share:
                # The head cannot see negation: the negated phrases take over part of the decision, in
                # proportion to their share of the text's polar words.
                weight = self._negation_weight * negations.share
                blended[row] = (1 - weight) * blended[row] + weight * np.array(negations.shares())
        return [
            SentimentScore(POLARITIES[int(np.argmax(row))], float(row[0]), float(row[1]), float(row[2]), self.model)
            for row in blended
        ]


class FrenchLexicon:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            # fuzzywuzzy warns that python-Levenshtein is absent; the pure-Python matcher is exact, only slower.
            warnings.simplefilter("ignore", UserWarning)
            from vaderSentiment_fr.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self.model = ModelRef(FRENCH_MODEL_ID, package_version(FRENCH_PACKAGE))

    def score(self, text: str) -> SentimentScore:
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        return lexicon_score(compound, self.model)


def _spread(compound: float) -> tuple[float, float, float]:
    """VADER's compound score in [-1, 1] as negative, neutral, positive shares that sum to 1."""
    return max(-compound, 0.0), 1.0 - abs(compound), max(compound, 0.0)


def lexicon_score(compound: float, model: ModelRef) -> SentimentScore:
    negative, neutral, positive = _spread(compound)
    if compound >= LEXICON_NEUTRAL_BAND:
        label = "positive"
    elif compound <= -LEXICON_NEUTRAL_BAND:
        label = "negative"
    else:
        label = "neutral"
    return SentimentScore(label, negative, neutral, positive, model)


class SentimentAnalyzer:
    def __init__(self) -> None:
        self.english = EnglishSentiment()
        self.french = FrenchLexicon()

    def score(self, texts: list[str], languages: list[str], embeddings: np.ndarray) -> list[SentimentScore]:
        """`embeddings` are the texts' MiniLM embeddings; French texts are scored by the French lexicon instead."""
        english = [index for index, language in enumerate(languages) if language != FRENCH]
        english_scores = iter(self.english.score([texts[i] for i in english], embeddings[english]) if english else [])
        return [
            self.french.score(texts[index]) if language == FRENCH else next(english_scores)
            for index, language in enumerate(languages)
        ]
