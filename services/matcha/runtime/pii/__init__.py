"""Personal-data detection, one engine for the whole mesh.

Used by the conductor's redaction before every hop, by ingestion (records holding personal data are raised to
PERSONAL) and by the `matcha redact` command. English and French NER (spaCy pipelines shipped as packages),
validated patterns (e-mail, IBAN mod 97, Luhn cards, French NIR key, IPs, URL tokens), phone numbers of the
numbering plans served (phonenumbers), and context rules for addresses, dates of birth and ages.
"""

import functools

from matcha.runtime.pii.engine import (
    DISCOVERY_MIN_SCORE,
    ENGINE_NAME,
    ENGINE_VERSION,
    MAX_TEXT_CHARS,
    PLACEHOLDER,
    EngineInfo,
    PiiEngine,
)
from matcha.runtime.pii.kinds import (
    ADDRESS,
    AGE,
    ALL_KINDS,
    CONTEXT_KINDS,
    DATE_OF_BIRTH,
    EMAIL,
    FR_NIR,
    IBAN,
    IP_ADDRESS,
    PATTERN_KINDS,
    PAYMENT_CARD,
    PERSON,
    PHONE,
    URL_TOKEN,
    Finding,
)
from matcha.runtime.pii.patterns import iban_valid, luhn_valid


@functools.cache
def shared_engine() -> PiiEngine:
    """The process's engine, for callers that are not handed one: its pipelines are loaded once, on first use."""
    return PiiEngine()


__all__ = [
    "ADDRESS",
    "AGE",
    "ALL_KINDS",
    "CONTEXT_KINDS",
    "DATE_OF_BIRTH",
    "DISCOVERY_MIN_SCORE",
    "EMAIL",
    "ENGINE_NAME",
    "ENGINE_VERSION",
    "FR_NIR",
    "IBAN",
    "IP_ADDRESS",
    "MAX_TEXT_CHARS",
    "PATTERN_KINDS",
    "PAYMENT_CARD",
    "PERSON",
    "PHONE",
    "PLACEHOLDER",
    "URL_TOKEN",
    "EngineInfo",
    "Finding",
    "PiiEngine",
    "iban_valid",
    "luhn_valid",
    "shared_engine",
]
