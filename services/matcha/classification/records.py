"""The classification service's domain records: what the core works with, the servicer converts from and to
messages and the store maps from and to rows."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from matcha.classification.sentiment import ModelRef
from matcha.classification.training import LinearHead, Metrics
from matcha.runtime.governance import RecordPolicy


@dataclass(frozen=True)
class ExampleSubject:
    """A training example whose policy names a data subject."""

    example_id: str
    label: str
    policy: RecordPolicy


@dataclass(frozen=True)
class Lineage:
    training_set_sha256: str
    example_count: int
    # Empty unless asked for: they can number in the thousands.
    example_ids: list[str]
    embedding_model: ModelRef
    train_subject: str
    seed: int
    # {"collection", "filter", "label_field"} when the examples were read from a collection.
    collection: dict[str, Any] | None = None
    # Examples naming a data subject (written with the version, never read back with it).
    subjects: tuple[ExampleSubject, ...] = ()


@dataclass(frozen=True)
class NewClassifier:
    name: str
    description: str
    method: str
    head: LinearHead
    holdout: Metrics
    lineage: Lineage
    idempotency_key: str


@dataclass(frozen=True)
class ClassifierRecord:
    name: str
    version: int
    description: str
    labels: list[str]
    method: str
    # None once withdrawn: the weights of a version trained on an erased subject's examples are deleted.
    head: LinearHead | None
    holdout: Metrics
    lineage: Lineage
    created_at: datetime
    withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class SubjectErasure:
    examples: int
    withdrawn_versions: int
