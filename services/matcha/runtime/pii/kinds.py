"""The kinds of personal data the engine reports, and what one finding is."""

from dataclasses import dataclass

EMAIL = "EMAIL"
PHONE = "PHONE"
IBAN = "IBAN"
PAYMENT_CARD = "PAYMENT_CARD"
FR_NIR = "FR_NIR"
IP_ADDRESS = "IP_ADDRESS"
URL_TOKEN = "URL_TOKEN"
PERSON = "PERSON"
ADDRESS = "ADDRESS"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
AGE = "AGE"

# Found by validated patterns alone (no model).
PATTERN_KINDS = frozenset({EMAIL, PHONE, IBAN, PAYMENT_CARD, FR_NIR, IP_ADDRESS, URL_TOKEN})
# Found with the language's NER pipeline, an address grammar and context words.
CONTEXT_KINDS = frozenset({PERSON, ADDRESS, DATE_OF_BIRTH, AGE})
ALL_KINDS = PATTERN_KINDS | CONTEXT_KINDS


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    value: str
    # Confidence in [0, 1]: 1.0 for checksum-backed kinds, lower for what depends on a model or on context.
    score: float = 1.0
