"""The audit ledger's keyed hash chain: one row per hop, each row's HMAC covering its predecessor's.

Without the key nobody can forge a consistent chain; with the head hash kept outside
the database, even deleting the last rows is detected.
"""

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    ALLOW = "ALLOW"
    REDACT = "REDACT"
    DENY = "DENY"


class ChainBreak(StrEnum):
    ALTERED = "ALTERED"
    INSERTED = "INSERTED"
    DELETED = "DELETED"
    TRUNCATED = "TRUNCATED"


@dataclass(frozen=True)
class AuditEntry:
    """What is known about a hop before it joins the chain."""

    time: datetime
    subject: str
    roles: tuple[str, ...]
    purpose: str
    run_id: str
    plan_name: str
    plan_version: int
    step_id: str
    item_index: int | None
    attempt: int
    target_method: str
    models: tuple[tuple[str, str], ...]
    data_class_in: str
    data_class_out: str
    request_sha256: str
    response_sha256: str
    decision: Decision
    policy_rule: str
    redactions: dict[str, int]
    status_code: str
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class AuditRecord:
    tenant: str
    sequence: int
    entry: AuditEntry
    previous_hash: str
    record_hash: str = ""


@dataclass(frozen=True)
class Verification:
    intact: bool
    records_checked: int
    first_broken_sequence: int = 0
    break_kind: ChainBreak | None = None
    head_sequence: int = 0
    head_hash: str = ""


@dataclass
class ChainVerifier:
    """Feeds rows in sequence order; stops at the first broken link."""

    key: bytes
    tenant: str
    previous_hash: str = ""
    expected_sequence: int = 1
    checked: int = 0
    broken: Verification | None = field(default=None)

    def feed(self, record: AuditRecord) -> bool:
        """False once the chain is broken (further rows are not looked at)."""
        if self.broken is not None:
            return False
        self.checked += 1
        if record.sequence != self.expected_sequence:
            missing = record.sequence > self.expected_sequence
            return self._break(record.sequence, ChainBreak.DELETED if missing else ChainBreak.INSERTED)
        if record.previous_hash != self.previous_hash:
            return self._break(record.sequence, ChainBreak.INSERTED)
        if not hmac.compare_digest(record_hash(self.key, record), record.record_hash):
            return self._break(record.sequence, ChainBreak.ALTERED)
        self.previous_hash = record.record_hash
        self.expected_sequence += 1
        return True

    def _break(self, sequence: int, kind: ChainBreak) -> bool:
        self.broken = Verification(False, self.checked, sequence, kind)
        return False

    def result(self, expected_head_hash: str = "") -> Verification:
        head_sequence = self.expected_sequence - 1
        if self.broken is not None:
            return Verification(
                False,
                self.broken.records_checked,
                self.broken.first_broken_sequence,
                self.broken.break_kind,
                head_sequence,
                self.previous_hash,
            )
        if expected_head_hash and expected_head_hash != self.previous_hash:
            return Verification(
                False, self.checked, head_sequence + 1, ChainBreak.TRUNCATED, head_sequence, self.previous_hash
            )
        return Verification(True, self.checked, head_sequence=head_sequence, head_hash=self.previous_hash)


def _canonical(record: AuditRecord) -> bytes:
    entry: dict[str, Any] = asdict(record.entry)
    entry["time"] = record.entry.time.isoformat()
    entry["decision"] = record.entry.decision.value
    payload = {"tenant": record.tenant, "sequence": record.sequence, "previous_hash": record.previous_hash, **entry}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=list).encode()


def record_hash(key: bytes, record: AuditRecord) -> str:
    return hmac.new(key, _canonical(record), hashlib.sha256).hexdigest()


def seal(key: bytes, tenant: str, sequence: int, entry: AuditEntry, previous_hash: str) -> AuditRecord:
    unsealed = AuditRecord(tenant, sequence, entry, previous_hash)
    return AuditRecord(tenant, sequence, entry, previous_hash, record_hash(key, unsealed))


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
