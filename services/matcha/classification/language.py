"""Language identification with py3langid (a naive Bayes model shipped in the package)."""

from dataclasses import dataclass

UNDETERMINED = "und"
# py3langid's code for "no linguistic content" (digits, punctuation).
_NO_LANGUAGE = "zxx"


@dataclass(frozen=True)
class DetectedLanguage:
    code: str
    confidence: float


class LanguageDetector:
    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def detect(self, text: str) -> DetectedLanguage:
        if not any(character.isalpha() for character in text):
            return DetectedLanguage(UNDETERMINED, 0.0)
        code, probability = self._identifier.classify(text)
        if code == _NO_LANGUAGE:
            return DetectedLanguage(UNDETERMINED, 0.0)
        return DetectedLanguage(code, float(probability))
