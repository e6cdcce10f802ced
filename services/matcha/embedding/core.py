"""The embedding service's core: validation, governance rules and orchestration of model and store.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
"""

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcha.embedding.filters import SqlParams, compile_filter
from matcha.embedding.records import CollectionRecord, DocumentRow, SearchHit, StoredDocument
from matcha.embedding.store import VectorStore, text_digest
from matcha.models.encoders import Encoder, ModelInfo
from matcha.runtime import page_tokens
from matcha.runtime.batching import MicroBatcher
from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, require_describer
from matcha.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, Violations
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy, require_consent
from matcha.runtime.pii import DISCOVERY_MIN_SCORE, PiiEngine

COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ERASURE_ROLE = "admin"


@dataclass(frozen=True)
class Limits:
    max_items_per_call: int = 256
    max_text_chars: int = 8192
    max_id_chars: int = 256
    max_metadata_bytes: int = 16384
    max_description_chars: int = 1000
    default_top_k: int = 10
    max_top_k: int = 100
    default_page_size: int = 100
    max_page_size: int = 1000
    # A listing page stays under gRPC's default 4 MiB receive limit, which most clients keep.
    max_page_bytes: int = 3 * 1024 * 1024


@dataclass(frozen=True)
class DocumentInput:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # None: the call's declared data class applies.
    data_class: DataClass | None = None
    consented_purposes: frozenset[str] = frozenset()
    source: str = ""
    subject_id: str = ""


@dataclass(frozen=True)
class UpsertOutcome:
    inserted: int
    updated: int
    unchanged: int
    model: ModelInfo
    # Documents the personal-data engine raised to PERSONAL (declared lower).
    raised_to_personal: int = 0


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[SearchHit]
    # None when the query was a vector.
    model: ModelInfo | None


@dataclass(frozen=True)
class DocumentPage:
    documents: list[StoredDocument]
    next_page_token: str
    # The model the collection's vectors were produced with.
    model: ModelInfo


def _parse_filter(violations: Violations, text: str, max_chars: int) -> dict[str, Any]:
    if not text.strip():
        return {}
    if len(text) > max_chars:
        violations.add("filter", f"at most {max_chars} characters")
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        violations.add("filter", 'a JSON object in Search\'s filter syntax, e.g. {"lang": "en"}')
        return {}
    if "\\u0000" in json.dumps(value):
        # PostgreSQL text and jsonb cannot hold NUL: no stored value can match one.
        violations.add("filter", "must not contain NUL characters")
        return {}
    return value


def _approximate_bytes(document: StoredDocument) -> int:
    vector = 0 if document.embedding is None else 4 * len(document.embedding)
    return len(document.text.encode()) + len(json.dumps(document.metadata)) + vector + 256


class EmbeddingCore:
    def __init__(
        self,
        encoder: Encoder,
        batcher: MicroBatcher[str, np.ndarray],
        store: VectorStore,
        limits: Limits,
        pii_engine: PiiEngine,
    ) -> None:
        self._encoder = encoder
        self._pii = pii_engine
        self._batcher = batcher
        self._store = store
        self.limits = limits

    @property
    def model(self) -> ModelInfo:
        return self._encoder.info

    async def embed(self, call: CallContext, texts: list[str]) -> tuple[list[np.ndarray], ModelInfo]:
        violations = Violations()
        violations.check_texts(
            "texts", texts, max_items=self.limits.max_items_per_call, max_chars=self.limits.max_text_chars
        )
        violations.raise_if_any()
        return await self._batcher.submit(texts), self.model

    async def create_collection(self, call: CallContext, name: str, description: str) -> CollectionRecord:
        violations = Violations()
        self._check_name(violations, "name", name)
        violations.check(
            len(description) <= self.limits.max_description_chars,
            "description",
            f"at most {self.limits.max_description_chars} characters",
        )
        violations.raise_if_any()
        return await self._store.create_collection(call.tenant, name, description, self.model)

    async def get_collection(self, call: CallContext, name: str) -> CollectionRecord:
        self._require_name(name, "name")
        return await self._store.get_collection(call.tenant, name, count_documents=True)

    async def list_collections(self, call: CallContext) -> list[CollectionRecord]:
        return await self._store.list_collections(call.tenant)

    async def delete_collection(self, call: CallContext, name: str) -> int:
        self._require_name(name, "name")
        return await self._store.delete_collection(call.tenant, name)

    async def upsert(self, call: CallContext, collection_name: str, documents: list[DocumentInput]) -> UpsertOutcome:
        policies = self._validate_documents(call, collection_name, documents)
        raised = await self._discover_personal_data(call, documents, policies)
        collection = await self._store.get_collection(call.tenant, collection_name)
        self._require_current_model(collection)
        stored = await self._store.stored_states(collection.id, [document.id for document in documents])

        to_embed: list[int] = []
        changed: list[tuple[DocumentInput, RecordPolicy, bool]] = []
        inserted = updated = unchanged = 0
        for document, policy in zip(documents, policies, strict=True):
            previous = stored.get(document.id)
            text_changed = previous is None or previous.text_sha256 != text_digest(document.text)
            if previous is None:
                inserted += 1
            elif text_changed or previous.metadata != document.metadata or previous.policy != policy:
                updated += 1
            else:
                unchanged += 1
                continue
            if text_changed:
                to_embed.append(len(changed))
            changed.append((document, policy, text_changed))

        vectors = await self._batcher.submit([changed[index][0].text for index in to_embed])
        vector_of = dict(zip(to_embed, vectors, strict=True))
        rows = [
            DocumentRow(document.id, document.text, document.metadata, policy, vector_of.get(position))
            for position, (document, policy, _) in enumerate(changed)
        ]
        await self._store.write_documents(collection.id, self.model, rows)
        return UpsertOutcome(inserted, updated, unchanged, self.model, raised)

    async def _discover_personal_data(
        self, call: CallContext, documents: list[DocumentInput], policies: list[RecordPolicy]
    ) -> int:
        """Data discovery: a text holding personal data makes its record PERSONAL, whatever was declared."""
        pending = [index for index, policy in enumerate(policies) if policy.data_class < DataClass.PERSONAL]
        if not pending:
            return 0
        texts = [documents[index].text for index in pending]
        # The NER is CPU-bound: off the event loop.
        found = await asyncio.to_thread(self._pii.analyze_many, texts, field="documents")
        raised = [
            index
            for index, findings in zip(pending, found, strict=True)
            if any(finding.score >= DISCOVERY_MIN_SCORE for finding in findings)
        ]
        for index in raised:
            policies[index] = dataclasses.replace(policies[index], data_class=DataClass.PERSONAL)
            require_consent(DataClass.PERSONAL, policies[index].consented_purposes, call.purpose)
        return len(raised)

    async def search(
        self,
        call: CallContext,
        collection_name: str,
        *,
        text: str | None,
        vector: list[float] | None,
        top_k: int,
        metadata_filter: dict[str, Any],
        min_score: float,
    ) -> SearchOutcome:
        violations = Violations()
        self._check_name(violations, "collection", collection_name)
        if text is None and vector is None:
            violations.add("query", "give a text or a vector")
        if text is not None:
            violations.check_text("text", text, self.limits.max_text_chars)
        top_k = top_k or self.limits.default_top_k
        violations.check(1 <= top_k <= self.limits.max_top_k, "top_k", f"between 1 and {self.limits.max_top_k}")
        violations.check(-1.0 <= min_score <= 1.0, "min_score", "between -1 and 1")
        violations.raise_if_any()
        compile_filter(metadata_filter, SqlParams())  # refuse a malformed filter before any work

        collection = await self._store.get_collection(call.tenant, collection_name)
        if vector is not None:
            query = np.asarray(vector, dtype=np.float32)
            if query.shape != (collection.model.dimension,) or not np.all(np.isfinite(query)):
                raise InvalidArgument(
                    "bad query vector",
                    violations=[FieldViolation("vector.values", f"{collection.model.dimension} finite numbers")],
                )
            model = None
        else:
            assert text is not None  # refused above when neither is given
            self._require_current_model(collection)
            (query,) = await self._batcher.submit([text])
            model = self.model
        hits = await self._store.search(
            collection,
            query,
            top_k=top_k,
            purpose=call.purpose,
            # Reads are capped at the declared class: declaring less than the data is never a way in.
            max_data_class=call.data_class,
            metadata_filter=metadata_filter,
            min_score=min_score,
        )
        return SearchOutcome(hits, model)

    async def list_documents(
        self,
        call: CallContext,
        collection_name: str,
        *,
        page_size: int,
        page_token: str,
        filter_json: str,
        max_data_class: int,
        include_vectors: bool,
    ) -> DocumentPage:
        """`max_data_class` as on the wire: 0 means every class."""
        violations = Violations()
        valid_class = max_data_class == 0 or max_data_class in set(DataClass)
        violations.check(valid_class, "max_data_class", "a DataClass, or unset for every class")
        ceiling = DataClass.from_wire(max_data_class) if valid_class else DataClass.PERSONAL
        ceiling = min(ceiling, call.data_class)
        self._check_name(violations, "collection", collection_name)
        page_size = page_size or self.limits.default_page_size
        violations.check(1 <= page_size <= self.limits.max_page_size, "page_size", f"1 to {self.limits.max_page_size}")
        metadata_filter = _parse_filter(violations, filter_json, self.limits.max_metadata_bytes)
        listing = page_tokens.listing_key(collection_name, metadata_filter, int(ceiling), include_vectors)
        after_id = page_tokens.decode(violations, page_token, listing)
        if after_id is not None and not isinstance(after_id, str):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        compile_filter(metadata_filter, SqlParams())  # refuse a malformed filter before any work

        collection = await self._store.get_collection(call.tenant, collection_name)
        # One row beyond the page tells whether another page follows.
        rows = await self._store.list_documents(
            collection,
            purpose=call.purpose,
            max_data_class=ceiling,
            metadata_filter=metadata_filter,
            after_id=after_id,
            limit=page_size + 1,
            include_vectors=include_vectors,
        )
        documents: list[StoredDocument] = []
        size = 0
        for row in rows[:page_size]:
            size += _approximate_bytes(row)
            if documents and size > self.limits.max_page_bytes:
                break
            documents.append(row)
        more = len(documents) < len(rows)
        token = page_tokens.encode(listing, documents[-1].external_id) if more else ""
        return DocumentPage(documents, token, collection.model)

    async def delete(self, call: CallContext, collection_name: str, ids: list[str]) -> int:
        violations = Violations()
        self._check_name(violations, "collection", collection_name)
        violations.check(
            0 < len(ids) <= self.limits.max_items_per_call,
            "ids",
            f"between 1 and {self.limits.max_items_per_call} ids",
        )
        for index, external_id in enumerate(ids):
            violations.check(bool(external_id), f"ids[{index}]", "must not be empty")
        violations.raise_if_any()
        collection = await self._store.get_collection(call.tenant, collection_name)
        return await self._store.delete_documents(collection.id, ids)

    async def erase_subject(self, call: CallContext, subject_id: str) -> tuple[int, list[str]]:
        if not subject_id:
            raise InvalidArgument(
                "subject_id is required", violations=[FieldViolation("subject_id", "must not be empty")]
            )
        call.require_role(ERASURE_ROLE)
        return await self._store.erase_subject(call.tenant, subject_id)

    async def describe_subject(self, call: CallContext, subject_id: str) -> list[SubjectHolding]:
        check_subject_id(subject_id)
        require_describer(call)
        return cap_exports(await self._store.describe_subject(call.tenant, subject_id, call.data_class))

    def _validate_documents(
        self, call: CallContext, collection_name: str, documents: list[DocumentInput]
    ) -> list[RecordPolicy]:
        violations = Violations()
        self._check_name(violations, "collection", collection_name)
        violations.check(
            0 < len(documents) <= self.limits.max_items_per_call,
            "documents",
            f"between 1 and {self.limits.max_items_per_call} documents per call",
        )
        first_seen: dict[str, int] = {}
        policies = []
        for index, document in enumerate(documents):
            path = f"documents[{index}]"
            if not document.id:
                violations.add(f"{path}.id", "must not be empty")
            elif len(document.id) > self.limits.max_id_chars:
                violations.add(f"{path}.id", f"at most {self.limits.max_id_chars} characters")
            elif document.id in first_seen:
                violations.add(f"{path}.id", f"duplicates documents[{first_seen[document.id]}].id")
            else:
                first_seen[document.id] = index
            violations.check_text(f"{path}.text", document.text, self.limits.max_text_chars)
            if len(json.dumps(document.metadata)) > self.limits.max_metadata_bytes:
                violations.add(f"{path}.metadata", f"at most {self.limits.max_metadata_bytes} bytes of JSON")
            policy = RecordPolicy.submitted(
                call, document.data_class, document.consented_purposes, document.source, document.subject_id
            )
            violations.check(
                policy.data_class <= call.data_class,
                f"{path}.policy.data_class",
                f"{policy.data_class.name} exceeds the call's declared data class {call.data_class.name}",
            )
            policies.append(policy)
        violations.raise_if_any()
        for policy in policies:
            require_consent(policy.data_class, policy.consented_purposes, call.purpose)
        return policies

    @staticmethod
    def _check_name(violations: Violations, path: str, name: str) -> None:
        violations.check(
            bool(COLLECTION_NAME.match(name)),
            path,
            "1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )

    def _require_name(self, name: str, path: str) -> None:
        violations = Violations()
        self._check_name(violations, path, name)
        violations.raise_if_any()

    def _require_current_model(self, collection: CollectionRecord) -> None:
        if (collection.model.id, collection.model.version) != (self.model.id, self.model.version):
            raise FailedPrecondition(
                f"collection {collection.name!r} holds vectors of {collection.model.id} "
                f"{collection.model.version}; this service runs {self.model.id} {self.model.version}",
                reason="MODEL_MISMATCH",
                metadata={"collection_model": collection.model.id, "service_model": self.model.id},
            )
