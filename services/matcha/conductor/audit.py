"""The conductor's audit ledger: one row per hop, on the runtime's keyed hash chain (`matcha.runtime.chain`)."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from matcha.runtime.chain import ChainBreak, ChainedRecord, ChainVerifier, Verification, digest, seal

__all__ = ["AuditEntry", "AuditRecord", "ChainBreak", "ChainVerifier", "Decision", "Verification", "digest", "seal"]


class Decision(StrEnum):
    ALLOW = "ALLOW"
    REDACT = "REDACT"
    DENY = "DENY"


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


AuditRecord = ChainedRecord[AuditEntry]
