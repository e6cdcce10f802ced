"""Live evaluation of condition segments: per-customer event counters kept in memory.

Each stored event updates, in memory, the counters of the windows the tenant's conditions need
(one counter per distinct event filter and window, shared by every condition that uses it), then
re-evaluates only the segments those counters feed, and the segments that refer to them. Entries and
exits are written to the members table and the change log in one statement batch per stream
message. Relative windows keep their events' times, so a scheduled sweep moves customers out (or, for
`not_occurred`, in) when the oldest event leaves the window, without waiting for the next event.

A full evaluation (a new or edited segment, or a tenant loaded after a restart or a move of slots) folds
the stored events into the same counters with numpy, then decides every customer with the same `evaluate`. It
reads the events in a snapshot taken while no event message of the tenant commits, and the new
counters are live from that moment, so every event is counted exactly once: by the snapshot if it
committed before, live otherwise. Duplicates never reach the counters (the events table's key
refuses them first); events older than the late tolerance are stored but refused here.

With several replicas, a tenant's state covers the customers of the slots this replica owned when it was
loaded (`partitions.py`); when they change, the state is retired and loaded again.
"""

import asyncio
import bisect
import gc
import heapq
import logging
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from matcha.segmentation.condition_store import ConditionStore
from matcha.segmentation.conditions import CounterSpec, Node, counters, evaluate, from_json, properties, references
from matcha.segmentation.partitions import Partitions, slot_of
from matcha.segmentation.records import READY, ConditionChange, ConditionRecord, CustomerFacts

logger = logging.getLogger(__name__)

PUBLIC = 1
_EVALUATION_CHUNK = 20_000
# A counted event as packed in its counter: (time in epoch seconds, amount).
_PAIR = struct.Struct("dd")
_TIME = struct.Struct("d")


@dataclass(frozen=True)
class StoredEvent:
    id: str
    customer_key: int
    type: int
    time: float  # epoch seconds
    amount: float
    item_id: str


class Counter:
    """Matching events of one customer in one window, in time order, and their amounts' total.

    The events are packed (time, amount) in a bytearray, which the garbage collector does not track: millions
    of counters live as long as the process, and with two lists each every full collection walked three
    objects per counter while holding the event loop (255 ms pauses at 1,000,000 customers)."""

    __slots__ = ("events", "total")

    def __init__(self, events: bytes = b"", total: float = 0.0) -> None:
        self.events = bytearray(events)
        self.total = total

    @classmethod
    def of(cls, times: np.ndarray, amounts: np.ndarray, total: float) -> "Counter":
        """A counter of events given in time order."""
        return cls(np.column_stack((times, amounts)).astype(np.float64).tobytes(), total)

    def __len__(self) -> int:
        return len(self.events) // _PAIR.size

    def oldest(self) -> float:
        return _TIME.unpack_from(self.events)[0]

    def add(self, event_time: float, amount: float) -> bool:
        """Adds an event; True when it is now the oldest one (its expiry comes first)."""
        events = self.events
        if not events or event_time >= _TIME.unpack_from(events, len(events) - _PAIR.size)[0]:
            events += _PAIR.pack(event_time, amount)
        else:
            at = _PAIR.size * bisect.bisect_right(self._values()[::2], event_time)
            events[at:at] = _PAIR.pack(event_time, amount)
        self.total += amount
        return self.oldest() == event_time

    def prune(self, cutoff: float) -> None:
        """Drops events at or before `cutoff`."""
        if not self.events or self.oldest() > cutoff:
            return
        values = self._values()
        index = bisect.bisect_right(values[::2], cutoff)
        self.total -= sum(values[1 : 2 * index : 2])
        del self.events[: _PAIR.size * index]
        if not self.events:
            self.total = 0.0

    def _values(self) -> tuple[float, ...]:
        return struct.unpack(f"{len(self.events) // _TIME.size}d", self.events)


@dataclass
class LiveSegment:
    record: ConditionRecord
    node: Node
    specs: set[CounterSpec]
    references: set[tuple[str, str]]
    members: set[int] = field(default_factory=set)
    # Customers whose counters changed while the full evaluation ran: decided again at its end.
    dirty: set[int] = field(default_factory=set)


@dataclass
class TenantState:
    # The slots whose customers it counts; None: all of them (one replica).
    slots: frozenset[int] | None = None
    # Set, under the commit lock, when it no longer counts: a store that finds it set uses the next state.
    retired: bool = False
    # Versions whose full evaluation started, so that each runs once.
    started: set[int] = field(default_factory=set)
    segments: dict[str, LiveSegment] = field(default_factory=dict)
    # Versions being evaluated in full, by name; they replace `segments[name]` once complete.
    pending: dict[str, LiveSegment] = field(default_factory=dict)
    spec_ids: dict[CounterSpec, int] = field(default_factory=dict)
    specs: list[CounterSpec] = field(default_factory=list)
    # Counters an event may feed: by (type, item) for those with an item list, by type for the others.
    by_item: dict[tuple[int, str], list[CounterSpec]] = field(default_factory=lambda: defaultdict(list))
    by_type: dict[int, list[CounterSpec]] = field(default_factory=lambda: defaultdict(list))
    customers: dict[int, dict[CounterSpec, Counter]] = field(default_factory=dict)
    expiries: list[tuple[float, int, int]] = field(default_factory=list)
    # Commits of event messages and snapshots of full evaluations, in one order.
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Changes decided and not yet written, with the futures of their callers, in the order they were
    # decided (queued with nothing yielding in between); one writer task writes them, those queued while
    # it writes together in its next statement.
    unrecorded: list[tuple[list[ConditionChange], asyncio.Future]] = field(default_factory=list)
    writer: asyncio.Task | None = None
    # (segments in order, segments fed by each counter, segments referring to each segment), kept until
    # the live segments change.
    _plan: tuple | None = None
    # (attribute keys, feature names, built segmentations) the live and pending segments read, kept as long.
    _wanted: tuple[list[str], list[str], list[str]] | None = None

    def all_segments(self) -> Iterator[LiveSegment]:
        yield from self.segments.values()
        yield from self.pending.values()

    def register(self, spec: CounterSpec) -> bool:
        """Makes a counter live; False when it already was."""
        if spec in self.spec_ids:
            return False
        self.spec_ids[spec] = len(self.specs)
        self.specs.append(spec)
        if spec.item_ids:
            for item in spec.item_ids:
                self.by_item[spec.type, item].append(spec)
        else:
            self.by_type[spec.type].append(spec)
        return True

    def plan(self) -> tuple[list[LiveSegment], dict[str, int], dict[CounterSpec, set[str]], dict[str, set[str]]]:
        """(segments in order, each one's place in it, segments fed by each counter, segments referring
        to each segment)."""
        if self._plan is None:
            ordered = self.order()
            fed_by: dict[CounterSpec, set[str]] = defaultdict(set)
            dependents: dict[str, set[str]] = defaultdict(set)
            for segment in ordered:
                for spec in segment.specs:
                    fed_by[spec].add(segment.record.name)
                for ref, segment_id in segment.references:
                    if not segment_id:
                        dependents[ref].add(segment.record.name)
            rank = {segment.record.name: index for index, segment in enumerate(ordered)}
            self._plan = (ordered, rank, dict(fed_by), dict(dependents))
        return self._plan

    def segments_changed(self) -> None:
        self._plan = None
        self._wanted = None

    def wanted(self) -> tuple[list[str], list[str], list[str]]:
        """Attribute keys, feature names and built segmentations the tenant's conditions read."""
        if self._wanted is None:
            attributes: set[str] = set()
            features: set[str] = set()
            built: set[str] = set()
            for segment in self.all_segments():
                for path in properties(segment.node):
                    scope, _, key = path.partition(".")
                    (attributes if scope == "attributes" else features).add(key)
                built.update(name for name, segment_id in segment.references if segment_id)
            self._wanted = (sorted(attributes), sorted(features), sorted(built))
        return self._wanted

    def order(self) -> list[LiveSegment]:
        """Live segments, each after the condition segments it refers to."""
        done: dict[str, LiveSegment] = {}

        def visit(segment: LiveSegment) -> None:
            name = segment.record.name
            if name in done:
                return
            for ref, segment_id in segment.references:
                if not segment_id and ref in self.segments:
                    visit(self.segments[ref])
            done[name] = segment

        for segment in self.segments.values():
            visit(segment)
        return list(done.values())


class _Facts:
    """What `evaluate` asks about one customer, from memory and the rows read for the message."""

    __slots__ = ("_built", "_counters", "_decided", "_facts", "_now", "_state", "customer_id")

    def __init__(self, facts: CustomerFacts, counters_of, built, state: TenantState, now: float, decided) -> None:
        self.customer_id = facts.id
        self._facts = facts
        self._counters = counters_of
        self._built = built
        self._state = state
        self._now = now
        self._decided = decided

    def counter(self, spec: CounterSpec) -> tuple[int, float]:
        found = self._counters.get(spec) if self._counters else None
        if found is None:
            return 0, 0.0
        window = spec.window
        if window.within is not None:
            found.prune(self._now - window.within)
            return len(found), found.total
        # A fixed period: only its events were counted.
        return len(found), found.total

    def property(self, path: str):
        scope, _, key = path.partition(".")
        return (self._facts.attributes if scope == "attributes" else self._facts.features).get(key)

    def member(self, segmentation: str, segment_id: str) -> bool:
        if segment_id:
            return self._built.get(segmentation, {}).get(self._facts.key) == segment_id
        decided = self._decided.get(segmentation)
        if decided is not None:
            return decided
        other = self._state.segments.get(segmentation)
        return other is not None and self._facts.key in other.members


def eligible(facts: CustomerFacts, purpose: str) -> bool:
    return facts.data_class == PUBLIC or purpose in facts.consented_purposes


class LiveSegments:
    def __init__(
        self,
        store: ConditionStore,
        *,
        clock: Callable[[], float] = time.time,
        late_tolerance_seconds: float = 300.0,
        sweep_interval_seconds: float = 1.0,
        partitions: Partitions | None = None,
    ) -> None:
        self._store = store
        self._partitions = partitions
        self._clock = clock
        self.late_tolerance = late_tolerance_seconds
        self._sweep_interval = sweep_interval_seconds
        self._tenants: dict[str, TenantState] = {}
        self._loading: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._catch_up: asyncio.Task | None = None
        # One full evaluation at a time: each holds a connection in its snapshot and asks the pool for
        # another to report progress, so unbounded ones would take the whole pool and wait on each other.
        self._full_evaluations = asyncio.Semaphore(1)

    def now(self) -> float:
        return self._clock()

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())
        if self._partitions is not None and self._partitions.partitioned:
            self._partitions.on_change(self._slots_changed)
            self._catch_up = self._spawn(self._catch_up_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._catch_up is not None:
            self._catch_up.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def retire(self, tenant: str) -> None:
        """Drops a tenant's memory (after an erasure, or when this replica's slots changed); it is read again from
        storage on next use. Marked under its commit lock, before any new state can load: an event stored
        after that is counted by the new state's snapshot, never lost between the two."""
        async with self._loading[tenant]:
            state = self._tenants.get(tenant)
            if state is None:
                return
            async with state.commit_lock:
                state.retired = True
                del self._tenants[tenant]
        # Its decided changes are written before another replica reads the members it takes over.
        if state.writer is not None:
            await asyncio.gather(state.writer, return_exceptions=True)

    def owned_slots(self) -> frozenset[int] | None:
        if self._partitions is None or not self._partitions.partitioned:
            return None
        return self._partitions.owned

    async def _slots_changed(self, previous: frozenset[int], now: frozenset[int]) -> None:
        for tenant in list(self._tenants):
            await self.retire(tenant)
            self._spawn(self._load_quietly(tenant))

    async def _load_quietly(self, tenant: str) -> None:
        try:
            await self.state(tenant)
        except Exception:
            logger.exception("loading the condition segments of a tenant failed")

    async def _catch_up_forever(self) -> None:
        """With several replicas, a version defined on another one is evaluated here for this replica's slots
        (found by polling: a version is READY only once every slot's owner has evaluated it)."""
        assert self._partitions is not None
        while True:
            await asyncio.sleep(self._partitions.cycle_seconds)
            try:
                for tenant in await self._store.tenants_building():
                    state = await self.state(tenant)
                    await self.evaluate_in_full(tenant, state, _referenced_first(await self._store.latest(tenant)))
            except Exception:
                logger.exception("evaluating condition segments defined elsewhere failed")

    def loaded(self, tenant: str) -> TenantState | None:
        """The tenant's state if it is loaded, without loading it."""
        return self._tenants.get(tenant)

    async def state(self, tenant: str) -> TenantState:
        state = self._tenants.get(tenant)
        if state is not None:
            return state
        async with self._loading[tenant]:
            state = self._tenants.get(tenant)
            if state is not None:
                return state
            state = TenantState(slots=self.owned_slots())
            await self.evaluate_in_full(tenant, state, _referenced_first(await self._store.latest(tenant)))
            self._tenants[tenant] = state
            return state

    def define(self, tenant: str, record: ConditionRecord) -> None:
        """Starts the full evaluation of a new version in the background."""
        self._spawn(self._define(tenant, record))

    async def _define(self, tenant: str, record: ConditionRecord) -> None:
        try:
            await self.evaluate_in_full(tenant, await self.state(tenant), [record])
        except Exception:
            logger.exception("full evaluation of condition segment %s failed", record.name)

    # --- the event path ------------------------------------------------------------------------

    def apply(
        self,
        state: TenantState,
        events: Sequence[StoredEvent],
        facts: dict[int, CustomerFacts],
        built: dict[str, dict[int, str]],
    ) -> tuple[list[ConditionChange], int]:
        """Folds stored events into the counters and decides the segments they feed: (changes, late)."""
        now = self._clock()
        oldest_accepted = now - self.late_tolerance
        late = 0
        touched: dict[int, set[CounterSpec]] = {}
        causes: dict[int, str] = {}
        by_item, by_type = state.by_item, state.by_type
        for event in events:
            if event.time < oldest_accepted:
                late += 1
                continue
            for spec in (*by_item.get((event.type, event.item_id), ()), *by_type.get(event.type, ())):
                if not spec.matches(event.item_id, event.amount) or not spec.window.contains(event.time, now):
                    continue
                counters_of = state.customers.get(event.customer_key)
                if counters_of is None:
                    counters_of = state.customers[event.customer_key] = {}
                counter = counters_of.get(spec)
                if counter is None:
                    counter = counters_of[spec] = Counter()
                if counter.add(event.time, event.amount) and spec.window.within is not None:
                    self._schedule(state, spec, event.customer_key, event.time + spec.window.within)
                touched.setdefault(event.customer_key, set()).add(spec)
                causes[event.customer_key] = event.id
        return self._decide(state, touched, facts, built, causes, now), late

    def _schedule(self, state: TenantState, spec: CounterSpec, key: int, expiry: float) -> None:
        """Sweeps the counter at `expiry`, when its oldest event leaves the window."""
        heapq.heappush(state.expiries, (expiry, key, state.spec_ids[spec]))

    def _decide(
        self,
        state: TenantState,
        touched: Mapping[int, set[CounterSpec] | None],
        facts: dict[int, CustomerFacts],
        built: dict[str, dict[int, str]],
        causes: dict[int, str],
        now: float,
    ) -> list[ConditionChange]:
        """Decides the segments fed by the touched counters of each customer (all segments for None)."""
        changes: list[ConditionChange] = []
        for segment in state.pending.values():
            segment.dirty.update(touched)
        ordered, rank, fed_by, dependents = state.plan()
        for key, specs in touched.items():
            customer = facts.get(key)
            if customer is None:
                continue
            if specs is None:
                targets = ordered
            else:
                # The segments these counters feed, and every segment that refers to one of them.
                wanted = set()
                for spec in specs:
                    wanted |= fed_by.get(spec, set())
                pending = list(wanted)
                while pending:
                    for dependent in dependents.get(pending.pop(), ()):
                        if dependent not in wanted:
                            wanted.add(dependent)
                            pending.append(dependent)
                if not wanted:
                    continue
                targets = [ordered[index] for index in sorted(rank[name] for name in wanted)]
            decided: dict[str, bool] = {}
            customer_facts = _Facts(customer, state.customers.get(key), built, state, now, decided)
            for segment in targets:
                inside = eligible(customer, segment.record.purpose) and evaluate(segment.node, customer_facts)
                decided[segment.record.name] = inside
                if inside != (key in segment.members):
                    (segment.members.add if inside else segment.members.discard)(key)
                    changes.append(ConditionChange(segment.record, key, inside, causes.get(key, "")))
        return changes

    async def record(self, state: TenantState, tenant: str, changes: list[ConditionChange]) -> None:
        """Writes changes (members, change log, notification) after those decided before them."""
        if changes:
            await self.record_later(state, tenant, changes)

    def record_later(self, state: TenantState, tenant: str, changes: list[ConditionChange]) -> asyncio.Future:
        """Queues changes to be written after those decided before them; the future is done once they are.
        The caller goes on meanwhile (an events stream stores its next message while these are written)."""
        future = asyncio.get_running_loop().create_future()
        state.unrecorded.append((changes, future))
        if state.writer is None or state.writer.done():
            state.writer = asyncio.create_task(self._write_changes(state, tenant))
            self._tasks.add(state.writer)
            state.writer.add_done_callback(self._tasks.discard)
        return future

    async def _write_changes(self, state: TenantState, tenant: str) -> None:
        while state.unrecorded:
            batches, state.unrecorded = state.unrecorded, []
            try:
                await self._store.record_changes(tenant, [change for changes, _ in batches for change in changes])
            except Exception as error:
                for _, future in batches:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, future in batches:
                    if not future.done():
                        future.set_result(None)

    async def reevaluate(self, tenant: str, keys: Sequence[int]) -> int:
        """Decides every live segment again for these customers (their properties changed)."""
        state = self._tenants.get(tenant)
        if state is None or not state.segments or not keys:
            return 0
        facts, built = await self.read_facts(None, tenant, state, keys)
        if state.slots is not None:  # the others are counted, and decided, by their own replica
            facts = {key: row for key, row in facts.items() if slot_of(row.id) in state.slots}
        changes = self._decide(state, {key: None for key in facts}, facts, built, {}, self._clock())
        await self.record(state, tenant, changes)
        return len(changes)

    async def read_facts(
        self, connection, tenant: str, state: TenantState, keys: Sequence[int]
    ) -> tuple[dict[int, CustomerFacts], dict[str, dict[int, str]]]:
        attributes, features, _ = state.wanted()
        rows = await self._store.customer_facts(tenant, keys, attributes, features, connection=connection)
        return {row.key: row for row in rows}, await self.read_built(connection, tenant, state, keys)

    async def read_built(
        self, connection, tenant: str, state: TenantState, keys: Sequence[int]
    ) -> dict[str, dict[int, str]]:
        """The customers' segments in the built segmentations the tenant's conditions refer to."""
        built = {}
        for name in state.wanted()[2]:
            built[name], _ = await self._store.built_positions(tenant, name, keys, connection=connection)
        return built

    # --- expiry -------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            for tenant in list(self._tenants):
                try:
                    await self.sweep(tenant)
                except Exception:
                    logger.exception("condition segment sweep failed")

    async def sweep(self, tenant: str) -> int:
        """Moves customers whose oldest counted event left its window; returns the changes recorded."""
        state = self._tenants.get(tenant)
        if state is None or (state.slots is not None and not state.slots <= (self.owned_slots() or state.slots)):
            return 0  # some of its slots moved away: it is being retired
        now = self._clock()
        touched: dict[int, set[CounterSpec]] = {}
        while state.expiries and state.expiries[0][0] <= now:
            _, key, spec_id = heapq.heappop(state.expiries)
            spec = state.specs[spec_id]
            counter = state.customers.get(key, {}).get(spec)
            if counter is None:
                continue
            within = spec.window.within
            assert within is not None  # only relative windows are scheduled
            counter.prune(now - within)
            if len(counter):
                self._schedule(state, spec, key, counter.oldest() + within)
            else:
                del state.customers[key][spec]
            touched.setdefault(key, set()).add(spec)
        if not touched:
            return 0
        facts, built = await self.read_facts(None, tenant, state, list(touched))
        changes = self._decide(state, touched, facts, built, {}, self._clock())
        await self.record(state, tenant, changes)
        return len(changes)

    # --- full evaluation ----------------------------------------------------------------------

    async def evaluate_in_full(self, tenant: str, state: TenantState, records: Sequence[ConditionRecord]) -> None:
        """Evaluates versions (referenced ones first) in one pass: one snapshot, one read of the customers and
        of the events their new counters need, every customer decided for all of them."""
        records = [record for record in records if record.id not in state.started]
        if not records:
            return
        state.started.update(record.id for record in records)
        async with self._full_evaluations:
            await self._evaluate_in_full(tenant, state, records)

    async def _evaluate_in_full(self, tenant: str, state: TenantState, records: list[ConditionRecord]) -> None:
        segments = []
        for record in records:
            node = from_json(record.definition)
            segments.append(LiveSegment(record, node, counters(node), references(node)))
        ids = [record.id for record in records]
        started = self._clock()
        async with self._store.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            async with state.commit_lock:
                # The snapshot is taken by the first statement: no event message of the tenant commits
                # between it and the new counters going live.
                await connection.fetchval("SELECT 1")
                fresh = [spec for segment in segments for spec in segment.specs if state.register(spec)]
                for segment in segments:
                    state.pending[segment.record.name] = segment
                state.segments_changed()
            await self._store.set_progress(ids, {"stage": "events", "completed": 0, "total": 0})
            facts_rows, built = await self._all_facts(connection, tenant, state, segments)
            if fresh:
                past = await self._past_events(connection, tenant, fresh, started)
                if state.slots is not None:  # only the customers of this replica's slots
                    past = past.only(np.fromiter((row.key for row in facts_rows), dtype=np.int64))
                self._fold_past_events(state, fresh, past, started)
            await self._store.set_progress(ids, {"stage": "evaluating", "completed": 0, "total": 0})
        members: dict[str, set[int]] = {segment.record.name: set() for segment in segments}
        total = len(facts_rows)
        for start in range(0, total, _EVALUATION_CHUNK):
            now = self._clock()
            for customer in facts_rows[start : start + _EVALUATION_CHUNK]:
                decided: dict[str, bool] = {}  # a segment referring to one of the batch reads its decision
                facts = _Facts(customer, state.customers.get(customer.key), built, state, now, decided)
                for segment in segments:
                    name = segment.record.name
                    decided[name] = eligible(customer, segment.record.purpose) and evaluate(segment.node, facts)
                    if decided[name]:
                        members[name].add(customer.key)
            progress = {"stage": "evaluating", "completed": min(start + _EVALUATION_CHUNK, total), "total": total}
            await self._store.set_progress(ids, progress)
        await self._store.set_progress(ids, {"stage": "storing", "completed": total, "total": total})
        by_key = {customer.key: customer for customer in facts_rows}
        moves: list[ConditionChange] = []
        for segment in segments:
            record, segment.members = segment.record, members[segment.record.name]
            if record.state == READY:
                # Loaded again (a restart, slots moved here): watchers were told the stored members; the
                # differences are moves made meanwhile (windows that expired while nobody counted).
                stored = set((await self._store.member_keys(record.id, state.slots)).tolist())
                moves += [ConditionChange(record, key, True, "") for key in sorted(segment.members - stored)]
                moves += [ConditionChange(record, key, False, "") for key in sorted(stored - segment.members)]
            else:
                slots = self._still_owned(state)
                kept = [key for key in segment.members if slots is None or slot_of(by_key[key].id) in slots]
                await self._store.complete(tenant, record.id, np.fromiter(kept, dtype=np.int64, count=len(kept)), slots)
        # Customers whose events arrived meanwhile are decided again, and their moves logged, once live.
        dirty = sorted(set().union(*(segment.dirty for segment in segments)))
        fresh_facts, fresh_built = await self.read_facts(None, tenant, state, dirty) if dirty else ({}, {})
        specs = set().union(*(segment.specs for segment in segments))
        for segment in segments:
            del state.pending[segment.record.name]
            segment.dirty.clear()
            state.segments[segment.record.name] = segment
        state.segments_changed()
        # The counters just folded live as long as the process: out of the collector's way, or every full
        # collection walks millions of them and holds the event loop (about 0.5 s a collection at 100,000
        # customers). Refcounting still frees them.
        gc.freeze()
        by_key.update(fresh_facts)
        changes = moves + self._decide(
            state, {key: specs for key in dirty}, by_key, fresh_built or built, {}, self._clock()
        )
        await self.record(state, tenant, changes)

    def _still_owned(self, state: TenantState) -> frozenset[int] | None:
        """The state's slots this replica still owns: a version's members are written only for those."""
        owned = self.owned_slots()
        if state.slots is None or owned is None:
            return state.slots
        return state.slots & owned

    async def _past_events(self, connection, tenant: str, fresh: list[CounterSpec], now: float):
        since = min(spec.window.earliest(now) for spec in fresh)
        item_lists = [sorted(spec.item_ids) for spec in fresh]
        return await self._store.past_events(connection, tenant, since, sorted({s.type for s in fresh}), item_lists)

    def _fold_past_events(self, state: TenantState, fresh: list[CounterSpec], past, now: float) -> None:
        """Adds the snapshot's events to the new counters, one numpy pass per counter."""
        for index, spec in enumerate(fresh):
            mask = past.types == spec.type
            if spec.item_ids:
                mask &= past.item_flags[index]
            if spec.amount_min is not None:
                mask &= past.amounts >= spec.amount_min
            if spec.amount_max is not None:
                mask &= past.amounts <= spec.amount_max
            window = spec.window
            if window.within is not None:
                mask &= past.times > now - window.within
            else:
                mask &= (past.times >= window.start) & (past.times < window.end)
            keys, times, amounts = past.keys[mask], past.times[mask], past.amounts[mask]
            if not len(keys):
                continue
            order = np.argsort(keys, kind="stable")  # events were read in time order
            keys, times, amounts = keys[order], times[order], amounts[order]
            boundaries = np.flatnonzero(np.diff(keys)) + 1
            starts = np.concatenate(([0], boundaries))
            totals = np.add.reduceat(amounts, starts)
            time_lists = np.split(times, boundaries)
            amount_lists = np.split(amounts, boundaries)
            for key, group_times, group_amounts, total in zip(
                keys[starts].tolist(), time_lists, amount_lists, totals.tolist(), strict=True
            ):
                counters_of = state.customers.setdefault(key, {})
                counter = counters_of.get(spec)
                if counter is None:
                    counter = counters_of[spec] = Counter.of(group_times, group_amounts, total)
                else:  # live events arrived during the read
                    for event_time, amount in zip(group_times.tolist(), group_amounts.tolist(), strict=True):
                        counter.add(event_time, amount)
                if window.within is not None:
                    self._schedule(state, spec, key, counter.oldest() + window.within)

    async def _all_facts(self, connection, tenant: str, state: TenantState, segments: list[LiveSegment]):
        attributes: set[str] = set()
        features: set[str] = set()
        for segment in segments:
            for path in properties(segment.node):
                scope, _, key = path.partition(".")
                (attributes if scope == "attributes" else features).add(key)
        rows = await self._store.customer_facts(
            tenant, None, sorted(attributes), sorted(features), connection=connection, slots=state.slots
        )
        built = {}
        references_built = {name for segment in segments for name, segment_id in segment.references if segment_id}
        for name in sorted(references_built):
            built[name], _ = await self._store.built_positions(tenant, name, None, connection=connection)
        return rows, built


def _referenced_first(records: list[ConditionRecord]) -> list[ConditionRecord]:
    """Condition segments each after those it refers to, so that its evaluation sees their decisions."""
    by_name = {record.name: record for record in records}
    ordered: dict[str, ConditionRecord] = {}

    def visit(record: ConditionRecord) -> None:
        if record.name in ordered:
            return
        for ref, segment_id in references(from_json(record.definition)):
            if not segment_id and ref in by_name:
                visit(by_name[ref])
        ordered[record.name] = record

    for record in records:
        visit(record)
    return list(ordered.values())
