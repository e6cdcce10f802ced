"""Ingestion's calls: customers, transactions and the events stream (which feeds the live condition segments and
re-assigns the customers it changes), a customer's view, and a data subject's erasure and description.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
"""

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, require_describer
from matcha.runtime.errors import Unavailable, Violations
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy, require_consent
from matcha.runtime.pii import DISCOVERY_MIN_SCORE, PiiEngine, shared_engine
from matcha.segmentation.checks import CHANNEL_NAME, Limits, check_id, finite, is_stored_text
from matcha.segmentation.customer_store import CustomerStore, hold_off_erasure
from matcha.segmentation.features import BUILT_IN_FEATURES, CUSTOM_FEATURE_NAME, quintile_edges, with_scores
from matcha.segmentation.live_counters import LiveSegments, StoredEvent, TenantState
from matcha.segmentation.partitions import Partitions, SlotMoved, slot_of
from matcha.segmentation.peers import Peers
from matcha.segmentation.records import (
    CustomerFacts,
    CustomerInput,
    CustomerRow,
    CustomerView,
    ErasedRecords,
    EventBatch,
    EventCustomers,
    EventInput,
    IngestTotals,
    PolicyInput,
    TransactionBatch,
    TransactionInput,
    Unsubscribed,
)
from matcha.segmentation.versions_core import VersionsCore

ERASURE_ROLE = "admin"
PURCHASE, VISIT, CLICK = 1, 2, 3
_EVENT_TYPES = frozenset((PURCHASE, VISIT, CLICK))
T = TypeVar("T")
logger = logging.getLogger(__name__)
# Tries of a message part whose slots keep moving (about 20 s, longer than a lease) before UNAVAILABLE.
_ROUTING_ATTEMPTS = 100


class _ReadAhead:
    """Iterates a stream one message ahead, in a task of its own: the next message is received and
    converted while the current one waits on the database."""

    _END = object()

    def __init__(self, source: AsyncIterator) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._peeked: tuple | None = None
        self._task = asyncio.create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator) -> None:
        try:
            async for item in source:
                await self._queue.put((item, None))
        except Exception as error:  # the stream's own failure, raised where the consumer reads
            await self._queue.put((self._END, error))
        else:
            await self._queue.put((self._END, None))

    def waiting(self) -> bool:
        """The next message (or the stream's end) is already here."""
        return self._peeked is not None or not self._queue.empty()

    def peek(self):
        """The next message when it is already here, without taking it; else None."""
        if self._peeked is None and not self._queue.empty():
            self._peeked = self._queue.get_nowait()
        if self._peeked is None or self._peeked[1] is not None or self._peeked[0] is self._END:
            return None
        return self._peeked[0]

    def __aiter__(self) -> "_ReadAhead":
        return self

    async def __anext__(self):
        if self._peeked is not None:
            (item, error), self._peeked = self._peeked, None
        else:
            item, error = await self._queue.get()
        if error is not None:
            raise error
        if item is self._END:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class _Uncounted:
    """A committed message not yet folded into the live counters. Its tenant's commit lock stays held until it
    is, so no snapshot falls between the commit and the counting (see `_apply_to`)."""

    def __init__(self, live: TenantState, count: Callable[[], None], folded: dict[int, tuple]) -> None:
        self._live = live
        self._count: Callable[[], None] | None = count
        self.folded = folded  # the purchase aggregates the message changed, by customer key

    def settle(self) -> None:
        """Counts the message, once; releases the commit lock."""
        if self._count is None:
            return
        count, self._count = self._count, None
        try:
            count()
        finally:
            self._live.commit_lock.release()


def _settle(uncounted: _Uncounted | None) -> None:
    if uncounted is not None:
        uncounted.settle()


async def _while(statement: Awaitable[T], work: Callable[[], None]) -> T:
    """Does `work` (this process's CPU) while PostgreSQL runs `statement`."""
    running = asyncio.ensure_future(statement)
    try:
        await asyncio.sleep(0)  # the statement is sent
        work()
    finally:
        result = await running
    return result


@dataclass
class _Begun:
    """A message's transaction, holding erasure off, with its customers read and checked. The next message's
    is begun while this one is stored: then it read its customers before this one committed (`early`)."""

    live: TenantState
    connection: PoolConnectionProxy
    transaction: Transaction
    customer_ids: list[str]  # the message's, each once, in order
    found: EventCustomers
    rows: dict[str, Any]
    unknown: list[str]
    early: bool
    released: bool = False

    async def end(self, pool) -> None:
        """Rolls back and gives the connection back, unless that was done."""
        if self.released:
            return
        self.released = True
        try:
            await self.transaction.rollback()
        finally:
            await pool.release(self.connection)


class IngestionCore:
    def __init__(
        self,
        store: CustomerStore,
        versions: VersionsCore,
        live: LiveSegments,
        limits: Limits,
        pii_engine: PiiEngine | None = None,
        partitions: Partitions | None = None,
        peers: Peers | None = None,
    ) -> None:
        self._store = store
        self._versions = versions
        self._live = live
        self._partitions = partitions
        self._peers = peers
        self.limits = limits
        self._pii = pii_engine or shared_engine()

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
            await hold_off_erasure(connection, call.tenant)  # re-assignment logs changes
            inserted, updated, keys = await self._store.upsert_customers(connection, call.tenant, rows)
            await self._versions.reassign(connection, call.tenant, keys, {})
            outcome = (inserted, updated, len(rows) - inserted - updated, raised)
            await self._store.remember(
                connection,
                call.tenant,
                "IngestCustomers",
                call.idempotency_key,
                {"inserted": outcome[0], "updated": outcome[1], "unchanged": outcome[2], "raised_to_personal": raised},
                subject_ids=[row.policy.subject_id for row in rows if row.policy.subject_id],
            )
        await self._reevaluate(call, [row.id for row in rows], keys)
        return outcome

    async def _reevaluate(self, call: CallContext, ids: list[str], keys: list[int]) -> None:
        """Property conditions read what was just written: decided again by the replica counting each customer."""
        await self._live.reevaluate(call.tenant, keys)  # those of this replica's slots
        if not self._partitioned():
            return
        assert self._partitions is not None and self._peers is not None
        for address, positions in (await self._partitions.split(ids, str)).items():
            if address:
                try:
                    await self._peers.reevaluate(call, address, [ids[position] for position in positions])
                except Exception:  # stored: they are decided again at their next event or the owner's next load
                    logger.warning("customers not re-evaluated on their replica", exc_info=True)

    async def reevaluate_owned(self, call: CallContext, ids: list[str]) -> int:
        """Another replica stored these customers' properties (`ReevaluateCustomers`)."""
        violations = Violations()
        limit = self.limits.max_customers_per_call
        violations.check(0 < len(ids) <= limit, "customer_ids", f"between 1 and {limit} customers per call")
        violations.raise_if_any()
        async with self._store.pool.acquire() as connection:
            found = await self._store.event_customers(connection, call.tenant, ids)
        return await self._live.reevaluate(call.tenant, [row["key"] for row in found.rows])

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
            # Every one has a time: checked above.
            times=[t.time for t in transactions if t.time is not None],
            amounts=[t.amount for t in transactions],
            quantities=[t.quantity for t in transactions],
            channels=[t.channel for t in transactions],
            item_ids=[t.item_id for t in transactions],
            refunds=[t.refund for t in transactions],
        )
        totals = IngestTotals()
        causes = {t.customer_id: t.id for t in transactions}
        async with self._store.pool.acquire() as connection, connection.transaction():
            await hold_off_erasure(connection, call.tenant)
            totals.customers_created = await self._ensure_customers(
                connection, call, customer_ids, policy, "transactions"
            )
            totals.inserted, touched = await self._store.insert_transactions(connection, call.tenant, batch)
            totals.duplicates = len(transactions) - totals.inserted
            totals.customers_updated = len(touched)
            totals.reassigned = await self._versions.reassign(connection, call.tenant, touched, causes)
        return totals

    async def ingest_events(
        self, call: CallContext, messages: AsyncIterator[tuple[list[EventInput], PolicyInput | None]]
    ) -> IngestTotals:
        totals = IngestTotals()
        stream_policy: RecordPolicy | None = None
        given_policy: PolicyInput | None = None
        first = True
        # Condition segment changes of the messages applied, written while the next messages are stored.
        recorded: list[asyncio.Future] = []
        # The message before, committed: counted while PostgreSQL stores this one when this one was waiting.
        uncounted: _Uncounted | None = None
        # This message's transaction and the next one's, begun while the one before is stored.
        begun: asyncio.Task | None = None
        begun_next: asyncio.Task | None = None
        ahead = _ReadAhead(messages)

        def begin_next() -> None:  # while a message is stored, once the next one is here
            nonlocal begun_next
            if begun_next is None:  # (a message stored again after its segments were retired)
                upcoming = ahead.peek()  # (events, default policy)
                begun_next = self._begin_next(call, upcoming and upcoming[0], stream_policy)

        try:
            async for events, default_policy in ahead:
                violations = Violations()
                if first and default_policy is not None:
                    stream_policy = self._policy(call, violations, "default_policy", default_policy)
                    given_policy = default_policy
                first = False
                self._check_events(violations, events)
                violations.raise_if_any("invalid events message; the messages before it were applied")
                if self._partitioned():
                    _settle(uncounted)
                    if begun_next is not None:  # replicas joined mid-stream: routed, not begun here
                        await self._end_unused(begun_next)
                        begun_next = None
                    await self._route_events(call, events, stream_policy, given_policy, totals, recorded)
                else:
                    begun, begun_next = begun_next, None
                    uncounted = await self._apply_events(
                        call, events, stream_policy, totals, recorded, uncounted, begun, begin_next
                    )
                    if not ahead.waiting():
                        _settle(uncounted)  # counted now: nothing to overlap it with
        finally:
            _settle(uncounted)  # a committed message is always counted
            for unused in (begun, begun_next):  # a message not applied: its transaction is given back
                if unused is not None:
                    await self._end_unused(unused)
            await ahead.close()
            # The reply (or the error) comes once every applied message's changes are written.
            outcomes = await asyncio.gather(*recorded, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return totals

    async def _route_events(
        self,
        call: CallContext,
        events: list[EventInput],
        policy: RecordPolicy | None,
        given_policy: PolicyInput | None,
        totals: IngestTotals,
        recorded: list[asyncio.Future],
    ) -> None:
        """Applies each part of a message on the replica that owns its customers' slots: here, or on a peer as
        the caller. Each part is all or nothing; a part whose slots moved meanwhile is routed again."""
        assert self._partitions is not None and self._peers is not None
        pending = list(range(len(events)))
        for _ in range(_ROUTING_ATTEMPTS):
            groups = await self._partitions.split([events[i] for i in pending], _customer_id)
            moved: list[int] = []
            for address, positions in groups.items():
                originals = [pending[position] for position in positions]
                part = [events[i] for i in originals]
                try:
                    if address:
                        totals.add(await self._peers.apply(call, address, part, given_policy, originals))
                    else:
                        _settle(await self._apply_events(call, part, policy, totals, recorded))
                except SlotMoved:
                    moved.extend(originals)
            if not moved:
                return
            pending = sorted(moved)
            await asyncio.sleep(0.2)
            await self._partitions.refresh()
        raise Unavailable("the events' slots kept moving between replicas", retry_after_seconds=5.0)

    async def apply_owned(self, call: CallContext, events: list[EventInput], given_policy: PolicyInput | None):
        """A part of a message another replica received, whose customers this replica owns (`ApplyEvents`)."""
        violations = Violations()
        policy = self._policy(call, violations, "default_policy", given_policy) if given_policy else None
        self._check_events(violations, events)
        violations.raise_if_any()
        totals = IngestTotals()
        recorded: list[asyncio.Future] = []
        _settle(await self._apply_events(call, events, policy, totals, recorded))
        await asyncio.gather(*recorded)
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

    def _begin_next(self, call: CallContext, events: list[EventInput] | None, policy) -> asyncio.Task | None:
        """Begins the next message's transaction (its customers read and checked) while this one is stored,
        when the next message is here, valid, and the tenant's live segments are loaded."""
        live = self._live.loaded(call.tenant)
        if events is None or live is None:
            return None
        violations = Violations()
        self._check_events(violations, events)
        if violations.items:
            return None  # refused in its turn
        return asyncio.ensure_future(self._begin(call, live, events, set(), policy, early=True))

    async def _end_unused(self, begun: asyncio.Task) -> None:
        if not begun.done():
            await asyncio.wait([begun])
        if not begun.cancelled() and begun.exception() is None:
            await begun.result().end(self._store.pool)

    async def _apply_events(
        self,
        call: CallContext,
        events: list[EventInput],
        policy: RecordPolicy | None,
        totals: IngestTotals,
        recorded: list[asyncio.Future],
        before: _Uncounted | None = None,
        begun: asyncio.Task | None = None,
        while_stored: Callable[[], None] | None = None,
    ) -> _Uncounted:
        """Stores one message's events, all or nothing, and commits them; returns their counting by the live
        segments, for the caller to settle. `before`, the previous message's, is settled while this one is
        stored, or earlier; `begun`, this message's transaction when begun in advance (`_begin_next`);
        `while_stored`, more to do in this process while PostgreSQL stores it.

        One transaction holding erasure off (and, with several replicas, the slots' ownership:
        `Partitions.fence`); two statements besides in the common case: the message's customers (keys,
        consent, what conditions read) and the storage of everything at once."""
        slots = {slot_of(event.customer_id) for event in events} if self._partitioned() else set()
        while True:
            if self._partitions is not None and not slots <= self._partitions.owned:
                raise SlotMoved(slots - self._partitions.owned)
            live = await self._live.state(call.tenant)
            if live.slots is not None and not slots <= live.slots:
                _settle(before)  # retiring takes the commit lock it may hold
                await self._live.retire(call.tenant)  # loaded before these slots came here
                continue
            started = None
            if begun is not None:
                task, begun = begun, None
                started = await task  # its failure (consent, say) is this message's
                if started.live is not live:  # retired meanwhile
                    await started.end(self._store.pool)
                    started = None
            if started is None:
                started = await self._begin(call, live, events, slots, policy, early=False)
            uncounted = await self._apply_to(call, started, events, policy, totals, recorded, before, while_stored)
            if uncounted is not None:
                return uncounted

    def _partitioned(self) -> bool:
        """Several replicas share the slots (else this one owns them all and nothing is routed or fenced)."""
        return self._partitions is not None and self._partitions.partitioned

    async def _begin(self, call, live, events, slots, policy, early: bool) -> _Begun:
        """The message's transaction: erasure held off (and the slots), its customers read and checked."""
        watched = bool(live.segments or live.pending)
        attribute_keys, feature_names, _ = live.wanted() if watched else ((), (), ())
        customer_ids = list(dict.fromkeys(event.customer_id for event in events))
        connection = await self._store.pool.acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
            try:
                # Before the customers are read: none of them is erased until the message is stored.
                await hold_off_erasure(connection, call.tenant)
                if slots and self._partitions is not None:
                    await self._partitions.fence(connection, slots)
                found = await self._store.event_customers(
                    connection, call.tenant, customer_ids, attribute_keys, feature_names
                )
                rows = {row["id"]: row for row in found.rows}
                unknown = [customer_id for customer_id in customer_ids if customer_id not in rows]
                self._check_event_customers(call, events, rows, unknown, policy)
            except BaseException:
                await transaction.rollback()
                raise
        except BaseException:
            await self._store.pool.release(connection)
            raise
        return _Begun(live, connection, transaction, customer_ids, found, rows, unknown, early)

    async def _apply_to(
        self, call, begun: _Begun, events, policy, totals: IngestTotals, recorded, before, while_stored
    ) -> _Uncounted | None:
        """None, with nothing stored, when the live segments were retired meanwhile."""

        def meanwhile() -> None:
            _settle(before)
            if while_stored is not None:
                while_stored()

        part = IngestTotals()
        live, connection, transaction, rows = begun.live, begun.connection, begun.transaction, begun.rows
        watched = bool(live.segments or live.pending)  # now: segments may have come since the read
        try:
            try:
                part.customers_created = await self._create_event_customers(
                    connection, call, begun.unknown, rows, policy
                )
                stored, folded = await _while(
                    self._store_events(connection, events, rows, part, call.tenant), meanwhile
                )
                touched = sorted({rows[event.customer_id]["key"] for event in stored})
                if begun.found.has_ready_segmentation:
                    causes = {event.customer_id: event.id for event in events}
                    ids = {rows[customer_id]["key"]: customer_id for customer_id in begun.customer_ids}
                    part.reassigned = await self._versions.reassign(connection, call.tenant, touched, causes, ids)
                built = await self._live.read_built(connection, call.tenant, live, touched) if watched else {}
            except BaseException:
                await transaction.rollback()
                raise
            # Committed and counted in one order with snapshots: the lock is released once counted.
            await live.commit_lock.acquire()
            try:
                if live.retired:
                    await transaction.rollback()
                    live.commit_lock.release()
                    return None
                await transaction.commit()
            except BaseException:
                live.commit_lock.release()
                raise
        finally:
            begun.released = True
            await self._store.pool.release(connection)
        # Customers read before the message before committed: its aggregates are newer than what was read.
        known = before.folded | folded if begun.early and before is not None else folded

        def count() -> None:
            changes, part.late = self._follow(live, events, rows, built, stored, known, policy, watched)
            part.condition_changes = len(changes)
            totals.add(part)
            if changes:
                recorded.append(self._live.record_later(live, call.tenant, changes))

        return _Uncounted(live, count, folded)

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
            assert policy is not None  # refused above without one
            require_consent(policy.data_class, policy.consented_purposes, call.purpose)

    async def _create_event_customers(self, connection, call, unknown, rows, policy: RecordPolicy | None) -> int:
        """Creates the message's unknown customers and adds them to `rows`; those another call created
        meanwhile are read."""
        if not unknown:
            return 0
        assert policy is not None  # `_check_event_customers` refused unknown customers without one
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
        assert policy is not None  # refused above without one
        require_consent(policy.data_class, policy.consented_purposes, call.purpose)
        return len(await self._store.create_missing_customers(connection, call.tenant, sorted(unknown), policy))

    # --- customers ----------------------------------------------------------------------------

    async def unsubscribe(self, call: CallContext, customer_id: str, channel: str) -> Unsubscribed:
        """No consent check: leaving a channel is honoured whatever purpose the caller declares."""
        violations = Violations()
        violations.check(bool(customer_id), "customer_id", "must not be empty")
        violations.check(bool(CHANNEL_NAME.match(channel)), "channel", "lowercase letters, digits and '_', 1 to 32")
        violations.raise_if_any()
        return await self._store.unsubscribe(call.tenant, customer_id, channel)

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
        await self._live.retire(call.tenant)
        return erased

    async def describe_subject(self, call: CallContext, subject_id: str) -> list[SubjectHolding]:
        check_subject_id(subject_id)
        require_describer(call)
        return cap_exports(await self._store.describe_subject(call.tenant, subject_id, call.data_class))

    # --- helpers ------------------------------------------------------------------------------

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


def _customer_id(event: EventInput) -> str:
    return event.customer_id
