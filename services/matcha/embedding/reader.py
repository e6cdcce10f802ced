"""Embedding collections as a data source for other services.

A service that learns from a collection (a voice, a classifier, signals) reads it on behalf of its
caller: every page is requested with the caller's token, purpose and data class, so the embedding
service itself decides what the caller may see (tenant, consented purposes), and documents above the
class the call declared (which this service's clearance admitted) are never returned to it.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from opentelemetry.sdk.trace import TracerProvider

from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime import governance as gov
from matcha.runtime.channels import PLAINTEXT, ChannelPool, Transport
from matcha.runtime.client import error_details, governance_metadata
from matcha.runtime.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MatchaError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Violations,
)
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy
from matcha.runtime.messages import data_class_message

# The embedding service's largest page; its pages also stay under 4 MiB whatever their count.
PAGE_SIZE = 1000
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}
_PASSED_ON = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}


@dataclass(frozen=True)
class CollectionSource:
    """What a caller asks to read: a collection, a metadata filter (Search's syntax), a cap (0: the default)."""

    collection: str
    metadata_filter: dict[str, Any] = field(default_factory=dict)
    limit: int = 0

    def as_record(self, limit: int) -> dict[str, Any]:
        """What a service stores as provenance, with the cap actually applied."""
        return {"collection": self.collection, "filter": self.metadata_filter, "limit": limit}


@dataclass(frozen=True)
class CollectionDocument:
    id: str
    text: str
    metadata: dict[str, Any]
    policy: RecordPolicy
    updated_at: datetime
    # Only when read with vectors.
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class CollectionContents:
    documents: list[CollectionDocument]
    # The model the collection's vectors were produced with.
    model_id: str
    model_version: str
    # The cap that applied (the source's, or the default).
    limit: int


# How filters address metadata fields: segments of letters, digits, '_' and '-', separated by dots.
_METADATA_FIELD = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64})*$")


def check_collection_source(violations: Violations, path: str, source: CollectionSource, *, max_limit: int) -> None:
    """What can be checked before reading: a named collection, a cap in range (0: the default)."""
    violations.check(bool(source.collection), f"{path}.collection", "must not be empty")
    violations.check(0 <= source.limit <= max_limit, f"{path}.limit", f"1 to {max_limit}, or 0 for the default")


def check_metadata_field(violations: Violations, path: str, name: str) -> None:
    """A metadata field a caller names (e.g. where labels are), spelled as filters spell it."""
    violations.check(
        bool(_METADATA_FIELD.match(name)), path, "a metadata field: letters, digits, '_' and '-', separated by '.'"
    )


def metadata_value(metadata: dict[str, Any], dotted: str) -> Any:
    """A metadata field addressed as filters address it (`review.label`); None when absent."""
    value: Any = metadata
    for segment in dotted.split("."):
        if not isinstance(value, dict) or segment not in value:
            return None
        value = value[segment]
    return value


class CollectionReader:
    """Reads whole (filtered) collections through `EmbeddingService.ListDocuments`, page by page."""

    def __init__(
        self,
        address: str | None,
        *,
        address_setting: str,
        tracer_provider: TracerProvider | None = None,
        timeout_seconds: float = 30.0,
        transport: Transport = PLAINTEXT,
    ) -> None:
        """`address_setting` names the variable that configures `address`, for the operator's benefit."""
        self._address = address
        self._address_setting = address_setting
        self._pool = ChannelPool(transport=transport, tracer_provider=tracer_provider)
        self._timeout = timeout_seconds

    async def read(
        self,
        call: CallContext,
        source: CollectionSource,
        *,
        field_path: str,
        default_limit: int,
        max_limit: int,
        include_vectors: bool = False,
    ) -> CollectionContents:
        """Every document of `source` the caller may see, in id order, or a refusal naming `field_path`'s fields.

        More than the cap is refused rather than truncated: a profile or a classifier learned from an
        arbitrary first part of a collection would be wrong without anyone noticing.
        """
        violations = Violations()
        check_collection_source(violations, field_path, source, max_limit=max_limit)
        violations.raise_if_any()
        limit = source.limit or default_limit
        stub = embedding_pb2_grpc.EmbeddingServiceStub(self._open())
        metadata = self._metadata(call)
        filter_json = json.dumps(source.metadata_filter) if source.metadata_filter else ""
        documents: list[CollectionDocument] = []
        token = ""
        while True:
            request = embedding_pb2.ListDocumentsRequest(
                collection=source.collection,
                # One document beyond the cap is enough to know it is exceeded.
                page_size=min(PAGE_SIZE, limit + 1 - len(documents)),
                page_token=token,
                filter=filter_json,
                max_data_class=data_class_message(call.data_class),
                include_vectors=include_vectors,
            )
            try:
                page = await stub.ListDocuments(request, metadata=metadata, timeout=self._timeout)
            except grpc.aio.AioRpcError as error:
                raise self._refusal(error, field_path) from None
            documents.extend(_document(message, include_vectors) for message in page.documents)
            if len(documents) > limit:
                raise FailedPrecondition(
                    f"collection {source.collection!r} has more than {limit} documents matching the filter for this "
                    f"call; narrow {field_path}.filter or raise {field_path}.limit (at most {max_limit})",
                    reason="COLLECTION_TOO_LARGE",
                    metadata={"collection": source.collection, "limit": str(limit)},
                )
            token = page.next_page_token
            if not token:
                return CollectionContents(documents, page.model.id, page.model.version, limit)

    async def close(self) -> None:
        await self._pool.close()

    def _open(self) -> grpc.aio.Channel:
        if not self._address:
            raise Unavailable(
                f"this service reads no collections: {self._address_setting} is not set",
                reason="EMBEDDING_NOT_CONFIGURED",
                metadata={"setting": self._address_setting},
            )
        return self._pool.channel(self._address)

    @staticmethod
    def _metadata(call: CallContext) -> tuple[tuple[str, str], ...]:
        metadata = governance_metadata(call.bearer_token, purpose=call.purpose, data_class=call.data_class)
        metadata.append((gov.TENANT_HEADER, call.tenant))
        if call.request_id:
            metadata.append((gov.REQUEST_ID_HEADER, call.request_id))
        return tuple(metadata)

    def _refusal(self, error: grpc.aio.AioRpcError, field_path: str) -> MatchaError:
        """The embedding service's answer, in terms of the caller's own request."""
        details = error_details(error)
        if details.code == grpc.StatusCode.INVALID_ARGUMENT:
            violations = [
                FieldViolation(f"{field_path}.{name}", description)
                for name, description in details.field_violations.items()
            ]
            return InvalidArgument(details.message, violations=violations, reason=details.reason or None)
        if details.code in _PASSED_ON:
            return _PASSED_ON[details.code](details.message, reason=details.reason or None, metadata=details.metadata)
        transient = details.code in _TRANSIENT
        return Unavailable(
            f"the embedding service at {self._address} could not be read ({details.code.name}): {details.message}",
            reason="EMBEDDING_UNAVAILABLE",
            metadata={"code": details.code.name},
            retry_after_seconds=(details.retry_after_seconds or 1.0) if transient else None,
        )


def _document(message: embedding_pb2.StoredDocument, include_vectors: bool) -> CollectionDocument:
    policy = message.policy
    return CollectionDocument(
        id=message.id,
        text=message.text,
        metadata=json_format.MessageToDict(message.metadata),
        policy=RecordPolicy(
            DataClass.from_wire(policy.data_class),
            frozenset(policy.consented_purposes),
            policy.source,
            policy.subject_id,
        ),
        updated_at=message.update_time.ToDatetime(tzinfo=UTC),
        embedding=np.asarray(message.embedding.values, dtype=np.float32) if include_vectors else None,
    )
