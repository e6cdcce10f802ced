"""Live condition segments over two segmentation replicas as processes on one machine: each event is counted by
the replica that owns its customer's slot, whichever replica received it; slots move on scale-out and when a
replica is killed, and the live members stay those a full evaluation of the stored events gives (no event lost
or counted twice)."""

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from matcha.common.v1 import common_pb2
from matcha.runtime.client import error_details
from matcha.segmentation.partitions import SLOT_MOVED, SLOTS, slot_of
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.faults.conftest import process_environment, service_processes  # noqa: F401 (fixtures)
from tests.support import free_port

POLICY = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
CUSTOMERS = 240
LEASE_SECONDS = 3.0


def exactly_three_visits() -> pb.Condition:
    """Exactly three coffee visits in the last hour: a lost event or one counted twice changes the answer."""
    window = duration_pb2.Duration()
    window.FromTimedelta(timedelta(hours=1))
    return pb.Condition(
        event=pb.EventCondition(type=pb.EVENT_TYPE_VISIT, item_ids=["coffee"], within=window, min_count=3, max_count=3)
    )


def visit(event_id: str, customer: str) -> pb.BehaviourEvent:
    at = timestamp_pb2.Timestamp()
    at.FromDatetime(datetime.now(UTC))
    return pb.BehaviourEvent(id=event_id, customer_id=customer, type=pb.EVENT_TYPE_VISIT, time=at, item_id="coffee")


async def ingest(stub, events: list[pb.BehaviourEvent]) -> pb.IngestEventsResponse:
    async def messages():
        for start in range(0, len(events), 40):
            yield pb.IngestEventsRequest(events=events[start : start + 40], default_policy=POLICY)

    return await stub.IngestEvents(messages(), timeout=120)


async def members(stub, name: str) -> set[str]:
    found, token = set(), ""
    while True:
        page = await stub.ListConditionSegmentMembers(
            pb.ListConditionSegmentMembersRequest(name=name, page_size=500, page_token=token)
        )
        found.update(page.customer_ids)
        token = page.next_page_token
        if not token:
            return found


async def eventually(probe, within_seconds: float = 90.0):
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        outcome = await probe()
        if outcome:
            return outcome
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def define_and_wait(stub, name: str, gold: bool = False) -> None:
    condition = exactly_three_visits()
    if gold:
        tier = pb.PropertyCondition(
            property="attributes.tier",
            compare=pb.Comparison(operator=pb.COMPARE_OPERATOR_EQ, value=pb.ScalarValue(text="gold")),
        )
        condition = pb.Condition(all=pb.ConditionList(conditions=[pb.Condition(property=tier), condition]))
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name=name, condition=condition))

    async def is_ready() -> bool:
        segment = (await stub.GetConditionSegment(pb.GetConditionSegmentRequest(name=name))).segment
        return segment.state == pb.SEGMENTATION_STATE_READY

    await eventually(is_ready)


async def owners(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """SELECT replica, count(*) FROM segmentation_slot_owners
               WHERE replica IS NOT NULL AND lease_until > now() GROUP BY replica"""
        )
    finally:
        await connection.close()
    return {row[0]: row[1] for row in rows}


@pytest.fixture
def replica(service_processes, process_environment, connect, tenant):  # noqa: F811
    """`replica(name)`: (a segmentation process taking part in the slots, a stub of the tenant on it, its port)."""

    def make(name: str):
        port = free_port()
        address = f"127.0.0.1:{port}"
        process = service_processes(
            "matcha.segmentation",
            {
                **process_environment,
                "MATCHA_LISTEN_ADDRESS": address,
                "MATCHA_SEGMENTATION_REPLICA_ENDPOINT": address,
                "MATCHA_SEGMENTATION_REPLICA_NAME": name,
                "MATCHA_SEGMENTATION_SLOT_LEASE_SECONDS": str(LEASE_SECONDS),
            },
            address,
        )
        stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(SimpleNamespace(port=port), tenant))
        return process, stub, port

    return make


async def test_two_replicas_count_each_event_once_through_scale_out_and_a_kill(
    replica, connect, isolated_database, tenant
):
    first, via_first, first_port = replica("first")
    await first.start()
    customers = [f"c{number:03d}" for number in range(CUSTOMERS)]
    visits = {customer: number % 6 for number, customer in enumerate(customers)}  # 0 to 5 visits each
    # Every customer exists, with one non-coffee event, before the segment is defined.
    await ingest(via_first, [pb.BehaviourEvent(**_seed(customer)) for customer in customers])
    await define_and_wait(via_first, "three")
    assert await owners(isolated_database) == {"first": SLOTS}

    events = [visit(f"{customer}-{n}", customer) for customer in customers for n in range(visits[customer])]
    half = len(events) // 2
    await ingest(via_first, events[: half // 2])

    # Scale out while events arrive through both replicas: the second takes half the slots.
    second, via_second, _ = replica("second")
    await second.start()
    sending = asyncio.gather(
        ingest(via_first, events[half // 2 : half]),
        ingest(via_second, events[half:]),
    )
    await eventually(lambda: _balanced(isolated_database))
    totals = await sending
    # Every event again, through the other replica: each is a duplicate, counted once.
    again = await ingest(via_second, events[: half // 2])
    assert again.accepted == 0 and again.duplicates == half // 2
    assert sum(total.accepted for total in totals) == len(events) - half // 2

    expected = {customer for customer, count in visits.items() if count == 3}
    assert await eventually(lambda: _equal(members(via_first, "three"), expected))
    assert await members(via_second, "three") == expected
    await define_and_wait(via_second, "three-again")  # a full evaluation of the stored events, over both replicas
    assert await members(via_first, "three-again") == expected

    # Properties stored through one replica are decided by the replica counting each customer's events.
    await via_first.IngestCustomers(pb.IngestCustomersRequest(customers=[_customer(c, "silver") for c in customers]))
    await define_and_wait(via_first, "gold-three", gold=True)
    assert await members(via_first, "gold-three") == set()
    await via_first.IngestCustomers(pb.IngestCustomersRequest(customers=[_customer(c, "gold") for c in expected]))
    assert await eventually(lambda: _equal(members(via_second, "gold-three"), expected))
    assert {_owned_by_first(slot_of(customer)) for customer in expected} == {True, False}

    # A client cannot store events of a slot through a replica that does not own it.
    partition = segmentation_pb2_grpc.SegmentationPartitionServiceStub(
        connect(SimpleNamespace(port=first_port), tenant)
    )
    elsewhere = next(customer for customer in customers if not _owned_by_first(slot_of(customer)))
    with pytest.raises(grpc.aio.AioRpcError) as moved:
        await partition.ApplyEvents(pb.ApplyEventsRequest(events=[visit("sneaked", elsewhere)]))
    assert moved.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(moved.value).reason == SLOT_MOVED
    assert await _stored(isolated_database, "sneaked") == 0

    # The second replica dies without giving its slots back: the first takes them when their leases expire,
    # and a fourth visit takes the three-visit customers out, a third brings the two-visit ones in.
    await second.kill()
    await eventually(lambda: _all_owned_by(isolated_database, "first"))
    more = [visit(f"{customer}-more", customer) for customer in customers if visits[customer] in (2, 3)]
    await ingest(via_first, more)
    moved_on = {customer for customer, count in visits.items() if count == 2}
    assert await eventually(lambda: _equal(members(via_first, "three"), moved_on))
    await define_and_wait(via_first, "three-after")
    assert await members(via_first, "three-after") == moved_on


async def test_an_owner_killed_in_the_middle_of_a_stream_loses_none_of_its_events(replica, isolated_database):
    """Parts of the stream's messages are on their way to the second replica when it dies: the first retries them
    until it owns their slots, and every event is counted once."""
    first, via_first, _ = replica("first")
    second, _, _ = replica("second")
    await asyncio.gather(first.start(), second.start())
    customers = [f"c{number:03d}" for number in range(CUSTOMERS)]
    visits = {customer: number % 6 for number, customer in enumerate(customers)}
    await ingest(via_first, [pb.BehaviourEvent(**_seed(customer)) for customer in customers])
    await define_and_wait(via_first, "three")
    await eventually(lambda: _balanced(isolated_database))
    events = [visit(f"{customer}-{n}", customer) for customer in customers for n in range(visits[customer])]

    async def slowly():
        for start in range(0, len(events), 10):
            yield pb.IngestEventsRequest(events=events[start : start + 10], default_policy=POLICY)
            await asyncio.sleep(0.05)

    async def send() -> pb.IngestEventsResponse:
        return await via_first.IngestEvents(slowly(), timeout=120)

    sending = asyncio.create_task(send())
    await asyncio.sleep(1.0)  # about a third of the messages sent
    await second.kill()
    assert (await sending).accepted == len(events)
    assert await _all_owned_by(isolated_database, "first")
    expected = {customer for customer, count in visits.items() if count == 3}
    assert await eventually(lambda: _equal(members(via_first, "three"), expected))
    await define_and_wait(via_first, "three-again")
    assert await members(via_first, "three-again") == expected


def _seed(customer: str) -> dict:
    at = timestamp_pb2.Timestamp()
    at.FromDatetime(datetime.now(UTC))
    return {"id": f"{customer}-seed", "customer_id": customer, "type": pb.EVENT_TYPE_CLICK, "time": at}


def _customer(customer: str, tier: str) -> pb.Customer:
    attributes = struct_pb2.Struct()
    attributes.update({"tier": tier})
    return pb.Customer(id=customer, attributes=attributes, policy=POLICY)


def _owned_by_first(slot: int) -> bool:
    # The first replica keeps the lower slots: the one taking part gives back the highest of its surplus.
    return slot < SLOTS // 2


async def _equal(found, expected: set[str]) -> bool:
    return await found == expected


async def _balanced(database_url: str) -> bool:
    return await owners(database_url) == {"first": SLOTS // 2, "second": SLOTS // 2}


async def _all_owned_by(database_url: str, name: str) -> bool:
    return await owners(database_url) == {name: SLOTS}


async def _stored(database_url: str, event_id: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval("SELECT count(*) FROM segmentation_events WHERE id = $1", event_id)
    finally:
        await connection.close()
