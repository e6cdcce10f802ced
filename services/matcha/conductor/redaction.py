"""Reversible pseudonymisation of a hop's request, over the runtime's personal-data engine.

Detection is `matcha.runtime.pii` (NER, validated patterns, phone numbering plans); this module replaces what it
finds. Placeholders are derived from a per-run key, so the same value gets the same placeholder within a run (also
after a resume) and nothing about it elsewhere. Text that is already a placeholder is never redacted again.
"""

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from matcha.runtime import pii
from matcha.runtime.pii import (
    ALL_KINDS,
    EMAIL,
    FR_NIR,
    IBAN,
    IP_ADDRESS,
    PATTERN_KINDS,
    PAYMENT_CARD,
    PHONE,
    PLACEHOLDER,
    URL_TOKEN,
    EngineInfo,
    Finding,
    PiiEngine,
    iban_valid,
    luhn_valid,
)

__all__ = [
    "ALL_KINDS",
    "EMAIL",
    "FR_NIR",
    "IBAN",
    "IP_ADDRESS",
    "PATTERN_KINDS",
    "PAYMENT_CARD",
    "PHONE",
    "PLACEHOLDER",
    "URL_TOKEN",
    "Finding",
    "Pseudonymiser",
    "Redaction",
    "detect",
    "iban_valid",
    "luhn_valid",
    "rehydrate",
]


def detect(text: str, kinds: Iterable[str] = ALL_KINDS, engine: PiiEngine | None = None) -> list[Finding]:
    """Non-overlapping findings, by position."""
    return (engine or pii.shared_engine()).analyze(text, kinds)


@dataclass
class Redaction:
    """The outcome of pseudonymising one request."""

    value: Any
    counts: Counter
    # placeholder -> original value; kept only in the run state.
    mapping: dict[str, str]
    # The detector that ran (name, version, NER models), for the audit ledger.
    engine: EngineInfo | None = field(default=None)


class Pseudonymiser:
    def __init__(self, key: bytes, engine: PiiEngine | None = None) -> None:
        self._key = key
        # The process's shared engine unless the composition root hands one in.
        self._engine = engine

    def placeholder(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}_{digest[:10]}]"

    @property
    def engine(self) -> PiiEngine:
        return self._engine or pii.shared_engine()

    def redact_text(self, text: str, kinds: Iterable[str], redaction: Redaction) -> str:
        return self._replace(text, self.engine.analyze(text, kinds), redaction)

    def _replace(self, text: str, findings: list[Finding], redaction: Redaction) -> str:
        pieces: list[str] = []
        position = 0
        for finding in findings:
            placeholder = self.placeholder(finding.kind, finding.value)
            redaction.mapping[placeholder] = finding.value
            redaction.counts[finding.kind] += 1
            pieces.extend((text[position : finding.start], placeholder))
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces)

    def redact(self, value: Any, kinds: Iterable[str], fields: tuple[str, ...] = ()) -> Redaction:
        """Pseudonymises every string of `value`, or only those under the dotted `fields`."""
        engine = self.engine
        redaction = Redaction(value=None, counts=Counter(), mapping={}, engine=engine.info)
        paths = [tuple(path.split(".")) for path in fields] or [()]
        # Two passes: gather the strings, detect in one batch (the NER runs them together), then replace.
        texts: list[str] = []

        def gather(text: str) -> str:
            texts.append(text)
            return text

        _transform(value, paths, gather)
        findings = iter(engine.analyze_many(texts, frozenset(kinds), field="request"))
        redaction.value = _transform(value, paths, lambda text: self._replace(text, next(findings), redaction))
        return redaction


def rehydrate(value: Any, mapping: dict[str, str]) -> Any:
    """Puts the original values back wherever a placeholder of `mapping` appears."""
    if not mapping:
        return value
    return _transform(value, [()], lambda text: PLACEHOLDER.sub(lambda match: mapping.get(match[0], match[0]), text))


def _transform(value: Any, paths: list[tuple[str, ...]], change: Callable[[str], str]) -> Any:
    """Applies `change` to strings; a path selects which keys to descend (lists are crossed)."""
    if isinstance(value, str):
        return change(value) if any(not path for path in paths) else value
    if isinstance(value, list):
        return [_transform(item, paths, change) for item in value]
    if isinstance(value, dict):
        if any(not path for path in paths):
            return {key: _transform(item, [()], change) for key, item in value.items()}
        return {
            key: _transform(item, [path[1:] for path in paths if path[0] == key], change)
            if any(path[0] == key for path in paths)
            else item
            for key, item in value.items()
        }
    return value
