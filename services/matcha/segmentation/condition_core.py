"""Condition segments' calls: define (validate, store, evaluate in the background), read, list members.

Plain Python beside `IngestionCore`, which feeds the same `LiveSegments` from its event path.
"""

from matcha.runtime import page_tokens
from matcha.runtime.errors import NotFound, Violations
from matcha.runtime.governance import CallContext
from matcha.segmentation.checks import SEGMENTATION_NAME
from matcha.segmentation.condition_store import ConditionStore
from matcha.segmentation.conditions import Catalogue, Node, from_json, properties, references, to_json, validate
from matcha.segmentation.live_counters import LiveSegments
from matcha.segmentation.records import ConditionSegmentView

MAX_DESCRIPTION_CHARS = 2_000
MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 1_000


def _not_found(name: str, version: int = 0) -> NotFound:
    which = f"version {version} of " if version else ""
    return NotFound(f"no {which}condition segment {name!r}", reason="CONDITION_SEGMENT_NOT_FOUND")


class ConditionSegmentsCore:
    def __init__(self, store: ConditionStore, live: LiveSegments, retention_days: float) -> None:
        self._store = store
        self._live = live
        self._retention_seconds = retention_days * 86_400

    async def define(self, call: CallContext, name: str, description: str, node: Node) -> ConditionSegmentView:
        if call.idempotency_key:
            replay = await self._store.by_idempotency_key(call.tenant, call.idempotency_key)
            if replay is not None:
                return ConditionSegmentView(replay, from_json(replay.definition))
        violations = Violations()
        named = violations.check(bool(SEGMENTATION_NAME.match(name)), "name", "1 to 63 of a-z, 0-9, '-', '_'")
        violations.check(len(description) <= MAX_DESCRIPTION_CHARS, "description", "at most 2,000 characters")
        if named and await self._store.built_name_exists(call.tenant, name):
            violations.add("name", "a built segmentation has this name")
        existing = await self._store.latest(call.tenant)
        attribute_keys = await self._known(call.tenant, node, "attributes", self._store.attribute_key_exists)
        feature_names = await self._known(call.tenant, node, "features", self._store.feature_exists)
        catalogue = Catalogue(
            attribute_keys=lambda key: attribute_keys.get(key, False),
            feature_names=lambda key: feature_names.get(key, False),
            built_segments=await self._store.built_segments(call.tenant),
            condition_references={
                record.name: {ref for ref, segment_id in references(from_json(record.definition)) if not segment_id}
                for record in existing
                if record.name != name
            },
            retention_seconds=self._retention_seconds,
            now=self._live.now(),
        )
        checked = validate(node, "condition", catalogue, violations, name)
        violations.raise_if_any()
        record = await self._store.define(
            call.tenant,
            name,
            description,
            to_json(checked),
            call.purpose,
            call.principal.subject,
            call.idempotency_key or "",
        )
        self._live.define(call.tenant, record)
        return ConditionSegmentView(record, checked)

    async def _known(self, tenant: str, node: Node, scope: str, exists) -> dict[str, bool]:
        """Whether each key the tree names in `scope` is held by some customer of the tenant."""
        keys = {path.partition(".")[2] for path in properties(node) if path.startswith(scope + ".")}
        return {key: await exists(tenant, key) for key in keys if key}

    async def get(self, call: CallContext, name: str, version: int) -> ConditionSegmentView:
        violations = Violations()
        violations.check(bool(SEGMENTATION_NAME.match(name)), "name", "1 to 63 of a-z, 0-9, '-', '_'")
        violations.check(version >= 0, "version", "0 or more")
        violations.raise_if_any()
        record = await self._store.get(call.tenant, name, version)
        if record is None:
            raise _not_found(name, version)
        return ConditionSegmentView(record, from_json(record.definition))

    async def members(
        self, call: CallContext, name: str, page_size: int, page_token: str
    ) -> tuple[list[str], str, int]:
        violations = Violations()
        violations.check(bool(SEGMENTATION_NAME.match(name)), "name", "1 to 63 of a-z, 0-9, '-', '_'")
        violations.check(0 <= page_size <= MAX_PAGE_SIZE, "page_size", f"1 to {MAX_PAGE_SIZE}")
        listing = page_tokens.listing_key("condition segment members", name)
        after = page_tokens.decode(violations, page_token, listing) or ""
        if not isinstance(after, str):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        record = await self._store.get(call.tenant, name, 0)
        if record is None:
            raise _not_found(name)
        limit = page_size or DEFAULT_PAGE_SIZE
        ids, total = await self._store.members(record.id, after, limit + 1)
        token = ""
        if len(ids) > limit:
            ids = ids[:limit]
            token = page_tokens.encode(listing, ids[-1])
        return ids, token, total
