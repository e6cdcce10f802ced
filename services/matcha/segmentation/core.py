"""The segmentation service's core: validation, governance rules, builds, live re-assignment, drift.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
"""

import asyncio
import logging
import math
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from matcha.runtime import page_tokens
from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, require_describer
from matcha.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, MatchaError, NotFound, Violations
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy, require_consent
from matcha.runtime.pii import DISCOVERY_MIN_SCORE, PiiEngine, shared_engine
from matcha.segmentation import audience, drift
from matcha.segmentation.builder import BuildResult, BuildSpec, FittedBuild, PreviousVersion, finish_build, fit_build
from matcha.segmentation.checks import CHANNEL_NAME, Limits, check_id, check_name, finite, is_stored_text
from matcha.segmentation.features import (
    BUILT_IN_FEATURES,
    CUSTOM_FEATURE_NAME,
    DEFAULT_FEATURES,
    FeatureTable,
    is_known_name,
    quintile_edges,
    with_scores,
)
from matcha.segmentation.feed import ChangeFeed
from matcha.segmentation.k_choice import SILHOUETTE, STABILITY
from matcha.segmentation.live_counters import LiveSegments, StoredEvent
from matcha.segmentation.methods import (
    CLASSIC_RFM_RULES,
    HDBSCAN_METHOD,
    KMEANS,
    RULES,
    TRANSFORMS,
    FrozenModel,
    KMeansParameters,
    Rule,
    RuleError,
    assign,
    check_rules_evaluate,
    compile_rules,
)
from matcha.segmentation.records import (
    BUILDING,
    METHOD_NUMBERS,
    READY,
    AssignOutcome,
    BuildInput,
    ChangeRecord,
    Comparison,
    CustomerFacts,
    CustomerInput,
    CustomerRow,
    CustomerView,
    ErasedRecords,
    EventBatch,
    EventInput,
    IngestTotals,
    MemberPage,
    MembershipsToStore,
    Move,
    PolicyInput,
    SegmentationView,
    SegmentRecord,
    SegmentsToStore,
    TransactionBatch,
    TransactionInput,
    VersionRecord,
)
from matcha.segmentation.store import SegmentationStore, segmentation_not_found

logger = logging.getLogger(__name__)

SEGMENT_ID = re.compile(r"^[a-z0-9_]{1,63}$")
ERASURE_ROLE = "admin"
PURCHASE, VISIT, CLICK = 1, 2, 3
_EVENT_TYPES = frozenset((PURCHASE, VISIT, CLICK))


class _ReadAhead:
    """Iterates a stream one message ahead, in a task of its own: the next message is received and
    converted while the current one waits on the database."""

    _END = object()

    def __init__(self, source: AsyncIterator) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._task = asyncio.create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator) -> None:
        try:
            async for item in source:
                await self._queue.put((item, None))
        except Exception as error:  # the stream's own failure, raised where the consumer reads
            await self._queue.put((self._END, error))
        else:
            await self._queue.put((self._END, None))

    def __aiter__(self) -> "_ReadAhead":
        return self

    async def __anext__(self):
        item, error = await self._queue.get()
        if error is not None:
            raise error
        if item is self._END:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class SegmentationCore:
    def __init__(
        self,
        store: SegmentationStore,
        feed: ChangeFeed,
        limits: Limits,
        live: LiveSegments,
        pii_engine: PiiEngine | None = None,
    ) -> None:
        self._store = store
        self._pii = pii_engine or shared_engine()
        self._feed = feed
        self.limits = limits
        self._live = live
        self._models: OrderedDict[int, FrozenModel] = OrderedDict()
        self._builds: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Lets running builds finish: a caller whose deadline passed still gets its version."""
        if self._builds:
            await asyncio.gather(*self._builds, return_exceptions=True)

    # --- ingestion ---------------------------------------------------------------------------

    async def ingest_customers(self, call: CallContext, customers: list[CustomerInput]) -> tuple[int, int, int, int]:
        """(inserted, updated, unchanged, raised to PERSONAL by the personal-data engine)."""
        replay = await self._store.recall(call.tenant, "IngestCustomers", call.idempotency_key)
        if replay is not None:
            return replay["inserted"], replay["updated"], replay["unchanged"], replay.get("raised_to_personal", 0)
        violations = Violations()
        limit = self.limits.max_customers_per_call
        violations.check(0 < len(customers) <= limit, "customers", f"between 1 and {limit} customers per call")
        first_seen: dict[str, int] = {}
        rows = []
        for index, customer in enumerate(customers):
            path = f"customers[{index}]"
            check_id(violations, f"{path}.id", customer.id, first_seen, index, "customers", self.limits.max_id_chars)
            for name, value in customer.features.items():
                if name in BUILT_IN_FEATURES:
                    violations.add(f"{path}.features[{name}]", "is a built-in feature name")
                elif not CUSTOM_FEATURE_NAME.match(name):
                    violations.add(f"{path}.features[{name}]", "lowercase letters, digits and '_', from a letter")
                elif not finite(value):
                    violations.add(f"{path}.features[{name}]", "must be a finite number")
            policy = self._policy(call, violations, f"{path}.policy", customer)
            for position, channel in enumerate(customer.opted_out_channels):
                violations.check(
                    bool(CHANNEL_NAME.match(channel)),
                    f"{path}.opted_out_channels[{position}]",
                    "lowercase letters, digits and '_', 1 to 32",
                )
            rows.append(
                CustomerRow(
                    customer.id,
                    customer.attributes,
                    customer.features,
                    customer.join_time,
                    policy,
                    tuple(dict.fromkeys(customer.opted_out_channels)),
                )
            )
        violations.raise_if_any()
        raised = await self._discover_personal_data(rows)
        for row in rows:
            require_consent(row.policy.data_class, row.policy.consented_purposes, call.purpose)
        async with self._store.pool.acquire() as connection, connection.transaction():
            inserted, updated, keys = await self._store.upsert_customers(connection, call.tenant, rows)
            await self._reassign(connection, call.tenant, keys, {})
            outcome = (inserted, updated, len(rows) - inserted - updated, raised)
            await self._store.remember(
                connection,
                call.tenant,
                "IngestCustomers",
                call.idempotency_key,
                {"inserted": outcome[0], "updated": outcome[1], "unchanged": outcome[2], "raised_to_personal": raised},
                subject_ids=[row.policy.subject_id for row in rows if row.policy.subject_id],
            )
        # Property conditions read what was just written.
        await self._live.reevaluate(call.tenant, keys)
        return outcome

    async def _discover_personal_data(self, rows: list[CustomerRow]) -> int:
        """Data discovery: attributes holding personal data make the customer PERSONAL, whatever was declared."""
        pending = [index for index, row in enumerate(rows) if row.policy.data_class < DataClass.PERSONAL]
        texts = [_attribute_text(rows[index].attributes) for index in pending]
        # The NER is CPU-bound: off the event loop.
        found = await asyncio.to_thread(self._pii.analyze_many, texts, field="customers") if texts else []
        raised = [
            index
            for index, findings in zip(pending, found, strict=True)
            if any(finding.score >= DISCOVERY_MIN_SCORE for finding in findings)
        ]
        for index in raised:
            rows[index] = replace(rows[index], policy=replace(rows[index].policy, data_class=DataClass.PERSONAL))
        return len(raised)

    async def ingest_transactions(
        self, call: CallContext, transactions: list[TransactionInput], default_policy: PolicyInput | None
    ) -> IngestTotals:
        violations = Violations()
        limit = self.limits.max_transactions_per_call
        violations.check(0 < len(transactions) <= limit, "transactions", f"between 1 and {limit} transactions per call")
        first_seen: dict[str, int] = {}
        for index, transaction in enumerate(transactions):
            path = f"transactions[{index}]"
            check_id(
                violations, f"{path}.id", transaction.id, first_seen, index, "transactions", self.limits.max_id_chars
            )
            violations.check(bool(transaction.customer_id), f"{path}.customer_id", "must not be empty")
            violations.check(transaction.time is not None, f"{path}.time", "is required")
            violations.check(
                finite(transaction.amount) and transaction.amount >= 0, f"{path}.amount", "finite and >= 0"
            )
            violations.check(
                finite(transaction.quantity) and transaction.quantity >= 0, f"{path}.quantity", "finite and >= 0"
            )
        policy = self._policy(call, violations, "default_policy", default_policy) if default_policy else None
        violations.raise_if_any()
        customer_ids = [transaction.customer_id for transaction in transactions]
        batch = TransactionBatch(
            ids=[t.id for t in transactions],
            customer_ids=customer_ids,
            times=[t.time for t in transactions],
            amounts=[t.amount for t in transactions],
            quantities=[t.quantity for t in transactions],
            channels=[t.channel for t in transactions],
            item_ids=[t.item_id for t in transactions],
            refunds=[t.refund for t in transactions],
        )
        totals = IngestTotals()
        causes = {t.customer_id: t.id for t in transactions}
        async with self._store.pool.acquire() as connection, connection.transaction():
            totals.customers_created = await self._ensure_customers(
                connection, call, customer_ids, policy, "transactions"
            )
            totals.inserted, touched = await self._store.insert_transactions(connection, call.tenant, batch)
            totals.duplicates = len(transactions) - totals.inserted
            totals.customers_updated = len(touched)
            totals.reassigned = await self._reassign(connection, call.tenant, touched, causes)
        return totals

    async def ingest_events(
        self, call: CallContext, messages: AsyncIterator[tuple[list[EventInput], PolicyInput | None]]
    ) -> IngestTotals:
        totals = IngestTotals()
        stream_policy: RecordPolicy | None = None
        first = True
        # Condition segment changes of the messages applied, written while the next messages are stored.
        recorded: list[asyncio.Future] = []
        ahead = _ReadAhead(messages)
        try:
            async for events, default_policy in ahead:
                violations = Violations()
                if first and default_policy is not None:
                    stream_policy = self._policy(call, violations, "default_policy", default_policy)
                first = False
                self._check_events(violations, events)
                violations.raise_if_any("invalid events message; the messages before it were applied")
                await self._apply_events(call, events, stream_policy, totals, recorded)
        finally:
            await ahead.close()
            # The reply (or the error) comes once every applied message's changes are written.
            outcomes = await asyncio.gather(*recorded, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return totals

    def _check_events(self, violations: Violations, events: list[EventInput]) -> None:
        limit = self.limits.max_events_per_message
        violations.check(0 < len(events) <= limit, "events", f"between 1 and {limit} events per message")
        first_seen: dict[str, int] = {}
        max_id_chars = self.limits.max_id_chars
        for index, event in enumerate(events):
            event_id = event.id
            if (  # the common case, without building a path per field
                event_id
                and len(event_id) <= max_id_chars
                and event_id not in first_seen
                and event.customer_id
                and event.type in _EVENT_TYPES
                and event.time is not None
                and 0.0 <= event.amount < math.inf
                and 0.0 <= event.quantity < math.inf
            ):
                first_seen[event_id] = index
                continue
            path = f"events[{index}]"
            check_id(violations, f"{path}.id", event_id, first_seen, index, "events", self.limits.max_id_chars)
            violations.check(bool(event.customer_id), f"{path}.customer_id", "must not be empty")
            violations.check(event.type in _EVENT_TYPES, f"{path}.type", "purchase, visit or click")
            violations.check(event.time is not None, f"{path}.time", "is required")
            violations.check(finite(event.amount) and event.amount >= 0, f"{path}.amount", "finite and >= 0")
            violations.check(finite(event.quantity) and event.quantity >= 0, f"{path}.quantity", "finite and >= 0")

    async def _apply_events(
        self,
        call: CallContext,
        events: list[EventInput],
        policy: RecordPolicy | None,
        totals: IngestTotals,
        recorded: list[asyncio.Future],
    ) -> None:
        """Stores one message's events, all or nothing, and follows them with the live segments.

        Two statements in the common case: the message's customers (keys, consent, what conditions read)
        and the storage of everything at once, which commits by itself. A transaction around them is
        needed only when customers are created or a built segmentation re-assigns them."""
        live = await self._live.state(call.tenant)
        watched = bool(live.segments or live.pending)
        attribute_keys, feature_names, _ = live.wanted() if watched else ((), (), ())
        customer_ids = list(dict.fromkeys(event.customer_id for event in events))
        async with self._store.pool.acquire() as connection:
            found = await self._store.event_customers(
                connection, call.tenant, customer_ids, attribute_keys, feature_names
            )
            rows = {row["id"]: row for row in found.rows}
            unknown = [customer_id for customer_id in customer_ids if customer_id not in rows]
            self._check_event_customers(call, events, rows, unknown, policy)
            if not unknown and not found.has_ready_segmentation:
                async with live.commit_lock:  # the statement commits: counted in one order with snapshots
                    stored, folded = await self._store_events(connection, events, rows, totals, call.tenant)
                    changes, late = self._follow(live, events, rows, {}, stored, folded, policy, watched)
            else:
                transaction = connection.transaction()
                await transaction.start()
                try:
                    created = await self._create_event_customers(connection, call, unknown, rows, policy)
                    totals.customers_created += created
                    stored, folded = await self._store_events(connection, events, rows, totals, call.tenant)
                    touched = sorted({rows[event.customer_id]["key"] for event in stored})
                    causes = {event.customer_id: event.id for event in events}
                    ids = {rows[customer_id]["key"]: customer_id for customer_id in customer_ids}
                    totals.reassigned += await self._reassign(connection, call.tenant, touched, causes, ids)
                    built = await self._live.read_built(connection, call.tenant, live, touched) if watched else {}
                except BaseException:
                    await transaction.rollback()
                    raise
                async with live.commit_lock:  # committed and counted in one order with snapshots
                    await transaction.commit()
                    changes, late = self._follow(live, events, rows, built, stored, folded, policy, watched)
        totals.late += late
        totals.condition_changes += len(changes)
        if changes:
            recorded.append(self._live.record_later(live, call.tenant, changes))

    def _check_event_customers(self, call, events, rows, unknown, policy: RecordPolicy | None) -> None:
        """Refuses unknown customers without a default policy, and customers who did not consent to the purpose."""
        if unknown and policy is None:
            violations = Violations()
            missing = set(unknown)
            for index, event in enumerate(events):
                if event.customer_id in missing:
                    violations.add(f"events[{index}].customer_id", "unknown customer and no default_policy")
            violations.raise_if_any()
        for data_class, purposes in {(row["data_class"], tuple(row["consented_purposes"])) for row in rows.values()}:
            require_consent(DataClass(data_class), frozenset(purposes), call.purpose)
        if unknown:
            require_consent(policy.data_class, policy.consented_purposes, call.purpose)

    async def _create_event_customers(self, connection, call, unknown, rows, policy: RecordPolicy | None) -> int:
        """Creates the message's unknown customers and adds them to `rows`; those another call created
        meanwhile are read."""
        if not unknown:
            return 0
        created = await self._store.create_missing_customers(connection, call.tenant, unknown, policy)
        for row in created:
            rows[row["id"]] = {
                "key": row["key"],
                "id": row["id"],
                "data_class": int(policy.data_class),
                "consented_purposes": sorted(policy.consented_purposes),
                "attributes": None,
                "features": None,
                "purchases": 0,
                "spend": 0.0,
            }
        raced = [customer_id for customer_id in unknown if customer_id not in rows]
        if raced:
            found = await self._store.event_customers(connection, call.tenant, raced)
            rows.update((row["id"], row) for row in found.rows)
            self._check_event_customers(call, [], {row["id"]: row for row in found.rows}, [], policy)
        return len(created)

    async def _store_events(self, connection, events, rows, totals: IngestTotals, tenant: str):
        """Stores the message; (its stored events, the new purchase aggregates of the customers it changed)."""
        given = len(events)
        events = [event for event in events if event.customer_id in rows]  # those erased since the read
        result = await self._store.store_events(
            connection,
            tenant,
            EventBatch(
                ids=[e.id for e in events],
                customer_keys=[rows[e.customer_id]["key"] for e in events],
                types=[e.type for e in events],
                times=[e.time for e in events],
                item_ids=[e.item_id for e in events],
                amounts=[e.amount for e in events],
                quantities=[e.quantity for e in events],
            ),
        )
        if result.stored_ids is not None:
            kept = set(result.stored_ids)
            events = [event for event in events if event.id in kept]
        totals.inserted += result.stored
        totals.duplicates += given - result.stored
        totals.customers_updated += len({event.customer_id for event in events})
        return events, {key: (purchases, spend) for key, purchases, spend in result.folded}

    def _follow(self, live, events, rows, built, stored, folded, policy, watched):
        """Folds the stored events into the live counters: (changes, late events)."""
        if not stored or not watched:
            return [], 0
        facts: dict[int, CustomerFacts] = {}
        for customer_id in {event.customer_id for event in stored}:
            row = rows[customer_id]
            key = row["key"]
            purchases, spend = folded.get(key, (row["purchases"], row["spend"]))
            facts[key] = CustomerFacts(
                key=key,
                id=customer_id,
                data_class=row["data_class"],
                consented_purposes=tuple(row["consented_purposes"]),
                attributes=row["attributes"] or {},
                features=(row["features"] or {}) | {"purchases": float(purchases), "spend": spend},
            )
        counted = [
            StoredEvent(
                event.id,
                rows[event.customer_id]["key"],
                event.type,
                event.time.timestamp(),
                event.amount,
                event.item_id,
            )
            for event in stored
        ]
        return self._live.apply(live, counted, facts, built)

    async def _ensure_customers(
        self, connection, call: CallContext, customer_ids: list[str], policy: RecordPolicy | None, field_name: str
    ) -> int:
        """Creates unknown customers under `policy`, or refuses them; checks consent of the known ones."""
        unknown = await self._store.unknown_customers(connection, call.tenant, customer_ids)
        if unknown and policy is None:
            violations = Violations()
            for index, customer_id in enumerate(customer_ids):
                if customer_id in unknown:
                    violations.add(f"{field_name}[{index}].customer_id", "unknown customer and no default_policy")
            violations.raise_if_any()
        policies = await self._store.customer_policies(connection, call.tenant, customer_ids)
        for known in policies.values():
            require_consent(known.data_class, known.consented_purposes, call.purpose)
        if not unknown:
            return 0
        require_consent(policy.data_class, policy.consented_purposes, call.purpose)
        return len(await self._store.create_missing_customers(connection, call.tenant, sorted(unknown), policy))

    async def _reassign(
        self, connection, tenant: str, keys: list[int], causes: dict[str, str], ids: dict[int, str] | None = None
    ) -> int:
        """Scores changed customers against the latest READY version of every segmentation; records moves.
        `ids` are the customers' ids by key when the caller has them."""
        if not keys:
            return 0
        versions = await self._store.latest_ready_versions(connection, tenant)
        if not versions:
            return 0
        if ids is None:
            ids = await self._store.customer_ids(connection, keys) if causes else {}
        moved = 0
        for version in versions:
            model = self.model(version)
            custom = [name for name in model.input_features if name not in BUILT_IN_FEATURES]
            table, _ = await self._store.load_features(connection, tenant, version.purpose, custom, keys)
            table = _complete_rows(table, custom)
            if not len(table):
                continue
            assignment = assign(model, with_scores(table.columns, model.rfm_edges))
            current = await self._store.current_positions(connection, version.id, table.keys)
            moves = [
                Move(
                    customer_key=int(key),
                    from_segment=model.segment_ids[current[key]] if key in current else "",
                    to_position=int(position),
                    distance=float(distance),
                    confidence=float(confidence),
                    cause_id=causes.get(ids.get(int(key), ""), ""),
                )
                for key, position, distance, confidence in zip(
                    table.keys.tolist(),
                    assignment.positions.tolist(),
                    assignment.distances.tolist(),
                    assignment.confidences.tolist(),
                    strict=True,
                )
                if current.get(key) != position
            ]
            names = list(zip(model.segment_ids, model.segment_names, strict=True))
            await self._store.apply_moves(connection, tenant, version, moves, names)
            moved += len(moves)
        return moved

    # --- customers -----------------------------------------------------------------------------

    async def get_customer(self, call: CallContext, customer_id: str, history_limit: int) -> CustomerView:
        violations = Violations()
        violations.check(bool(customer_id), "customer_id", "must not be empty")
        violations.check(0 <= history_limit <= 500, "history_limit", "between 0 and 500")
        violations.raise_if_any()
        stored = await self._store.customer(self._store.pool, call.tenant, customer_id)
        require_consent(stored.row.policy.data_class, stored.row.policy.consented_purposes, call.purpose)
        custom = sorted(stored.row.features)
        table, reference = await self._store.load_features(self._store.pool, call.tenant, call.purpose, custom)
        # The scores of one customer depend on everyone's quintiles: computed on the current population.
        columns = with_scores(table.columns, quintile_edges(table.columns))
        row = int(np.searchsorted(table.keys, stored.key))
        features = {name: float(values[row]) for name, values in columns.items() if not math.isnan(values[row])}
        return CustomerView(
            row=stored.row,
            features=features,
            reference_time=reference,
            memberships=await self._store.memberships_of_customer(call.tenant, stored.key),
            history=await self._store.history_of_customer(call.tenant, stored.key, history_limit),
        )

    async def erase_subject(self, call: CallContext, subject_id: str) -> ErasedRecords:
        violations = Violations()
        violations.check(is_stored_text(subject_id), "subject_id", "must not be empty nor hold a NUL character")
        violations.raise_if_any()
        call.require_role(ERASURE_ROLE)
        erased = await self._store.erase_subject(call.tenant, subject_id)
        # The live counters hold the erased customers' event times: read the tenant again on next use.
        self._live.forget(call.tenant)
        return erased

    async def describe_subject(self, call: CallContext, subject_id: str) -> list[SubjectHolding]:
        check_subject_id(subject_id)
        require_describer(call)
        return cap_exports(await self._store.describe_subject(call.tenant, subject_id, call.data_class))

    # --- builds --------------------------------------------------------------------------------

    async def build_segmentation(self, call: CallContext, request: BuildInput) -> SegmentationView:
        if call.idempotency_key:
            existing = await self._store.version_by_idempotency_key(call.tenant, call.idempotency_key)
            if existing is not None:
                return await self._view(existing)
        features, spec_without_data, violations = self._validate_build(request)
        rule_features = _rule_features(spec_without_data.rules)
        needed = [*features, *sorted(rule_features - set(features))]
        # Invalid names are already reported by the validation; the database is not asked about them.
        custom = [name for name in needed if name not in BUILT_IN_FEATURES and is_known_name(name)]
        table, _ = await self._store.load_features(
            self._store.pool,
            call.tenant,
            call.purpose,
            custom,
            built_in=any(name in BUILT_IN_FEATURES for name in needed),
        )
        if len(table):
            # A caller feature no eligible customer has is unknown.
            unknown = {name for name in custom if np.isnan(table.columns[name]).all()}
            for index, name in enumerate(features):
                if name in unknown:
                    violations.add(f"features[{index}]", f"unknown feature {name!r}")
            for index, rule in enumerate(spec_without_data.rules):
                for name in sorted(_variables(rule) & unknown):
                    violations.add(f"rules.rules[{index}].condition", f"unknown feature {name!r}")
        violations.raise_if_any()
        table = _complete_rows(table, custom)
        if len(table) < 2:
            raise FailedPrecondition(
                f"{len(table)} eligible customer(s) for purpose {call.purpose!r}; a segmentation needs 2 or more",
                reason="POPULATION_TOO_SMALL",
                metadata={"population": str(len(table)), "purpose": call.purpose},
            )
        violations = Violations()
        kmeans = spec_without_data.kmeans
        if spec_without_data.method == KMEANS and kmeans.k:
            violations.check(kmeans.k <= len(table), "kmeans.k", f"larger than the population ({len(table)})")
        edges = quintile_edges(table.columns)
        columns = with_scores(table.columns, edges)
        table = FeatureTable(table.keys, columns)
        if spec_without_data.method == RULES:
            try:
                check_rules_evaluate(list(spec_without_data.rules), {n: float(v[0]) for n, v in columns.items()})
            except RuleError as error:
                violations.add(f"rules.rules[{error.index}].condition", str(error))
        violations.raise_if_any()
        version = await self._store.start_version(
            call.tenant,
            request.name,
            description=request.description,
            method=METHOD_NUMBERS[spec_without_data.method],
            features=features,
            seed=request.seed,
            purpose=call.purpose,
            subject=call.principal.subject,
            idempotency_key=call.idempotency_key,
        )
        task = asyncio.create_task(self._build(version, table, edges, spec_without_data))
        self._builds.add(task)
        task.add_done_callback(self._builds.discard)
        # The build carries on if the caller goes away; its outcome is in the stored version.
        await asyncio.shield(task)
        return await self._view(await self._store.get_version(call.tenant, request.name, version.version))

    def _validate_build(self, request: BuildInput) -> tuple[list[str], BuildSpec, Violations]:
        """Checks what needs no data; the violations are raised once the data has been checked too."""
        violations = Violations()
        check_name(violations, "name", request.name)
        violations.check(len(request.description) <= 1000, "description", "at most 1000 characters")
        features = list(request.features) or list(DEFAULT_FEATURES)
        violations.check(len(features) <= self.limits.max_features, "features", "at most 64 features")
        for index, name in enumerate(features):
            if not is_known_name(name):
                violations.add(f"features[{index}]", f"unknown feature {name!r}")
            elif features.index(name) != index:
                violations.add(f"features[{index}]", f"duplicates features[{features.index(name)}]")
        method = request.method or KMEANS
        kmeans = request.kmeans
        if method == KMEANS:
            k_min = kmeans.k_min or 2
            k_max = kmeans.k_max or 12
            sample = kmeans.sample_size or 3_000
            if kmeans.k:
                violations.check(2 <= kmeans.k <= 100, "kmeans.k", "between 2 and 100, or 0 to choose")
            violations.check(k_min >= 2, "kmeans.k_min", "2 or more")
            violations.check(k_max <= 50, "kmeans.k_max", "at most 50")
            violations.check(k_min <= k_max, "kmeans.k_max", "at least k_min")
            violations.check(1_000 <= sample <= 100_000, "kmeans.silhouette_sample_size", "between 1,000 and 100,000")
            violations.check(kmeans.criterion in (SILHOUETTE, STABILITY), "kmeans.criterion", "silhouette or stability")
            violations.check(0 <= kmeans.min_share <= 0.5, "kmeans.min_share", "between 0 and 0.5")
            preferred = kmeans.preferred if kmeans.preferred and any(kmeans.preferred) else None
            if preferred is not None:
                low, high = preferred
                violations.check(k_min <= low <= k_max, "kmeans.preferred_k_min", "within k_min..k_max")
                violations.check(low <= high <= k_max, "kmeans.preferred_k_max", "within preferred_k_min..k_max")
            kmeans = KMeansParameters(kmeans.k, k_min, k_max, sample, kmeans.criterion, kmeans.min_share, preferred)
        min_cluster_size = request.min_cluster_size or 50
        min_samples = request.min_samples or min_cluster_size
        if method == HDBSCAN_METHOD:
            violations.check(min_cluster_size >= 2, "hdbscan.min_cluster_size", "2 or more")
            violations.check(min_samples >= 1, "hdbscan.min_samples", "1 or more")
        rules = list(request.rules) or [Rule(*rule) for rule in CLASSIC_RFM_RULES]
        if method == RULES:
            self._check_rules(violations, rules)
        for name, transform_name in request.transforms.items():
            if name not in features:
                violations.add(f"transforms[{name}]", "not among the segmentation's features")
            elif transform_name not in TRANSFORMS:
                violations.add(f"transforms[{name}]", "unknown transform")
        exemplars = 5 if request.exemplar_count is None else request.exemplar_count
        violations.check(0 <= exemplars <= 50, "exemplar_count", "between 0 and 50")
        return (
            features,
            BuildSpec(
                method=method,
                features=features,
                transforms=dict(request.transforms),
                seed=request.seed,
                exemplar_count=exemplars,
                kmeans=kmeans if method == KMEANS else None,
                min_cluster_size=min_cluster_size,
                min_samples=min_samples,
                rules=tuple(rules) if method == RULES else (),
                silhouette_sample_size=kmeans.sample_size if method == KMEANS else 3_000,
            ),
            violations,
        )

    def _check_rules(self, violations: Violations, rules: list[Rule]) -> None:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            path = f"rules.rules[{index}]"
            if not SEGMENT_ID.match(rule.id) or rule.id == "other":
                violations.add(f"{path}.id", "lowercase letters, digits and '_' (1 to 63), not 'other'")
            elif rule.id in seen:
                violations.add(f"{path}.id", "duplicates an earlier rule id")
            seen.add(rule.id)
            try:
                (program,) = compile_rules([rule])
            except RuleError as error:
                violations.add(f"{path}.condition", str(error))
                continue
            for name in program.variables():
                if not is_known_name(name):
                    violations.add(f"{path}.condition", f"unknown feature {name!r}")

    async def _build(self, version: VersionRecord, table: FeatureTable, edges, spec: BuildSpec) -> None:
        progress = {"stage": "transforming", "completed": 0, "total": 0}

        def report(stage: str, completed: int, total: int) -> None:
            # Called from the worker thread; the ticker below publishes it.
            progress.update(stage=stage, completed=completed, total=total)

        ticker = asyncio.create_task(self._publish_progress(version.id, progress))

        async def finish(fitted: FittedBuild) -> SegmentsToStore:
            result: BuildResult = await asyncio.to_thread(finish_build, table, spec, fitted, report)
            ticker.cancel()
            await self._store.set_progress(version.id, {"stage": "storing", "completed": 0, "total": 1})
            return _segments_to_store(table, result)

        try:
            previous = await self._previous(version)
            fitted: FittedBuild = await asyncio.to_thread(fit_build, table, edges, spec, previous, report)
            assignment = fitted.assignment
            memberships = MembershipsToStore(
                table.keys, assignment.positions, assignment.distances, assignment.confidences
            )
            # Memberships are written while the segments are profiled.
            await self._store.complete_version(version.id, memberships, finish(fitted))
        except Exception as error:
            logger.exception("segmentation build failed", extra={"version_id": version.id})
            message = error.message if isinstance(error, MatchaError) else "the build failed; see the service log"
            await self._store.fail_version(version.id, {"code": 13, "message": message})
        finally:
            ticker.cancel()

    async def _publish_progress(self, version_id: int, progress: dict) -> None:
        published: dict = {}
        while True:
            if progress != published:
                published = dict(progress)
                await self._store.set_progress(version_id, published)
            await asyncio.sleep(self.limits.progress_interval_seconds)

    async def _previous(self, version: VersionRecord) -> PreviousVersion | None:
        if version.version == 1:
            return None
        try:
            previous = await self._store.get_version(version.tenant, version.name, 0, ready=True)
        except MatchaError:
            return None
        model = self.model(previous)
        keys, positions, _ = await self._store.memberships(previous.id)
        segment_ids = [model.segment_ids[position] for position in positions.tolist()]
        return PreviousVersion(keys, segment_ids, model.next_segment_number)

    # --- reading segmentations -----------------------------------------------------------------

    async def get_segmentation(self, call: CallContext, name: str, version: int) -> SegmentationView:
        self._require_name(name)
        return await self._view(await self._store.get_version(call.tenant, name, version))

    async def list_segmentations(
        self, call: CallContext, name: str, page_size: int, page_token: str
    ) -> tuple[list[SegmentationView], str]:
        violations = Violations()
        if name:
            check_name(violations, "name", name)
        page_size = page_size or 50
        violations.check(1 <= page_size <= 200, "page_size", "between 1 and 200")
        listing = page_tokens.listing_key("segmentations", name)
        offset = page_tokens.decode(violations, page_token, listing)
        if offset is not None and not (isinstance(offset, int) and offset >= 0):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        offset = offset or 0
        versions = await self._store.list_versions(call.tenant, name, page_size + 1, offset)
        views = [await self._view(version, with_details=False) for version in versions[:page_size]]
        return views, page_tokens.encode(listing, offset + page_size) if len(versions) > page_size else ""

    async def list_members(
        self,
        call: CallContext,
        name: str,
        version_number: int,
        segment_id: str,
        page_size: int,
        page_token: str,
    ) -> MemberPage:
        violations = Violations()
        check_name(violations, "name", name)
        violations.check(bool(segment_id), "segment_id", "must not be empty")
        page_size = page_size or 100
        violations.check(1 <= page_size <= 1000, "page_size", "between 1 and 1000")
        listing = page_tokens.listing_key("segment members", name, version_number, segment_id)
        after = page_tokens.decode(violations, page_token, listing)
        well_formed = isinstance(after, list) and len(after) == 2 and isinstance(after[1], int)
        if after is not None and not (well_formed and isinstance(after[0], int | float)):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        cursor = (float(after[0]), int(after[1])) if after else None
        version = await self.ready(call, name, version_number)
        position = self._position(self.model(version), name, segment_id)
        rows, total = await self._store.members(version.id, position, page_size + 1, cursor)
        last = rows[page_size - 1] if len(rows) > page_size else None
        return MemberPage(
            [(customer_id, distance, since) for customer_id, distance, since, _ in rows[:page_size]],
            page_tokens.encode(listing, [last[1], last[3]]) if last else "",
            total,
        )

    async def reachable_members(
        self,
        call: CallContext,
        name: str,
        version_number: int,
        segment_id: str,
        customer_ids: list[str],
        channel: str,
    ) -> tuple[int, audience.ReachableMembers]:
        """(version read, 0 for a list; the members the call's purpose may reach on `channel`)."""
        violations = Violations()
        listed = bool(customer_ids)
        violations.check(
            listed != bool(name or segment_id), "segment_id", "a segment (name and segment_id) or customer_ids"
        )
        if not listed:
            check_name(violations, "name", name)
            violations.check(bool(segment_id), "segment_id", "must not be empty")
        limit = self.limits.max_audience_customers
        violations.check(len(customer_ids) <= limit, "customer_ids", f"at most {limit:,} customer ids")
        for index, customer_id in enumerate(customer_ids[:limit]):
            if not 0 < len(customer_id) <= self.limits.max_id_chars:
                violations.add(f"customer_ids[{index}]", f"1 to {self.limits.max_id_chars} characters")
        violations.check(
            not channel or bool(CHANNEL_NAME.match(channel)), "channel", "lowercase letters, digits and '_', 1 to 32"
        )
        violations.raise_if_any()
        if listed:
            members = await audience.listed_customers(
                self._store.pool, call.tenant, customer_ids, call.purpose, channel
            )
            return 0, members
        version = await self.ready(call, name, version_number)
        position = self._position(self.model(version), name, segment_id)
        members = await audience.segment_members(self._store.pool, version.id, position, call.purpose, channel)
        return version.version, members

    async def attach_persona(
        self, call: CallContext, name: str, version_number: int, segment_id: str, persona: dict[str, Any]
    ) -> SegmentRecord:
        violations = Violations()
        check_name(violations, "name", name)
        summary = persona.get("summary", "")
        violations.check(bool(summary.strip()), "persona.summary", "must not be empty")
        violations.check(len(summary) <= self.limits.max_persona_chars, "persona.summary", "at most 8,000 characters")
        violations.check(
            len(persona.get("title", "")) <= self.limits.max_title_chars, "persona.title", "at most 200 characters"
        )
        violations.raise_if_any()
        version = await self.ready(call, name, version_number)
        self._position(self.model(version), name, segment_id)
        stamped = persona | {"author_subject": call.principal.subject, "update_time": datetime.now(UTC).isoformat()}
        await self._store.attach_persona(version.id, segment_id, stamped)
        segments = await self._store.segments(version.id)
        return next(segment for segment in segments if segment.id == segment_id)

    # --- scoring -------------------------------------------------------------------------------

    async def assign(
        self,
        call: CallContext,
        name: str,
        version_number: int,
        customer_id: str | None,
        values: dict[str, float] | None,
    ) -> AssignOutcome:
        violations = Violations()
        check_name(violations, "name", name)
        violations.check(customer_id is not None or values is not None, "customer", "give customer_id or features")
        if customer_id is not None:
            violations.check(bool(customer_id), "customer_id", "must not be empty")
        violations.raise_if_any()
        version = await self.ready(call, name, version_number)
        model = self.model(version)
        if customer_id is not None:
            stored = await self._store.customer(self._store.pool, call.tenant, customer_id)
            require_consent(stored.row.policy.data_class, stored.row.policy.consented_purposes, call.purpose)
            custom = [n for n in model.input_features if n not in BUILT_IN_FEATURES]
            table, _ = await self._store.load_features(
                self._store.pool, call.tenant, call.purpose, custom, [stored.key]
            )
            missing = [n for n in custom if math.isnan(table.columns[n][0])]
            if missing:
                raise FailedPrecondition(
                    f"customer {customer_id!r} lacks feature(s) {', '.join(missing)}",
                    reason="FEATURE_MISSING",
                    metadata={"customer_id": customer_id, "features": ",".join(missing)},
                )
            columns = with_scores(table.columns, model.rfm_edges)
        else:
            columns = self._given_features(model, values)
        assignment = assign(model, columns)
        position = int(assignment.positions[0])
        alternatives = [
            (model.segment_ids[int(p)], float(d))
            for p, d in zip(assignment.alternative_positions[0], assignment.alternative_distances[0], strict=True)
            if p >= 0
        ]
        return AssignOutcome(
            segment_id=model.segment_ids[position],
            segment_name=model.segment_names[position],
            version=version.version,
            distance=float(assignment.distances[0]),
            confidence=float(assignment.confidences[0]),
            outlier=position == model.outlier_position,
            alternatives=alternatives,
        )

    def _given_features(self, model: FrozenModel, values: dict[str, float]) -> dict[str, np.ndarray]:
        violations = Violations()
        for name in model.input_features:
            if name not in values:
                violations.add(f"features.values[{name}]", "missing: the segmentation uses it")
            elif not finite(values[name]):
                violations.add(f"features.values[{name}]", "must be a finite number")
        violations.raise_if_any()
        return {name: np.asarray([values[name]], dtype=np.float64) for name in model.input_features}

    # --- change feed ---------------------------------------------------------------------------

    async def watch_changes(
        self, call: CallContext, segmentation: str, segment_ids: list[str], after_sequence: int | None
    ) -> AsyncIterator[ChangeRecord]:
        violations = Violations()
        if segmentation:
            check_name(violations, "segmentation", segmentation)
        violations.check(after_sequence is None or after_sequence >= 0, "after_sequence", "0 or more")
        for index, segment_id in enumerate(segment_ids):
            violations.check(
                is_stored_text(segment_id), f"segment_ids[{index}]", "must not be empty nor hold a NUL character"
            )
        violations.raise_if_any()
        if segmentation and not await self._store.segmentation_exists(call.tenant, segmentation):
            raise segmentation_not_found(segmentation)
        with self._feed.subscribe(call.tenant) as woken:
            last = after_sequence if after_sequence is not None else await self._store.last_change_sequence(call.tenant)
            while True:
                woken.clear()
                changes = await self._store.changes_after(call.tenant, last, segmentation, segment_ids)
                for change in changes:
                    yield change
                if changes:
                    last = max(last, changes[-1].sequence)
                    continue
                await woken.wait()

    # --- drift ---------------------------------------------------------------------------------

    async def compare(
        self, call: CallContext, name: str, baseline_version: int, target_version: int | None
    ) -> Comparison:
        violations = Violations()
        check_name(violations, "name", name)
        violations.raise_if_any()
        baseline = await self.ready(call, name, baseline_version)
        base_model = self.model(baseline)
        base_keys, _, base_build = await self._store.memberships(baseline.id)
        at_build = base_build >= 0
        base_keys, base_build = base_keys[at_build], base_build[at_build]
        base_matrix = _snapshot(await self._store.snapshot(baseline.id), len(baseline.features))
        if target_version is not None:
            target = await self.ready(call, name, target_version)
            if target.id == baseline.id:
                raise InvalidArgument(
                    "baseline and target are the same version",
                    violations=[FieldViolation("target_version", "must differ from the baseline version")],
                )
            target_model = self.model(target)
            target_keys, _, target_positions = await self._store.memberships(target.id)
            at_build = target_positions >= 0
            target_keys, target_positions = target_keys[at_build], target_positions[at_build]
            target_ids = target_model.segment_ids
            shared = [f for f in baseline.features if f in target.features]
            target_matrix = _snapshot(await self._store.snapshot(target.id), len(target.features))
            target_columns = {f: target_matrix[:, target.features.index(f)] for f in shared}
        else:
            custom = [n for n in base_model.input_features if n not in BUILT_IN_FEATURES]
            table, _ = await self._store.load_features(self._store.pool, call.tenant, baseline.purpose, custom)
            table = _complete_rows(table, custom)
            columns = with_scores(table.columns, base_model.rfm_edges)
            target_keys = table.keys
            target_positions = assign(base_model, columns).positions if len(table) else np.zeros(0, dtype=np.int64)
            target_ids = base_model.segment_ids
            shared = list(baseline.features)
            target_columns = {f: columns[f] for f in shared}
        psi = [
            (
                feature,
                drift.population_stability(base_matrix[:, baseline.features.index(feature)], target_columns[feature]),
            )
            for feature in shared
        ]
        psi.sort(key=lambda item: -item[1])
        migration = drift.migration(
            base_keys, base_build, base_model.segment_ids, target_keys, target_positions, target_ids
        )
        return Comparison(feature_drift=psi, **migration)

    # --- helpers -------------------------------------------------------------------------------

    async def ready(self, call: CallContext, name: str, version_number: int) -> VersionRecord:
        version = await self._store.get_version(call.tenant, name, version_number, ready=True)
        if version.state != READY:
            state = "BUILDING" if version.state == BUILDING else "FAILED"
            raise FailedPrecondition(
                f"segmentation {name!r} version {version.version} is {state}, not READY",
                reason="SEGMENTATION_NOT_READY",
                metadata={"segmentation": name, "version": str(version.version), "state": state},
            )
        return version

    def model(self, version: VersionRecord) -> FrozenModel:
        model = self._models.get(version.id)
        if model is None:
            model = FrozenModel.from_json(version.model)
            self._models[version.id] = model
            if len(self._models) > self.limits.cached_models:
                self._models.popitem(last=False)
        return model

    async def latest_ready_version(self, tenant: str) -> VersionRecord | None:
        """The most recently built READY version of any segmentation of the tenant."""
        return await self._store.latest_ready_version(tenant)

    def _position(self, model: FrozenModel, name: str, segment_id: str) -> int:
        if segment_id not in model.segment_ids:
            raise NotFound(
                f"segment {segment_id!r} not found in segmentation {name!r}",
                reason="SEGMENT_NOT_FOUND",
                metadata={"segmentation": name, "segment_id": segment_id},
            )
        return model.segment_ids.index(segment_id)

    async def _view(self, version: VersionRecord, *, with_details: bool = True) -> SegmentationView:
        if version.state != READY:
            return SegmentationView(version, [], None)
        segments = await self._store.segments(version.id, with_details=with_details)
        k_scores = [tuple(item) for item in version.model.get("k_scores", [])]
        return SegmentationView(version, segments, self.model(version), k_scores)

    def _policy(self, call: CallContext, violations: Violations, path: str, source) -> RecordPolicy:
        policy = RecordPolicy.submitted(
            call, source.data_class, source.consented_purposes, source.source, source.subject_id
        )
        violations.check(
            policy.data_class <= call.data_class,
            f"{path}.data_class",
            f"{policy.data_class.name} exceeds the call's declared data class {call.data_class.name}",
        )
        return policy

    def _require_name(self, name: str) -> None:
        violations = Violations()
        check_name(violations, "name", name)
        violations.raise_if_any()


def _variables(rule: Rule) -> set[str]:
    """Features a rule reads; none when it does not compile (already reported)."""
    try:
        return set(compile_rules([rule])[0].variables())
    except RuleError:
        return set()


def _rule_features(rules: tuple[Rule, ...]) -> set[str]:
    return {name for rule in rules for name in _variables(rule)}


def _complete_rows(table: FeatureTable, custom: list[str]) -> FeatureTable:
    """Customers lacking one of the custom features are left out."""
    if not custom or not len(table):
        return table
    complete = np.all([~np.isnan(table.columns[name]) for name in custom], axis=0)
    return table if complete.all() else table.subset(complete)


def _snapshot(data: bytes, feature_count: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32).reshape(-1, feature_count).astype(np.float64)


def _segments_to_store(table: FeatureTable, result: BuildResult) -> SegmentsToStore:
    segments = []
    exemplars = []
    for segment in result.segments:
        segments.append(
            {
                "position": segment.position,
                "id": segment.id,
                "name": segment.name,
                "size": segment.size,
                "share": segment.share,
                "outliers": segment.outliers,
                "condition": segment.condition,
                "profile": [profile.__dict__ for profile in segment.profiles],
                "top_features": segment.top_features,
            }
        )
        for rank, (row, distance) in enumerate(zip(segment.exemplar_rows, segment.exemplar_distances, strict=True)):
            exemplars.append((segment.position, rank, int(table.keys[row]), float(distance)))
    return SegmentsToStore(
        model=result.model.to_json() | {"k_scores": result.k_scores},
        snapshot=result.snapshot,
        silhouette=result.silhouette,
        population=len(table),
        segments=segments,
        exemplars=exemplars,
    )


def _attribute_text(attributes: dict[str, Any]) -> str:
    """The attributes as lines of "key: value", nested values flattened: what the engine reads of a customer."""
    lines = []
    for key, value in attributes.items():
        if isinstance(value, dict):
            lines.append(_attribute_text(value))
        elif isinstance(value, list):
            lines.extend(f"{key}: {item}" for item in value if isinstance(item, str | int | float))
        elif isinstance(value, str):
            lines.append(f"{key}: {value}")
    return "\n".join(lines)
