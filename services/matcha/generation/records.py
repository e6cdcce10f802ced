"""The generation service's domain records: what the core works with, the servicer converts from and to
messages and the store maps from and to rows."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from matcha.generation.voice import LexicalProfile, SemanticReference
from matcha.models.encoders import ModelInfo
from matcha.runtime.governance import RecordPolicy


@dataclass(frozen=True)
class TemplateRecord:
    name: str
    version: int
    description: str
    system: str
    template: str
    variables: list[str]
    sha256: str
    create_subject: str
    created_at: datetime


@dataclass(frozen=True)
class ExemplarRecord:
    text: str
    document_id: str
    centrality: float
    embedding: np.ndarray


@dataclass(frozen=True)
class VoiceSource:
    """A source document whose policy names a data subject."""

    document_id: str
    policy: RecordPolicy


@dataclass(frozen=True)
class NewVoice:
    name: str
    description: str
    # None once withdrawn (with `reference`): learned from an erased subject's documents.
    lexical: LexicalProfile | None
    preferred_terms: list[str]
    banned_terms: list[str]
    exemplars: list[ExemplarRecord]
    reference: SemanticReference | None
    model: ModelInfo
    corpus_sha256: str
    # {"collection", "filter", "limit"} when learned from a collection; None for inline documents.
    source_collection: dict[str, Any] | None
    # Documents naming a data subject (written with the version, never read back with it).
    sources: tuple[VoiceSource, ...]


@dataclass(frozen=True)
class VoiceRecord(NewVoice):
    version: int
    create_subject: str
    created_at: datetime
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class SubjectErasure:
    exemplars: int
    sources: int
    withdrawn_versions: int


@dataclass(frozen=True)
class Page:
    """Rows of one page, and the key to continue after (None on the last page)."""

    items: list
    next_after: str | None
