"""An events message racing the erasure of one of its customers: erased between the read of the message's
customers and their store, the customer gets no event (the events' foreign key is what checks it), and the
message is all or nothing."""

from datetime import UTC, datetime

import asyncpg

from matcha.segmentation.customer_store import CustomerStore
from matcha.segmentation.v1 import segmentation_pb2 as pb
from tests.support import refused

from .conftest import POLICY, timestamp

AT = datetime(2026, 3, 1, tzinfo=UTC)


def visit(event_id: str, customer: str) -> pb.BehaviourEvent:
    return pb.BehaviourEvent(id=event_id, customer_id=customer, type=pb.EVENT_TYPE_VISIT, time=timestamp(AT))


async def test_a_customer_erased_while_its_events_are_stored_gets_none_of_them(
    stub_for, tenant, postgres_url, monkeypatch
):
    stub = stub_for(tenant)
    customers = [pb.Customer(id="kept", policy=POLICY), pb.Customer(id="gone", policy=POLICY)]
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=customers))
    read = CustomerStore.event_customers
    erased: list[str] = []

    async def read_then_erase(self, connection, of_tenant, ids, *wanted):
        found = await read(self, connection, of_tenant, ids, *wanted)
        if of_tenant == tenant and not erased:  # the erasure commits between the read and the store
            erased.append(
                await connection.fetchval("DELETE FROM segmentation_customers WHERE id = 'gone' RETURNING id")
            )
        return found

    monkeypatch.setattr(CustomerStore, "event_customers", read_then_erase)

    async def messages():
        yield pb.IngestEventsRequest(events=[visit("e1", "kept"), visit("e2", "gone")])

    # Read again, "gone" is unknown and the stream names no default policy: the whole message is refused.
    details = await refused(stub.IngestEvents(messages()))
    assert erased == ["gone"]
    assert list(details.field_violations) == ["events[1].customer_id"]

    assert await stored_events(postgres_url, tenant) == []  # no orphan of the erased customer, nothing of the rest

    # With a default policy, the message is taken as arriving after the erasure: "gone" is a new customer.
    async def with_policy():
        yield pb.IngestEventsRequest(events=[visit("e1", "kept"), visit("e2", "gone")], default_policy=POLICY)

    totals = await stub.IngestEvents(with_policy())
    assert (totals.accepted, totals.customers_created) == (2, 1)
    assert await stored_events(postgres_url, tenant) == [("e1", "kept"), ("e2", "gone")]


async def stored_events(postgres_url: str, tenant: str) -> list[tuple[str, str | None]]:
    """The tenant's stored events with their customer's id (None for an event whose customer is gone)."""
    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch(
            """SELECT e.id, c.id AS customer FROM segmentation_events e
               LEFT JOIN segmentation_customers c ON c.key = e.customer_key WHERE e.tenant = $1 ORDER BY e.id""",
            tenant,
        )
    finally:
        await connection.close()
    return [(row["id"], row["customer"]) for row in rows]
