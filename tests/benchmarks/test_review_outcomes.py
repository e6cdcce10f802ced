"""Outcome ingestion through gRPC against a raw asyncpg COPY of the same rows, in the same run.

An experiment of two published variants over 100,000 customers (10% held out); 200,000 outcome events sent
through IngestOutcomes in batches of 1,000 by 8 concurrent clients, deduplication on (every event inserted
with ON CONFLICT on its id, the per-arm counters updated in the same transaction); then 20,000 of them sent
again, all duplicates. The raw baseline COPYs the same rows into an unindexed table of the same columns.
Target: at least 10,000 events/s through gRPC; counters current when the call returns.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from tests.review.conftest import draft

pytestmark = pytest.mark.bench

CUSTOMERS, EVENTS, BATCH, CLIENTS, REPEATED = 100_000, 200_000, 1_000, 8, 20_000
OUTCOMES = ["DELIVERED", "OPENED", "CLICKED", "CONVERTED"]


@pytest.fixture
async def bench_database(postgres_url) -> str:
    name = f"outcomes_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def experiment(server, connect, tenant: str) -> str:
    writer = review_pb2_grpc.ReviewServiceStub(connect(server, tenant, subject="planner"))
    reviewer = review_pb2_grpc.ReviewServiceStub(connect(server, tenant, roles=["reviewer"], subject="rita"))
    publisher = review_pb2_grpc.ReviewServiceStub(connect(server, tenant, roles=["publisher"], subject="pat"))
    variants = []
    for label in ("A", "B"):
        item = (await writer.Submit(draft(target=f"variant {label}"))).item
        approved = await reviewer.Decide(
            review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
        )
        published = await publisher.Publish(
            review_pb2.PublishRequest(item_id=item.id, content_sha256=approved.item.approved_sha256)
        )
        variants.append(review_pb2.ExperimentVariant(label=label, publication_id=published.publication.id))
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(
            name="bench", variants=variants, customer_ids=[f"c{index}" for index in range(CUSTOMERS)]
        )
    )
    return created.experiment.id


async def test_outcome_ingestion_throughput(bench_database, state_dir, serve, connect):
    settings = ReviewSettings(
        database_url=bench_database, state_dir=state_dir, listen_address="127.0.0.1:0", database_pool_size=CLIENTS
    )
    service = assemble_review_service(settings)
    tenant = "bench"
    now = datetime.now(UTC)
    async with serve(service.definition, settings) as server:
        experiment_id = await experiment(server, connect, tenant)
        rows = [
            (f"e{index}", experiment_id, f"c{(index * 7919) % CUSTOMERS}", OUTCOMES[index % 4], 0.0)
            for index in range(EVENTS)
        ]
        batches = [
            review_pb2.IngestOutcomesRequest(
                events=[
                    review_pb2.OutcomeEvent(
                        event_id=event_id,
                        experiment_id=experiment,
                        customer_id=customer,
                        type=review_pb2.OutcomeType.Value(f"OUTCOME_TYPE_{outcome}"),
                        value=12.5 if outcome == "CONVERTED" else 0.0,
                    )
                    for event_id, experiment, customer, outcome, _ in rows[start : start + BATCH]
                ]
            )
            for start in range(0, EVENTS, BATCH)
        ]
        stubs = [review_pb2_grpc.ReviewServiceStub(connect(server, tenant, roles=["operator"])) for _ in range(CLIENTS)]

        async def send(requests) -> tuple[int, int, float]:
            accepted = duplicates = 0

            async def worker(offset: int) -> None:
                nonlocal accepted, duplicates
                for request in requests[offset::CLIENTS]:
                    reply = await stubs[offset].IngestOutcomes(request)
                    accepted += reply.accepted
                    duplicates += reply.duplicates

            started = time.perf_counter()
            await asyncio.gather(*(worker(offset) for offset in range(CLIENTS)))
            return accepted, duplicates, time.perf_counter() - started

        accepted, duplicates, elapsed = await send(batches)
        assert (accepted, duplicates) == (EVENTS, 0)
        results = await stubs[0].GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
        assert sum(rate.events for arm in results.arms for rate in arm.outcomes) == EVENTS
        repeated_accepted, repeated_duplicates, repeated_elapsed = await send(batches[: REPEATED // BATCH])
        assert (repeated_accepted, repeated_duplicates) == (0, REPEATED)

        connection = await asyncpg.connect(bench_database)
        try:
            await connection.execute(
                """CREATE TABLE raw_outcomes (tenant text, event_id text, experiment_id text, customer_id text,
                       arm text, outcome text, value double precision, at timestamptz)"""
            )
            raw_rows = [(tenant, e, x, c, "A", o, v, now) for e, x, c, o, v in rows]
            started = time.perf_counter()
            await connection.copy_records_to_table("raw_outcomes", records=raw_rows)
            raw_elapsed = time.perf_counter() - started
        finally:
            await connection.close()

    grpc_rate, raw_rate = EVENTS / elapsed, EVENTS / raw_elapsed
    print(
        f"\noutcome ingestion: {grpc_rate:,.0f} events/s through gRPC ({BATCH} per call, {CLIENTS} clients, dedup on); "
        f"duplicates re-sent: {REPEATED / repeated_elapsed:,.0f} events/s; raw COPY of the same rows: "
        f"{raw_rate:,.0f} rows/s; gRPC takes {elapsed / raw_elapsed:.1f}x the COPY's time"
    )
    assert grpc_rate >= 10_000
