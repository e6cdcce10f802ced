"""Real-time paths of the segmentation service, each against a baseline in the same run.

- IngestEvents: events/s sustained with live re-assignment (a READY rule segmentation of 2,000
  customers: every event batch re-scores its customers and records the moves) against the same
  stream into a tenant without any segmentation (re-assignment off), and against PostgreSQL's floor:
  the same event rows copied into the events table, one COPY per message on one connection.
  Reported as ratios.
- IngestTransactions of the real CDNOW file (69,659 transactions) against a raw COPY of the same rows.
- Assign by feature values: p50 and p99 latency through gRPC, against bare calls on the same
  server that do no work: the same method refused by validation before any store or model access
  (token, governance and error mapping are still paid), and the server's health check.
"""

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import numpy as np
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.cli.segment import cdnow_path, cdnow_records, parse_time
from matcha.common.v1 import common_pb2
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc

pytestmark = pytest.mark.bench

CUSTOMERS, MESSAGES, EVENTS_PER_MESSAGE, ASSIGN_CALLS = 2_000, 40, 250, 400
POLICY = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
START = datetime(2024, 1, 1, tzinfo=UTC)


def stamp(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


@pytest.fixture(scope="module")
async def server(postgres_url, state_dir, serve):
    settings = SegmentationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_segmentation_service(settings), settings) as running:
        yield running


async def seeded_tenant(stub) -> None:
    rng = np.random.default_rng(5)
    transactions = [
        pb.Transaction(
            id=f"t{index}",
            customer_id=f"c{index % CUSTOMERS}",
            time=stamp(START + timedelta(days=int(rng.integers(0, 365)))),
            amount=float(rng.gamma(2.0, 20.0)),
        )
        for index in range(CUSTOMERS * 3)
    ]
    await stub.IngestTransactions(pb.IngestTransactionsRequest(transactions=transactions, default_policy=POLICY))


def event_stream(seed: int):
    rng = np.random.default_rng(seed)
    kinds = [pb.EVENT_TYPE_PURCHASE, pb.EVENT_TYPE_VISIT, pb.EVENT_TYPE_CLICK]

    async def messages():
        for message in range(MESSAGES):
            yield pb.IngestEventsRequest(
                events=[
                    pb.BehaviourEvent(
                        id=f"e{seed}-{message}-{index}",
                        customer_id=f"c{int(rng.integers(0, CUSTOMERS))}",
                        type=kinds[int(rng.integers(0, 3))],
                        time=stamp(START + timedelta(days=365, minutes=message * EVENTS_PER_MESSAGE + index)),
                        amount=float(rng.gamma(2.0, 20.0)),
                    )
                    for index in range(EVENTS_PER_MESSAGE)
                ]
            )

    return messages()


async def raw_copy_rate(url: str, tenant: str, round_number: int) -> float:
    """PostgreSQL's floor for the same stream: each message's event rows (customer keys looked up once,
    beforehand) copied into the events table, one binary COPY per message on one connection; events/s."""
    connection = await asyncpg.connect(url)
    try:
        keys = dict(await connection.fetch("SELECT id, key FROM segmentation_customers WHERE tenant = $1", tenant))
        started = time.perf_counter()
        async for message in event_stream(round_number):
            await connection.copy_records_to_table(
                "segmentation_events",
                records=[
                    (
                        tenant,
                        event.id,
                        keys[event.customer_id],
                        event.type,
                        event.time.ToDatetime(tzinfo=UTC),
                        event.item_id,
                        event.amount,
                        1.0,
                    )
                    for event in message.events
                ],
                columns=["tenant", "id", "customer_key", "type", "time", "item_id", "amount", "quantity"],
            )
        return MESSAGES * EVENTS_PER_MESSAGE / (time.perf_counter() - started)
    finally:
        await connection.close()


async def test_ingest_events_with_and_without_reassignment(server, connect, tenant, postgres_url):
    live = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, tenant))
    plain = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, f"{tenant}-plain"))
    raw = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, f"{tenant}-raw"))
    await asyncio.gather(seeded_tenant(live), seeded_tenant(plain), seeded_tenant(raw))
    await live.BuildSegmentation(pb.BuildSegmentationRequest(name="cells", rules=pb.RulesConfig()))

    rates = {"on": [], "off": [], "raw": []}
    reassigned = 0
    for round_number in range(2):  # interleaved: the machine is shared
        rates["raw"].append(await raw_copy_rate(postgres_url, f"{tenant}-raw", round_number))
        for mode, stub in (("off", plain), ("on", live)):
            started = time.perf_counter()
            reply = await stub.IngestEvents(event_stream(round_number))
            rates[mode].append(reply.accepted / (time.perf_counter() - started))
            if mode == "on":
                reassigned += reply.reassigned
            assert reply.accepted == MESSAGES * EVENTS_PER_MESSAGE and reply.duplicates == 0
    on, off, floor = (statistics.median(rates[mode]) for mode in ("on", "off", "raw"))
    print(
        f"\nSEGMENTATION_EVENTS {MESSAGES * EVENTS_PER_MESSAGE} events over {CUSTOMERS} customers: "
        f"{on:.0f} events/s with re-assignment ({reassigned} moves), {off:.0f} events/s without; "
        f"ratio on/off {on / off:.2f}; raw COPY of the same rows {floor:.0f} events/s "
        f"(ratios to it: on {on / floor:.2f}, off {off / floor:.2f})"
    )
    assert reassigned > 0


async def test_assign_latency_against_a_bare_call(server, connect, tenant):
    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, tenant))
    await seeded_tenant(stub)
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="value", kmeans=pb.KMeansConfig(k=5)))
    rng = np.random.default_rng(9)
    prospects = [
        pb.AssignRequest(
            name="value",
            features=pb.FeatureValues(
                values={
                    "recency_days": float(rng.uniform(0, 365)),
                    "frequency": float(rng.integers(1, 8)),
                    "monetary": float(rng.gamma(2.0, 20.0)),
                }
            ),
        )
        for _ in range(ASSIGN_CALLS)
    ]

    async def bare() -> None:
        try:
            await stub.Assign(pb.AssignRequest(name=""))
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    health = health_pb2_grpc.HealthStub(connect(server, tenant))
    service, baseline, probes = [], [], []
    for request in prospects:  # interleaved
        started = time.perf_counter()
        await stub.Assign(request)
        service.append(time.perf_counter() - started)
        started = time.perf_counter()
        await bare()
        baseline.append(time.perf_counter() - started)
        started = time.perf_counter()
        await health.Check(health_pb2.HealthCheckRequest())
        probes.append(time.perf_counter() - started)

    def quantiles(samples):
        ordered = sorted(samples)
        return ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99)] * 1000

    (service_p50, service_p99), (bare_p50, bare_p99) = quantiles(service), quantiles(baseline)
    health_p50, health_p99 = quantiles(probes)
    print(
        f"\nSEGMENTATION_ASSIGN {ASSIGN_CALLS} calls: Assign p50 {service_p50:.2f} ms, p99 {service_p99:.2f} ms; "
        f"refused Assign p50 {bare_p50:.2f} ms, p99 {bare_p99:.2f} ms (ratio {service_p50 / bare_p50:.2f}); "
        f"health check p50 {health_p50:.2f} ms, p99 {health_p99:.2f} ms (ratio {service_p50 / health_p50:.2f})"
    )
    assert service_p50 / bare_p50 < 5


async def test_cdnow_ingestion_against_a_raw_copy(server, connect, tenant, postgres_url):
    """The 69,659 CDNOW transactions through IngestTransactions (two calls: customers created, aggregates
    folded, statistics refreshed), against a bare COPY of the same rows into an unindexed temporary table."""
    records = list(cdnow_records(cdnow_path()))
    messages = [
        pb.Transaction(
            id=record["id"],
            customer_id=record["customer_id"],
            time=stamp(parse_time(record["time"])),
            amount=float(record["amount"]),
            quantity=float(record["quantity"]),
        )
        for record in records
    ]
    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, tenant))
    started = time.perf_counter()
    for offset in range(0, len(messages), 50_000):
        await stub.IngestTransactions(
            pb.IngestTransactionsRequest(transactions=messages[offset : offset + 50_000], default_policy=POLICY)
        )
    service_seconds = time.perf_counter() - started

    rows = [
        (
            record["id"],
            record["customer_id"],
            parse_time(record["time"]),
            float(record["amount"]),
            float(record["quantity"]),
        )
        for record in records
    ]
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "CREATE TEMPORARY TABLE raw_transactions (id text, customer_id text, time timestamptz, amount float8, "
            "quantity float8)"
        )
        started = time.perf_counter()
        await connection.copy_records_to_table("raw_transactions", records=rows)
        raw_seconds = time.perf_counter() - started
    finally:
        await connection.close()
    customers = await stub.GetCustomer(pb.GetCustomerRequest(customer_id="00001"))
    assert customers.features["frequency"] >= 1
    print(
        f"\nSEGMENTATION_INGEST {len(messages)} CDNOW transactions: service {service_seconds:.2f}s "
        f"({len(messages) / service_seconds:.0f}/s), raw COPY {raw_seconds:.2f}s, "
        f"ratio {service_seconds / raw_seconds:.1f}"
    )
    assert service_seconds < 30
