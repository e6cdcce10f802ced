"""Sentiment: a linear head on MiniLM embeddings blended with VADER for English, a French VADER lexicon for French.

The head, trained on critics' reviews, knows vocabulary and domain; VADER's rules know negation
("never had a problem", "wouldn't recommend") and boosters, which a linear head on a sentence
embedding misses. all-MiniLM-L6-v2 was trained on English, so its embeddings of French text carry
little polarity; French goes to `vaderSentiment-fr` alone. Every other language is scored as English
and reported as detected.
"""

import hashlib
import importlib.resources
import json
import warnings
from dataclasses import dataclass
from importlib.metadata import version as package_version

import numpy as np

from matcha.classification.training import LinearHead

POLARITIES = ("negative", "neutral", "positive")
HEAD_PACKAGE = "matcha.classification.models"
HEAD_FILE = "sentiment_en.npz"
HEAD_CARD = "sentiment_en.json"
ENGLISH_MODEL_ID = "matcha-sentiment-en/minilm-logreg+vader"
ENGLISH_LEXICON_PACKAGE = "vadersentiment"
# Share of the English lexicon in the blend; the head keeps the rest.
ENGLISH_LEXICON_WEIGHT = 0.3
FRENCH_MODEL_ID = "vadersentiment-fr"
FRENCH_PACKAGE = "vadersentiment-fr"
# VADER's documented decision band on the compound score.
LEXICON_NEUTRAL_BAND = 0.05


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


class EnglishSentiment:
    """The shipped head (see `train_sentiment`) blended with VADER: negative / neutral / positive."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        files = importlib.resources.files(HEAD_PACKAGE)
        data = (files / HEAD_FILE).read_bytes()
        self.card = json.loads((files / HEAD_CARD).read_text())
        self._head = LinearHead.from_bytes(data)
        if self._head.labels != tuple(sorted(POLARITIES)):
            raise RuntimeError(f"sentiment head labels {self._head.labels} are not {sorted(POLARITIES)}")
        self._lexicon = SentimentIntensityAnalyzer()
        digest = hashlib.sha256(data).hexdigest()[:16]
        lexicon_version = package_version(ENGLISH_LEXICON_PACKAGE)
        self.model = ModelRef(ENGLISH_MODEL_ID, f"{self.card['version']}+sha256.{digest}+vader.{lexicon_version}")
        self.embedding_model_id = self.card["embedding_model"]["id"]

    def score(self, texts: list[str], embeddings: np.ndarray) -> list[SentimentScore]:
        head = self._head.probabilities(embeddings)[:, [self._head.labels.index(p) for p in POLARITIES]]
        lexicon = np.array([_spread(self._lexicon.polarity_scores(text)["compound"]) for text in texts])
        blended = (1 - ENGLISH_LEXICON_WEIGHT) * head + ENGLISH_LEXICON_WEIGHT * lexicon.reshape(-1, 3)
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
        scores: list[SentimentScore | None] = [None] * len(texts)
        english = [index for index, language in enumerate(languages) if language != "fr"]
        if english:
            english_scores = self.english.score([texts[i] for i in english], embeddings[english])
            for index, score in zip(english, english_scores, strict=True):
                scores[index] = score
        for index, language in enumerate(languages):
            if language == "fr":
                scores[index] = self.french.score(texts[index])
        return scores
