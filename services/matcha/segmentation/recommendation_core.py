"""Recommendations' calls: the catalogue (IngestItems) and Recommend, which scores it for a customer from the
purchases of everyone eligible, of the customer's segment and from item vectors.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
"""

import asyncio
from dataclasses import replace

import numpy as np

from matcha.runtime.errors import FailedPrecondition, NotFound, Violations
from matcha.runtime.governance import CallContext, require_consent
from matcha.segmentation.checks import Limits, check_id, check_name, finite
from matcha.segmentation.customer_store import CustomerStore
from matcha.segmentation.recommend import (
    CO_OCCURRENCE,
    GLOBAL_POPULARITY,
    SEGMENT_POPULARITY,
    Reason,
    Weights,
    recommend,
    similarity_matrix,
)
from matcha.segmentation.recommendation_store import RecommendationStore
from matcha.segmentation.records import ItemInput, Recommendations, RecommendedItem, RecommendInput, VersionRecord
from matcha.segmentation.versions_core import VersionsCore


class RecommendationCore:
    def __init__(
        self, store: RecommendationStore, customers: CustomerStore, versions: VersionsCore, limits: Limits
    ) -> None:
        self._store = store
        self._customers = customers
        self._versions = versions
        self.limits = limits

    async def ingest_items(self, call: CallContext, items: list[ItemInput]) -> tuple[int, int]:
        violations = Violations()
        limits = self.limits
        limit = limits.max_items_per_call
        violations.check(0 < len(items) <= limit, "items", f"between 1 and {limit} items per call")
        first_seen: dict[str, int] = {}
        # Every vector of the batch shares the first one's dimension and model.
        reference: tuple[tuple[int, str, str], int] | None = None
        for index, item in enumerate(items):
            path = f"items[{index}]"
            check_id(violations, f"{path}.id", item.id, first_seen, index, "items", self.limits.max_id_chars)
            violations.check(len(item.name) <= limits.max_item_name_chars, f"{path}.name", "at most 500 characters")
            violations.check(
                len(item.category) <= limits.max_category_chars, f"{path}.category", "at most 200 characters"
            )
            if not item.vector:
                violations.check(not item.model_id, f"{path}.vector_model", "given without a vector")
                continue
            if len(item.vector) > limits.max_vector_dimension:
                violations.add(f"{path}.vector", f"at most {limits.max_vector_dimension} dimensions")
            elif not all(map(finite, item.vector)):
                violations.add(f"{path}.vector", "every component must be a finite number")
            elif not any(item.vector):
                # Cosine similarity to a zero vector is undefined.
                violations.add(f"{path}.vector", "must not be all zeros")
            signature = (len(item.vector), item.model_id, item.model_version)
            if reference is None:
                reference = (signature, index)
            elif signature != reference[0]:
                violations.add(f"{path}.vector", f"{_signature_text(signature)} differs from items[{reference[1]}]'s")
        violations.raise_if_any()
        async with self._store.pool.acquire() as connection, connection.transaction():
            await self._store.lock_items(connection, call.tenant)
            stored = await self._store.item_vector_signature(connection, call.tenant, [item.id for item in items])
            if stored is not None:
                for index, item in enumerate(items):
                    signature = (len(item.vector), item.model_id, item.model_version)
                    if item.vector and signature != stored:
                        violations.add(
                            f"items[{index}].vector",
                            f"{_signature_text(signature)}; the tenant's items have {_signature_text(stored)}",
                        )
                violations.raise_if_any()
            return await self._store.upsert_items(connection, call.tenant, items)

    async def recommend(self, call: CallContext, request: RecommendInput) -> Recommendations:
        violations = Violations()
        limits = self.limits
        violations.check(bool(request.customer_id), "customer_id", "must not be empty")
        if request.segmentation:
            check_name(violations, "segmentation", request.segmentation)
        limit = request.limit or 10
        most = limits.max_recommendations
        violations.check(1 <= limit <= most, "limit", f"between 1 and {most}, or 0 for 10")
        for path, ids in (
            ("exclude_item_ids", request.exclude_item_ids),
            ("candidate_item_ids", request.candidate_item_ids),
        ):
            if violations.check(len(ids) <= limits.max_listed_items, path, f"at most {limits.max_listed_items} ids"):
                for index, item_id in enumerate(ids):
                    violations.check(0 < len(item_id) <= limits.max_id_chars, f"{path}[{index}]", "1 to 128 characters")
        violations.raise_if_any()
        stored = await self._customers.customer(self._customers.pool, call.tenant, request.customer_id)
        require_consent(stored.row.policy.data_class, stored.row.policy.consented_purposes, call.purpose)
        version: VersionRecord | None
        if request.segmentation:
            version = await self._versions.ready(call, request.segmentation, 0)
        else:
            version = await self._versions.latest_ready_version(call.tenant)
            if version is None:
                raise NotFound(
                    "no READY segmentation to take the customer's segment from", reason="SEGMENTATION_NOT_FOUND"
                )
        if not await self._store.has_item_history(call.tenant):
            raise FailedPrecondition(
                "no transaction of the tenant names an item (Transaction.item_id)", reason="NO_ITEM_HISTORY"
            )
        weights = Weights()
        history, position = await self._store.purchase_history(call.tenant, call.purpose, stored.key, version.id)
        evidence = await asyncio.to_thread(history.evidence, weights)
        anchors = [evidence.items[anchor] for anchor in evidence.anchors.tolist()]
        similar = await self._store.similar_items(call.tenant, anchors, weights.neighbours)
        if similar:
            evidence = replace(evidence, similarity=similarity_matrix(similar, anchors, evidence.items))
        model = self._versions.model(version)
        allowed = np.ones(len(evidence.items), dtype=bool)
        if not request.include_owned:
            allowed &= ~evidence.owned
        slots = {item: slot for slot, item in enumerate(evidence.items)}
        if request.candidate_item_ids:
            candidates = np.zeros(len(evidence.items), dtype=bool)
            candidates[[slots[item] for item in request.candidate_item_ids if item in slots]] = True
            allowed &= candidates
        allowed[[slots[item] for item in request.exclude_item_ids if item in slots]] = False
        scored = await asyncio.to_thread(recommend, evidence, allowed, limit, weights)
        segment_name = model.segment_names[position] if position >= 0 else ""
        related = {evidence.items[r.related_index] for s in scored for r in s.reasons if r.related_index >= 0}
        names = await self._store.item_names(call.tenant, sorted(related | {evidence.items[s.index] for s in scored}))
        return Recommendations(
            items=[
                RecommendedItem(
                    evidence.items[item.index],
                    item.score,
                    [_reason(reason, evidence.items, names, segment_name) for reason in item.reasons],
                    names.get(evidence.items[item.index], ""),
                )
                for item in scored
            ],
            segmentation=version.name,
            version=version.version,
            segment_id=model.segment_ids[position] if position >= 0 else "",
        )


def _signature_text(signature: tuple[int, str, str]) -> str:
    dimension, model_id, model_version = signature
    model = f"{model_id}@{model_version}" if model_version else model_id or "no model"
    return f"dimension {dimension}, model {model}"


def _reason(reason: Reason, items: list[str], names: dict[str, str], segment_name: str) -> tuple[str, float, str, str]:
    related = items[reason.related_index] if reason.related_index >= 0 else ""
    label = names.get(related, related)
    if reason.kind == SEGMENT_POPULARITY:
        text = f"bought by {reason.count} of {reason.total} customers in {segment_name}"
    elif reason.kind == GLOBAL_POPULARITY:
        text = f"bought by {reason.count} of {reason.total} customers"
    elif reason.kind == CO_OCCURRENCE:
        text = f"bought by {reason.count} customers who bought {label}"
    else:
        text = f"similar to {label} (cosine {reason.similarity:.2f})"
    return reason.kind, reason.weight, related, text
