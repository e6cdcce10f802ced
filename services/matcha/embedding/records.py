"""The embedding service's domain records: what the core works with, the servicer converts from and to
messages and the store maps from and to rows."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from matcha.models.encoders import ModelInfo
from matcha.runtime.governance import RecordPolicy


@dataclass(frozen=True)
class CollectionRecord:
    id: int
    name: str
    description: str
    model: ModelInfo
    created_at: datetime
    # Counted only when asked: counting is a scan, and searches look collections up on every call.
    document_count: int | None = None


@dataclass(frozen=True)
class StoredState:
    """What is already stored for a document id: enough to tell whether an upsert changes it."""

    text_sha256: bytes
    metadata: dict[str, Any]
    policy: RecordPolicy


@dataclass(frozen=True)
class DocumentRow:
    external_id: str
    text: str
    metadata: dict[str, Any]
    policy: RecordPolicy
    # None keeps the stored vector (only metadata or policy changed).
    embedding: np.ndarray | None


@dataclass(frozen=True)
class StoredDocument:
    external_id: str
    text: str
    metadata: dict[str, Any]
    policy: RecordPolicy
    updated_at: datetime
    # Read only when asked for.
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class SearchHit:
    external_id: str
    score: float
    text: str
    metadata: dict[str, Any]
    policy: RecordPolicy
