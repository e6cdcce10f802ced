"""The segmentation service's domain records: what the cores work with, the servicer converts from and to
messages and the stores map from and to rows."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from matcha.runtime.governance import DataClass, RecordPolicy
from matcha.segmentation.conditions import Node
from matcha.segmentation.methods import HDBSCAN_METHOD, KMEANS, RULES, FrozenModel, KMeansParameters, Rule

# A version's (built segmentation's or condition segment's) states, as stored.
BUILDING, READY, FAILED = 1, 2, 3
# A version's method, as stored.
METHOD_NUMBERS = {KMEANS: 1, HDBSCAN_METHOD: 2, RULES: 3}
METHOD_NAMES = {number: name for name, number in METHOD_NUMBERS.items()}


@dataclass(frozen=True)
class ErasedRecords:
    customers: int
    transactions: int
    events: int
    idempotency_replies: int


@dataclass(frozen=True)
class CustomerRow:
    id: str
    attributes: dict[str, Any]
    features: dict[str, float]
    join_time: datetime | None
    policy: RecordPolicy
    opted_out_channels: tuple[str, ...] = ()
    # Kept apart from the caller's opt-outs: IngestCustomers never clears them.
    unsubscribed_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemRow:
    id: str
    name: str
    category: str
    attributes: dict[str, Any]
    vector: list[float]
    model_id: str
    model_version: str


@dataclass(frozen=True)
class Unsubscribed:
    channels: tuple[str, ...]
    changed: bool  # False when the customer had already left the channel
    policy: RecordPolicy


@dataclass(frozen=True)
class StoredCustomer:
    key: int
    row: CustomerRow


@dataclass(frozen=True)
class TransactionBatch:
    ids: list[str]
    customer_ids: list[str]
    times: list[datetime]
    amounts: list[float]
    quantities: list[float]
    channels: list[str]
    item_ids: list[str]
    refunds: list[bool]


@dataclass(frozen=True)
class EventBatch:
    ids: list[str]
    customer_keys: list[int]
    types: list[int]
    times: list[datetime]
    item_ids: list[str]
    amounts: list[float]
    quantities: list[float]


@dataclass(frozen=True)
class EventCustomers:
    """The customers an events message names, as stored: rows of `key`, `id`, `data_class`,
    `consented_purposes`, `attributes` and `features` (only the keys asked for, None when none was),
    `purchases`, `spend`; and whether the tenant has a READY built segmentation to re-assign them in."""

    rows: list[asyncpg.Record]
    has_ready_segmentation: bool


@dataclass(frozen=True)
class StoredEvents:
    """What one events message changed: the ids stored (None when every event was new), how many, and the
    customers whose purchase aggregates changed, with their new `purchases` and `spend`."""

    stored_ids: list[str] | None
    stored: int
    folded: list[tuple[int, int, float]]


@dataclass(frozen=True)
class VersionRecord:
    id: int
    tenant: str
    name: str
    version: int
    description: str
    state: int
    progress: dict[str, Any]
    error: dict[str, Any] | None
    method: int
    features: list[str]
    model: dict[str, Any]
    silhouette: float
    seed: int
    population: int
    purpose: str
    create_subject: str
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class SegmentRecord:
    position: int
    id: str
    name: str
    size: int
    share: float
    outliers: bool
    condition: str
    profile: list[dict[str, Any]]
    top_features: list[str]
    persona: dict[str, Any] | None
    exemplars: list[tuple[str, float]]


@dataclass(frozen=True)
class SegmentsToStore:
    """A completed build's version details, ready to write."""

    model: dict[str, Any]
    snapshot: bytes
    silhouette: float
    population: int
    segments: list[dict[str, Any]]
    # (position, rank, customer key, distance)
    exemplars: list[tuple[int, int, int, float]]


@dataclass(frozen=True)
class MembershipsToStore:
    keys: np.ndarray
    positions: np.ndarray
    distances: np.ndarray
    confidences: np.ndarray


@dataclass(frozen=True)
class ChangeRecord:
    sequence: int
    time: datetime
    customer_id: str
    segmentation: str
    version: int
    from_segment: str
    to_segment: str
    to_name: str
    cause_id: str


@dataclass(frozen=True)
class MembershipRecord:
    segmentation: str
    version: int
    segment_id: str
    segment_name: str
    since: datetime


@dataclass(frozen=True)
class Move:
    customer_key: int
    from_segment: str
    to_position: int
    distance: float
    confidence: float
    cause_id: str


@dataclass(frozen=True)
class ConditionRecord:
    id: int
    tenant: str
    name: str
    version: int
    description: str
    definition: dict[str, Any]
    state: int
    progress: dict[str, Any]
    size: int
    purpose: str
    create_subject: str
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class ConditionChange:
    segment: ConditionRecord
    customer_key: int
    entered: bool
    cause_id: str


@dataclass(frozen=True)
class CustomerFacts:
    key: int
    id: str
    data_class: int
    consented_purposes: tuple[str, ...]
    attributes: dict[str, Any]
    features: dict[str, float]


@dataclass(frozen=True)
class PastEvents:
    """Stored events in time order, one numpy column each; `item_flags[i]` is set where the
    event's item is in the i-th item list asked for."""

    keys: np.ndarray
    types: np.ndarray
    times: np.ndarray
    amounts: np.ndarray
    item_flags: list[np.ndarray]

    def only(self, keys: np.ndarray) -> "PastEvents":
        """The events of these customers, still in time order."""
        kept = np.isin(self.keys, keys)
        return PastEvents(
            self.keys[kept], self.types[kept], self.times[kept], self.amounts[kept], [f[kept] for f in self.item_flags]
        )


@dataclass(frozen=True)
class CustomerInput:
    id: str
    attributes: dict[str, Any]
    features: dict[str, float]
    join_time: datetime | None
    # None: the call's declared data class applies.
    data_class: DataClass | None
    consented_purposes: frozenset[str]
    source: str
    subject_id: str
    opted_out_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransactionInput:
    id: str
    customer_id: str
    time: datetime | None
    amount: float
    quantity: float
    channel: str
    item_id: str
    refund: bool


@dataclass(frozen=True)
class EventInput:
    id: str
    customer_id: str
    type: int
    time: datetime | None
    item_id: str
    amount: float
    quantity: float


# A catalogue item is stored as given: the validated input is the row.
ItemInput = ItemRow


@dataclass(frozen=True)
class RecommendInput:
    customer_id: str
    segmentation: str
    limit: int  # 0: the default
    include_owned: bool
    exclude_item_ids: list[str]
    candidate_item_ids: list[str]


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    score: float
    # (kind, weight, related item id, explanation), strongest first
    reasons: list[tuple[str, float, str, str]]
    name: str = ""


@dataclass(frozen=True)
class Recommendations:
    items: list[RecommendedItem]
    segmentation: str
    version: int
    segment_id: str


@dataclass(frozen=True)
class PolicyInput:
    data_class: DataClass | None
    consented_purposes: frozenset[str]
    source: str
    subject_id: str


@dataclass
class IngestTotals:
    inserted: int = 0
    duplicates: int = 0
    customers_created: int = 0
    customers_updated: int = 0
    reassigned: int = 0
    late: int = 0
    condition_changes: int = 0

    def add(self, other: "IngestTotals") -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class BuildInput:
    name: str
    description: str
    features: list[str]
    method: str  # "" when the request names none
    kmeans: KMeansParameters
    min_cluster_size: int
    min_samples: int
    rules: list[Rule]
    transforms: dict[str, str]
    seed: int
    exemplar_count: int | None


@dataclass(frozen=True)
class SegmentationView:
    version: VersionRecord
    segments: list[SegmentRecord]
    model: FrozenModel | None
    # (k, silhouette) or (k, silhouette, stability, smallest share, reason), as the version was built.
    k_scores: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def method(self) -> str:
        return METHOD_NAMES[self.version.method]


@dataclass(frozen=True)
class CustomerView:
    row: CustomerRow
    features: dict[str, float]
    reference_time: datetime
    memberships: list[MembershipRecord]
    history: list[ChangeRecord]


@dataclass(frozen=True)
class AssignOutcome:
    segment_id: str
    segment_name: str
    version: int
    distance: float
    confidence: float
    outlier: bool
    alternatives: list[tuple[str, float]]


@dataclass(frozen=True)
class MemberPage:
    members: list[tuple[str, float, datetime]]
    next_page_token: str
    total: int


@dataclass(frozen=True)
class Comparison:
    feature_drift: list[tuple[str, float]]
    from_segment_ids: list[str]
    to_segment_ids: list[str]
    counts: list[list[int]]
    shifts: list[tuple[str, float, float]]
    appeared: list[str]
    vanished: list[str]
    common: int
    new: int
    departed: int


@dataclass(frozen=True)
class ConditionSegmentView:
    record: ConditionRecord
    node: Node
