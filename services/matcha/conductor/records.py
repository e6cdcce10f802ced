"""The conductor service's domain records: what the core works with, the servicer converts from and to
messages and the store maps from and to rows."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PlanRow:
    name: str
    version: int
    spec: dict[str, Any]
    source: str
    source_format: str
    sha256: str
    create_subject: str
    created_at: datetime


@dataclass(frozen=True)
class Revocation:
    subject: str
    reason: str
    revoked_by: str
    revoked_at: datetime


@dataclass(frozen=True)
class StepRow:
    step_id: str
    position: int
    state: str
    method: str = ""
    attempts: int = 0
    output: Any = None
    error: dict | None = None
    completed: int = 0
    total: int = 0
    failed: int = 0
    awaited_keys: tuple[str, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class RunRow:
    id: str
    tenant: str
    plan_name: str
    plan_version: int
    state: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    context: dict[str, Any]
    credential: bytes
    pseudonyms: bytes | None
    error: dict | None
    resumed_from: str | None
    key_root: str
    labels: dict[str, str]
    trace_id: str
    trace_span_id: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    deadline: datetime
    steps: tuple[StepRow, ...] = ()


@dataclass(frozen=True)
class NewRun:
    tenant: str
    plan_name: str
    plan_version: int
    inputs: dict[str, Any]
    context: dict[str, Any]
    credential: bytes
    labels: dict[str, str]
    deadline: datetime
    steps: list[tuple[str, str]]  # (step id, method)
    trace_id: str
    trace_span_id: str
    start_key: str | None = None
    resumed_from: str | None = None
    key_root: str | None = None
    # Checkpoints reused from the resumed run.
    completed_steps: dict[str, tuple[str, Any]] = field(default_factory=dict)
    completed_items: list[tuple[str, int, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Event:
    type: str
    run_state: str
    step_id: str = ""
    step_state: str | None = None
    item_index: int | None = None
    attempt: int = 0
    progress: dict[str, int] | None = None
    signal_key: str = ""
    error: dict | None = None


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    time: datetime
    event: Event


@dataclass(frozen=True)
class Claim:
    run_id: str
    # Steps ran before: after a park, or under a process that went away.
    started: bool
    # The previous process went away while running it (lease expired or released).
    recovered: bool


@dataclass(frozen=True)
class RunFilter:
    plan_name: str = ""
    states: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertTriggerSpec:
    """What a trigger's creator chose: which alerts, which plan, and how an alert becomes the run's inputs."""

    name: str
    watch: str  # "" with all_watches
    all_watches: bool
    plan_name: str
    plan_version: int  # 0: the latest when each run starts
    alert_inputs: dict[str, str]  # plan input -> alert field
    fixed_inputs: dict[str, Any]
    kinds: tuple[str, ...]  # NEW_SIGNAL, SENTIMENT_SHIFT; every kind when empty


@dataclass(frozen=True)
class AlertTriggerRow:
    tenant: str
    id: str
    spec: AlertTriggerSpec
    purpose: str
    data_class: str
    creator: str
    roles: tuple[str, ...]
    credential: bytes
    state: str  # ACTIVE or STOPPED
    stop_reason: dict | None
    last_sequence: int
    runs_started: int
    created_at: datetime
