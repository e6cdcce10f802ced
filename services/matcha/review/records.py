"""The review service's domain records: what the core works with, the servicer converts from and to
messages and the store maps from and to rows."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from matcha.runtime.governance import DataClass


@dataclass(frozen=True)
class ItemRow:
    id: str
    tenant: str
    status: str
    version: int
    format: str
    channel: str
    target: str
    audience: dict[str, Any]
    provenance: dict[str, Any]
    voice_score: float | None
    flags: list[dict[str, Any]]
    priority: int
    due_at: datetime
    four_eyes: bool
    submitter: str
    data_class: int
    purpose: str
    claimed_by: str | None
    claimed_at: datetime | None
    claim_expires_at: datetime | None
    approved_version: int | None
    approved_sha256: str | None
    approved_provenance_sha256: str | None
    approved_diff: str
    resume_run_id: str
    resume_signal_key: str
    resume_capability: str
    subject_ids: list[str]
    created_at: datetime
    updated_at: datetime
    # Current version's text, joined from review_versions.
    title: str
    content: str
    content_sha256: str
    version_author: str


@dataclass(frozen=True)
class VersionRow:
    number: int
    title: str
    content: str
    content_sha256: str
    origin: str
    author: str
    provenance: dict[str, Any]
    comment: str
    diff: str
    created_at: datetime


@dataclass(frozen=True)
class DecisionRow:
    id: int
    outcome: str
    comment: str
    reviewer: str
    role: str
    version: int
    content_sha256: str
    decided_at: datetime
    # Approvals: the digest of the provenance the decided text came from.
    provenance_sha256: str = ""


@dataclass(frozen=True)
class EventRow:
    sequence: int
    at: datetime
    type: str
    item_id: str
    status: str
    version: int
    actor: str
    decision: DecisionRow | None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    state: str
    attempts: int
    last_error_code: int | None
    last_error: str
    delivered_at: datetime | None


@dataclass(frozen=True)
class SinkDeliveryRow:
    sink: str
    delivery: DeliveryRow


@dataclass(frozen=True)
class PublicationRow:
    id: str
    version: int
    content_sha256: str
    publisher: str
    published_at: datetime
    sinks: list[SinkDeliveryRow]
    # The trace of the Publish call.
    trace_id: str = ""


@dataclass(frozen=True)
class ItemDetails:
    item: ItemRow
    resume_delivery: DeliveryRow | None
    publication: PublicationRow | None
    versions: list[VersionRow] = field(default_factory=list)
    decisions: list[DecisionRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxEntry:
    """A delivery the dispatcher took (leased) to attempt now."""

    id: int
    tenant: str
    item_id: str
    kind: str
    destination: str
    key: str
    payload: dict[str, Any]
    data_class: int
    purpose: str
    attempts: int
    # The run's resume capability, for run signals.
    capability: str = ""
    # Start of its retry window (written, or queued again by hand).
    retry_from: datetime | None = None


@dataclass(frozen=True)
class NewItem:
    format: str
    channel: str
    target: str
    audience: dict[str, Any]
    provenance: dict[str, Any]
    voice_score: float | None
    flags: list[dict[str, Any]]
    priority: int
    due_at: datetime
    four_eyes: bool
    submitter: str
    data_class: int
    purpose: str
    resume_run_id: str
    resume_signal_key: str
    resume_capability: str
    subject_ids: list[str]


@dataclass(frozen=True)
class NewVersion:
    title: str
    content: str
    content_sha256: str
    origin: str
    author: str
    provenance: dict[str, Any]
    comment: str
    diff: str


@dataclass(frozen=True)
class ListFilter:
    statuses: list[str]
    channel: str
    segment_id: str
    due_before: datetime | None
    # None: any; "": unclaimed; otherwise a subject.
    claimed_by: str | None


@dataclass(frozen=True)
class ItemsErased:
    items: int = 0
    versions: int = 0
    decisions: int = 0
    events: int = 0
    outbox_rows: int = 0
    publications: int = 0
    files: int = 0
    experiment_arms: int = 0
    outcome_events: int = 0
    audience_memberships: int = 0


@dataclass(frozen=True)
class SubjectItem:
    """An item naming a data subject: what its published file is classed and kept for."""

    id: str
    data_class: DataClass
    purpose: str
