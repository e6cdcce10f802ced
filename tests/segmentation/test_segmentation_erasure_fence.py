"""Erasure against the writers of the per-event tables, which have no foreign key to customers (migration
0013): an erasure removes the customer's rows from every table keyed by customer; one asked for while an
events message is stored waits for it and then takes its events too; changes and members decided before an
erasure and written after it are not written."""

import asyncio
from datetime import UTC, datetime

import asyncpg
import numpy as np
import pytest

from matcha.common.v1 import common_pb2
from matcha.runtime.database import Database, load_migrations
from matcha.segmentation.condition_store import ConditionStore
from matcha.segmentation.customer_store import CustomerStore
from matcha.segmentation.records import ConditionChange
from matcha.segmentation.v1 import segmentation_pb2 as pb

from .conftest import POLICY, transactions
from .test_segmentation_conditions import event, ingest, ready, within

VISITED = pb.Condition(event=pb.EventCondition(type=pb.EVENT_TYPE_VISIT, within=within(1), min_count=1))
ERASED = common_pb2.RecordPolicy(
    data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"], subject_id="subject-gone"
)


async def test_an_erasure_leaves_no_row_of_the_customer_in_any_table_keyed_by_customer(stub_for, tenant, postgres_url):
    stub = stub_for(tenant)
    customers = [pb.Customer(id="kept", policy=POLICY), pb.Customer(id="gone", policy=ERASED)]
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=customers))
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="browsers", condition=VISITED))
    await ready(stub, "browsers")
    at = datetime.now(UTC)  # counted: not older than the late tolerance on the service's clock
    for customer in ("kept", "gone"):  # events, a purchase, a transaction, members and changes for each
        await ingest(
            stub,
            [
                event(f"{customer}-1", customer, pb.EVENT_TYPE_VISIT, at, item="coffee"),
                event(f"{customer}-2", customer, pb.EVENT_TYPE_VISIT, at, item="coffee"),
                event(f"{customer}-3", customer, pb.EVENT_TYPE_PURCHASE, at, item="tea", amount=4.0),
            ],
        )
        await stub.IngestTransactions(
            pb.IngestTransactionsRequest(transactions=transactions([(f"{customer}-t", customer, at, 9.0, 1.0)]))
        )
    held = await rows_by_table(postgres_url, tenant)
    per_event = {"segmentation_events", "segmentation_transactions", "segmentation_purchases"}
    per_event |= {"segmentation_condition_members", "segmentation_changes"}
    assert per_event <= {table for table, owners in held.items() if "gone" in owners}

    admin = stub_for(tenant, roles=["admin"])
    erased = await admin.EraseSubject(pb.EraseSubjectRequest(subject_id="subject-gone"))
    assert (erased.erased_customers, erased.erased_transactions, erased.erased_events) == (1, 2, 3)
    after = await rows_by_table(postgres_url, tenant)
    assert {table: owners for table, owners in after.items() if "gone" in owners or None in owners} == {}
    assert {table for table, owners in after.items() if "kept" in owners} >= per_event


async def test_an_erasure_asked_for_while_a_message_is_stored_waits_for_it_then_takes_its_events(
    stub_for, tenant, postgres_url, monkeypatch
):
    stub = stub_for(tenant)
    admin = stub_for(tenant, roles=["admin"])
    customers = [pb.Customer(id="kept", policy=POLICY), pb.Customer(id="gone", policy=ERASED)]
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=customers))
    read = CustomerStore.event_customers
    erasing: list[asyncio.Future] = []

    async def read_then_erase(self, connection, of_tenant, ids, *wanted):
        found = await read(self, connection, of_tenant, ids, *wanted)
        if of_tenant == tenant and not erasing:  # the erasure is asked for between the read and the store
            erasing.append(asyncio.ensure_future(admin.EraseSubject(pb.EraseSubjectRequest(subject_id="subject-gone"))))
            await asyncio.sleep(0.5)  # long enough for it to commit, were it not held off
        return found

    monkeypatch.setattr(CustomerStore, "event_customers", read_then_erase)
    at = datetime.now(UTC)
    visits = [event("e1", "kept", pb.EVENT_TYPE_VISIT, at), event("e2", "gone", pb.EVENT_TYPE_VISIT, at)]
    totals = await ingest(stub, visits)
    erased = await erasing[0]

    assert totals.accepted == 2
    assert (erased.erased_customers, erased.erased_events) == (1, 1)  # the message's event went with it
    after = await rows_by_table(postgres_url, tenant)
    assert after["segmentation_events"] == ["kept"]  # no event of a customer that is gone


@pytest.fixture
async def stores(postgres_url):
    database = Database(postgres_url, pool_size=2)
    await database.connect(load_migrations("segmentation", "matcha.segmentation.migrations"))
    try:
        yield CustomerStore(database), ConditionStore(database)
    finally:
        await database.close()


async def test_changes_and_members_decided_before_an_erasure_are_not_written_after_it(
    stub_for, tenant, postgres_url, stores
):
    stub = stub_for(tenant)
    customers = [pb.Customer(id="kept", policy=POLICY), pb.Customer(id="gone", policy=ERASED)]
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=customers))
    await stub.DefineConditionSegment(pb.DefineConditionSegmentRequest(name="browsers", condition=VISITED))
    await ready(stub, "browsers")
    customer_store, condition_store = stores
    keys = await customer_keys(postgres_url, tenant)
    [segment] = await condition_store.latest(tenant)

    await customer_store.erase_subject(tenant, "subject-gone")
    # The live path decided both entered; a full evaluation found both members: then the erasure committed.
    entries = [ConditionChange(segment, keys[customer], True, f"{customer}-1") for customer in ("kept", "gone")]
    await condition_store.record_changes(tenant, entries)
    await condition_store.complete(tenant, segment.id, np.asarray(sorted(keys.values()), dtype=np.int64))

    after = await rows_by_table(postgres_url, tenant)
    assert after["segmentation_changes"] == ["kept"]
    assert after["segmentation_condition_members"] == ["kept"]


async def customer_keys(postgres_url: str, tenant: str) -> dict[str, int]:
    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch("SELECT id, key FROM segmentation_customers WHERE tenant = $1", tenant)
    finally:
        await connection.close()
    return {row["id"]: row["key"] for row in rows}


async def rows_by_table(postgres_url: str, tenant: str) -> dict[str, list[str | None]]:
    """For every segmentation table with a `customer_key` column, the customer id of each of the tenant's rows
    (None for a row whose customer is gone), sorted; tables found in the catalogue, so a new one is covered."""
    connection = await asyncpg.connect(postgres_url)
    try:
        tables = await connection.fetch(
            """SELECT table_name FROM information_schema.columns
               WHERE column_name = 'customer_key' AND table_name LIKE 'segmentation%'
                 AND table_name NOT LIKE 'segmentation_memberships_%' ORDER BY table_name"""
        )
        found = {}
        for (table,) in tables:
            # The tenant's rows: through the table's own tenant column, or its segment's or version's.
            scope = await tenant_scope(connection, table)
            rows = await connection.fetch(
                f"""SELECT c.id FROM {table} r LEFT JOIN segmentation_customers c ON c.key = r.customer_key
                    WHERE {scope}""",
                tenant,
            )
            found[table] = sorted((row["id"] for row in rows), key=lambda value: (value is None, value or ""))
    finally:
        await connection.close()
    return found


async def tenant_scope(connection, table: str) -> str:
    columns = {
        row["column_name"]
        for row in await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
        )
    }
    if "tenant" in columns:
        return "r.tenant = $1"
    if "segment_id" in columns:
        return "r.segment_id IN (SELECT id FROM segmentation_condition_segments WHERE tenant = $1)"
    return "r.version_id IN (SELECT id FROM segmentation_versions WHERE tenant = $1)"
