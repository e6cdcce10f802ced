"""Condition segments over gRPC: validation, live entries and exits with their cause, expiry by the
sweep, duplicates and late events, and a full evaluation that agrees with the live path."""

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2

from matcha.runtime.client import error_details
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.support import refused

from .conftest import POLICY, timestamp

START = datetime(2026, 3, 1, tzinfo=UTC)
WAIT = 60.0


class SimulatedClock:
    """The service's notion of now, moved by the test so windows expire when the test says."""

    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clocked(segmentation_settings, serve, connect, tenant):
    clock = SimulatedClock(START)
    settings = segmentation_settings(
        segmentation_sweep_interval_seconds=0.05, segmentation_late_tolerance_seconds=7_200
    )
    async with serve(build_segmentation_service(settings, clock=clock), settings) as server:
        yield clock, segmentation_segmentation_stub(connect(server, tenant))


def segmentation_segmentation_stub(channel) -> segmentation_pb2_grpc.SegmentationServiceStub:
    return segmentation_pb2_grpc.SegmentationServiceStub(channel)


def within(hours: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromTimedelta(timedelta(hours=hours))
    return value


def event(event_id: str, customer: str, kind: int, at: datetime, item: str = "", amount: float = 0.0):
    return pb.BehaviourEvent(
        id=event_id, customer_id=customer, type=kind, time=timestamp(at), item_id=item, amount=amount
    )


async def ingest(stub, events) -> pb.IngestEventsResponse:
    async def messages():
        yield pb.IngestEventsRequest(events=events, default_policy=POLICY)

    return await stub.IngestEvents(messages())


class LoggedChanges:
    """A watch's changes one at a time, however its messages group them."""

    def __init__(self, watch) -> None:
        self._replies = watch.__aiter__()
        self._pending: list[pb.SegmentChange] = []

    async def next(self) -> pb.SegmentChange:
        while not self._pending:
            self._pending += (await asyncio.wait_for(self._replies.__anext__(), WAIT)).changes
        return self._pending.pop(0)


async def ready(stub, name: str) -> pb.ConditionSegment:
    for _ in range(int(WAIT / 0.05)):
        segment = (await stub.GetConditionSegment(pb.GetConditionSegmentRequest(name=name))).segment
        if segment.state == pb.SEGMENTATION_STATE_READY:
            return segment
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never became READY")


async def members(stub, name: str) -> list[str]:
    found, token = [], ""
    while True:
        page = await stub.ListConditionSegmentMembers(
            pb.ListConditionSegmentMembersRequest(name=name, page_size=100, page_token=token)
        )
        found += page.customer_ids
        token = page.next_page_token
        if not token:
            return found


VIEWED_NOT_BOUGHT = pb.Condition(
    all=pb.ConditionList(
        conditions=[
            pb.Condition(
                event=pb.EventCondition(type=pb.EVENT_TYPE_VISIT, item_ids=["coffee"], within=within(1), min_count=2)
            ),
            pb.Condition(event=pb.EventCondition(type=pb.EVENT_TYPE_PURCHASE, within=within(1), not_occurred=True)),
        ]
    )
)


async def test_bad_definitions_are_refused_with_field_violations(clocked):
    _, stub = clocked
    await ingest(stub, [event("seed", "c1", pb.EVENT_TYPE_VISIT, START)])
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="base", condition=VIEWED_NOT_BOUGHT))
    bad = pb.Condition(
        any=pb.ConditionList(
            conditions=[
                pb.Condition(
                    property=pb.PropertyCondition(
                        property="attributes.nowhere",
                        compare=pb.Comparison(operator=pb.COMPARE_OPERATOR_EQ, value=pb.ScalarValue(text="x")),
                    )
                ),
                pb.Condition(property=pb.PropertyCondition(property="features.unknown", range=pb.NumberRange(min=1))),
                pb.Condition(event=pb.EventCondition(type=pb.EVENT_TYPE_CLICK, within=within(-1))),
                pb.Condition(event=pb.EventCondition(type=pb.EVENT_TYPE_CLICK, within=within(24 * 500))),
                pb.Condition(event=pb.EventCondition(within=within(1))),
                pb.Condition(member_of=pb.SegmentReference(segmentation="nothing")),
                pb.Condition(bucket=pb.RandomBucket(salt="s", lower=50, upper=20)),
                pb.Condition(),
            ]
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="bad", condition=bad))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = set(error_details(refused.value).field_violations)
    prefix = "condition.any.conditions"
    assert fields == {
        f"{prefix}[0].property.property",
        f"{prefix}[1].property.property",
        f"{prefix}[2].event.within",
        f"{prefix}[3].event.within",
        f"{prefix}[4].event.type",
        f"{prefix}[5].member_of.segmentation",
        f"{prefix}[6].bucket.upper",
        f"{prefix}[7]",
    }
    # A cycle: "loop" refers to "base", then "base" is redefined to refer to "loop".
    refers = lambda name: pb.Condition(member_of=pb.SegmentReference(segmentation=name))  # noqa: E731
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="loop", condition=refers("base")))
    with pytest.raises(grpc.aio.AioRpcError) as cyclic:
        await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="base", condition=refers("loop")))
    assert cyclic.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    cycle = "cyclic segment reference: base -> loop -> base"
    assert error_details(cyclic.value).field_violations == {"condition": cycle}


async def test_events_move_customers_in_and_out_with_their_cause(clocked):
    clock, stub = clocked
    await ingest(stub, [event("seed", "c0", pb.EVENT_TYPE_CLICK, START)])
    defined = await stub.DefineConditionSegment(
        pb.DefineConditionSegmentRequest(name="viewed-not-bought", condition=VIEWED_NOT_BOUGHT)
    )
    assert defined.segment.version == 1
    await ready(stub, "viewed-not-bought")
    watch = stub.WatchSegmentChanges(pb.WatchSegmentChangesRequest(segmentation="viewed-not-bought", after_sequence=0))
    next_change = LoggedChanges(watch).next

    now = START
    first = await ingest(
        stub,
        [
            event("v1", "c1", pb.EVENT_TYPE_VISIT, now - timedelta(minutes=20), "coffee"),
            event("v2", "c1", pb.EVENT_TYPE_VISIT, now - timedelta(minutes=10), "coffee"),
            event("v3", "c2", pb.EVENT_TYPE_VISIT, now - timedelta(minutes=50), "coffee"),
            event("v4", "c2", pb.EVENT_TYPE_VISIT, now - timedelta(minutes=40), "coffee"),
            event("v5", "c3", pb.EVENT_TYPE_VISIT, now, "tea"),
        ],
    )
    assert first.condition_changes == 2
    entered = sorted([await next_change(), await next_change()], key=lambda change: change.customer_id)
    assert [(c.customer_id, c.from_segment_id, c.to_segment_id, c.cause_id) for c in entered] == [
        ("c1", "", "viewed-not-bought", "v2"),
        ("c2", "", "viewed-not-bought", "v4"),
    ]
    # A purchase takes c1 out; its duplicate and a late visit change nothing.
    second = await ingest(
        stub,
        [
            event("p1", "c1", pb.EVENT_TYPE_PURCHASE, now, amount=12.5),
            event("v2", "c1", pb.EVENT_TYPE_VISIT, now, "coffee"),
            event("late", "c3", pb.EVENT_TYPE_VISIT, now - timedelta(hours=3), "coffee"),
        ],
    )
    assert (second.accepted, second.duplicates, second.late, second.condition_changes) == (2, 1, 1, 1)
    left = await next_change()
    assert (left.customer_id, left.from_segment_id, left.to_segment_id, left.cause_id) == (
        "c1",
        "viewed-not-bought",
        "",
        "p1",
    )
    # c2's first visit leaves the window 10 minutes from now: the sweep takes c2 out, with no event.
    clock.now = (now + timedelta(minutes=11)).timestamp()
    expired = await next_change()
    assert (expired.customer_id, expired.from_segment_id, expired.cause_id) == ("c2", "viewed-not-bought", "")
    assert await members(stub, "viewed-not-bought") == []
    watch.cancel()


async def test_a_restart_logs_the_exits_of_windows_that_expired_while_down(
    segmentation_settings, serve, connect, tenant
):
    """The members watchers were told stay true across a restart: a window that expired while no process
    counted it is an exit, logged when the tenant is loaded again."""
    clock = SimulatedClock(START)
    settings = segmentation_settings(segmentation_sweep_interval_seconds=0.05)
    async with serve(build_segmentation_service(settings, clock=clock), settings) as server:
        stub = segmentation_segmentation_stub(connect(server, tenant))
        await ingest(stub, [event("seed", "c0", pb.EVENT_TYPE_CLICK, START)])
        await stub.DefineConditionSegment(
            pb.DefineConditionSegmentRequest(name="viewed-not-bought", condition=VIEWED_NOT_BOUGHT)
        )
        await ready(stub, "viewed-not-bought")
        visits = [event(f"v{n}", "c1", pb.EVENT_TYPE_VISIT, START - timedelta(minutes=n), "coffee") for n in (1, 2)]
        assert (await ingest(stub, visits)).condition_changes == 1
    clock.now = (START + timedelta(hours=2)).timestamp()  # c1's visits left the window while nothing ran
    async with serve(build_segmentation_service(settings, clock=clock), settings) as server:
        stub = segmentation_segmentation_stub(connect(server, tenant))
        await ingest(stub, [event("wake", "c0", pb.EVENT_TYPE_CLICK, START + timedelta(hours=2))])
        watch = stub.WatchSegmentChanges(
            pb.WatchSegmentChangesRequest(segmentation="viewed-not-bought", after_sequence=0)
        )
        changes = LoggedChanges(watch)
        logged = [await changes.next() for _ in range(2)]
        watch.cancel()
        assert [(c.customer_id, c.to_segment_id, c.from_segment_id, c.cause_id) for c in logged] == [
            ("c1", "viewed-not-bought", "", "v2"),
            ("c1", "", "viewed-not-bought", ""),
        ]
        assert await members(stub, "viewed-not-bought") == []


def day_of_events(
    rng: np.random.Generator, end: datetime, count: int, customers: int, span: float = 86_400
) -> list[pb.BehaviourEvent]:
    """`count` events of `customers` customers over the `span` seconds before `end`, in time order."""
    offsets = np.sort(rng.uniform(86_400 - span, 86_400, count))
    kinds = [pb.EVENT_TYPE_PURCHASE, pb.EVENT_TYPE_VISIT, pb.EVENT_TYPE_CLICK]
    return [
        event(
            f"e{index}",
            f"c{int(rng.integers(0, customers))}",
            kinds[int(rng.choice(3, p=[0.2, 0.5, 0.3]))],
            end - timedelta(seconds=86_400 - float(offset)),
            ["coffee", "tea", "decaf"][int(rng.integers(0, 3))],
            float(rng.gamma(2.0, 10.0)),
        )
        for index, offset in enumerate(offsets)
    ]


REPLAYED = pb.Condition(
    any=pb.ConditionList(
        conditions=[
            pb.Condition(
                event=pb.EventCondition(
                    type=pb.EVENT_TYPE_VISIT, item_ids=["coffee"], within=within(3), min_count=3, max_count=6
                )
            ),
            pb.Condition(
                all=pb.ConditionList(
                    conditions=[
                        pb.Condition(
                            event=pb.EventCondition(
                                type=pb.EVENT_TYPE_PURCHASE, within=within(12), amount_sum=pb.NumberRange(min=40)
                            )
                        ),
                        pb.Condition(
                            **{"not": pb.Condition(event=pb.EventCondition(type=pb.EVENT_TYPE_CLICK, within=within(2)))}
                        ),
                    ]
                )
            ),
            pb.Condition(
                all=pb.ConditionList(
                    conditions=[
                        pb.Condition(bucket=pb.RandomBucket(salt="control", lower=0, upper=10)),
                        pb.Condition(
                            event=pb.EventCondition(
                                type=pb.EVENT_TYPE_CLICK, amount=pb.NumberRange(min=20), within=within(6)
                            )
                        ),
                    ]
                )
            ),
        ]
    )
)


async def test_full_evaluation_gives_the_members_of_the_live_path(clocked):
    """A day of events replayed live (the clock following the events, the sweep expiring windows), then
    the same definition evaluated in full over the stored events: the same members."""
    clock, stub = clocked
    end = START + timedelta(days=1)
    events = day_of_events(np.random.default_rng(7), end, 4_000, 150)
    clock.now = (end - timedelta(days=1)).timestamp()
    await ingest(stub, events[:1])
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="live", condition=REPLAYED))
    await ready(stub, "live")
    changes = 0
    for start in range(1, len(events), 100):
        batch = events[start : start + 100]
        clock.now = batch[-1].time.seconds + batch[-1].time.nanos / 1e9
        changes += (await ingest(stub, batch)).condition_changes
    clock.now = end.timestamp()
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="replayed", condition=REPLAYED))
    assert (await ready(stub, "replayed")).size == len(await members(stub, "replayed"))
    replayed = await members(stub, "replayed")
    # The sweep (every 0.05 s) expires what the last clock move closed; wait for it, not for a time.
    for _ in range(int(WAIT / 0.05)):
        live = await members(stub, "live")
        if live == replayed:
            break
        await asyncio.sleep(0.05)
    assert changes > 100 and len(live) > 10
    assert live == replayed
    # A page token belongs to its listing: another segment's, or one made up, is refused.
    first = await stub.ListConditionSegmentMembers(pb.ListConditionSegmentMembersRequest(name="live", page_size=5))
    for token in (first.next_page_token, "eyJhZnRlciI6ICIifQ=="):
        details = await refused(
            stub.ListConditionSegmentMembers(pb.ListConditionSegmentMembersRequest(name="replayed", page_token=token))
        )
        assert set(details.field_violations) == {"page_token"}


async def test_a_segment_defined_during_a_stream_counts_each_event_once(clocked):
    """A stream of many messages, each counted while PostgreSQL stores the next, and a segment with counters of
    its own defined in the middle of it: its full evaluation's snapshot falls between two messages counted,
    never between a message's commit and its counting (the event would be counted twice), so its members are
    the customers whose events meet the condition."""
    clock, stub = clocked
    end = START + timedelta(days=1)
    clock.now = end.timestamp()
    events = day_of_events(np.random.default_rng(11), end, 6_000, 200, span=3_600)  # none late
    await ingest(stub, events[:1])
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="live", condition=REPLAYED))
    await ready(stub, "live")
    # An exact range of counts: one event counted twice, or missed, moves its customer.
    visits = pb.EventCondition(type=pb.EVENT_TYPE_VISIT, item_ids=["coffee"], within=within(2), min_count=4)
    visits.max_count = 6
    defined: list[asyncio.Future] = []

    async def messages():
        for start in range(1, len(events), 100):
            if start == 2_001:
                request = pb.DefineConditionSegmentRequest(name="during", condition=pb.Condition(event=visits))
                defined.append(asyncio.ensure_future(stub.DefineConditionSegment(request)))
            yield pb.IngestEventsRequest(events=events[start : start + 100], default_policy=POLICY)

    totals = await stub.IngestEvents(messages())
    await defined[0]
    await ready(stub, "during")
    assert (totals.accepted, totals.late) == (len(events) - 1, 0) and totals.condition_changes > 100
    counts: dict[str, int] = {}
    for each in events:
        if each.type == pb.EVENT_TYPE_VISIT and each.item_id == "coffee":
            counts[each.customer_id] = counts.get(each.customer_id, 0) + 1
    expected = sorted(customer for customer, count in counts.items() if 4 <= count <= 6)
    assert len(expected) > 10
    assert sorted(await members(stub, "during")) == expected


async def test_a_message_begun_before_the_one_before_committed_sees_its_purchases(clocked):
    """The next message's customers are read while the one before is stored, before it commits: a customer who
    bought in that one and visits in this one is decided on the purchase aggregates that include the purchase."""
    _, stub = clocked
    customers = [f"b{index:02d}" for index in range(8)]
    await ingest(stub, [event(f"seed-{customer}", customer, pb.EVENT_TYPE_CLICK, START) for customer in customers])
    buyers_visiting = pb.Condition(
        all=pb.ConditionList(
            conditions=[
                pb.Condition(event=pb.EventCondition(type=pb.EVENT_TYPE_VISIT, within=within(1), min_count=1)),
                pb.Condition(property=pb.PropertyCondition(property="features.purchases", range=pb.NumberRange(min=1))),
            ]
        )
    )
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="buyers", condition=buyers_visiting))
    await ready(stub, "buyers")

    async def messages():
        for customer in customers:  # a purchase among others' clicks (a longer store), then a visit
            clicks = [event(f"{customer}-{n}", f"f{n}", pb.EVENT_TYPE_CLICK, START) for n in range(999)]
            bought = event(f"{customer}-p", customer, pb.EVENT_TYPE_PURCHASE, START, amount=5.0)
            yield pb.IngestEventsRequest(events=[*clicks, bought], default_policy=POLICY)
            visited = event(f"{customer}-v", customer, pb.EVENT_TYPE_VISIT, START, "coffee")
            yield pb.IngestEventsRequest(events=[visited], default_policy=POLICY)

    totals = await stub.IngestEvents(messages())
    assert totals.accepted == 8 * 1_001
    assert sorted(await members(stub, "buyers")) == customers


async def test_cli_defines_a_segment_from_yaml_and_lists_its_members(segmentation_server, issuer, tenant, tmp_path):
    from click.testing import CliRunner

    from matcha.cli.segment import segment

    lines = ["id,customer_id,time,amount"]
    lines += [f"t{c}-{n},c{c},2024-02-0{1 + n},{10 + c}" for c in range(6) for n in range(1 + c % 3)]
    (tmp_path / "transactions.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "segment.yaml").write_text(
        "description: bought at least twice, spent over 20\n"
        "all:\n"
        "  - property: {property: features.purchases, range: {min: 2}}\n"
        "  - property: {property: features.spend, compare: {operator: gt, value: {number: 20}}}\n"
        "  - not: {event: {type: click, within: 48h}}\n"
    )
    token = issuer.mint(subject="cli", tenant=tenant, roles=["analyst", "author", "operator"])
    common = ["--target", f"127.0.0.1:{segmentation_server.port}", "--token", token]
    runner = CliRunner()

    def run(*arguments):
        result = runner.invoke(segment, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    await asyncio.to_thread(run, "ingest", str(tmp_path / "transactions.csv"), "--consent", "campaign")
    defined = await asyncio.to_thread(run, "define", "repeat-buyers", str(tmp_path / "segment.yaml"))
    # c1 (2 purchases, 22), c2 (3, 36), c4 (2, 28), c5 (3, 45)
    assert defined.strip() == "repeat-buyers version 1: READY, 4 members"
    listed = await asyncio.to_thread(run, "members", "repeat-buyers")
    assert listed.splitlines() == ["c1", "c2", "c4", "c5", "4 members"]
