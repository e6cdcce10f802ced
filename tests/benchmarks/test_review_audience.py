"""Publishing to a 1,000,000-member segment: the audience computed and written with the publication, through gRPC,
against raw COPYs of the member ids, in the same run.

Setup (untimed): 1,000,000 customers COPYed into segmentation with one purchase each (the running aggregates the
service's ingestion keeps) and consent to `campaign`, 10,000 of them opted out of e-mail; a rule segmentation puts
them all in one segment; then 10,000 withdraw their consent.

Segmentation runs as its own process, as deployed (its Python work and the review service's then use the two cores
side by side); the review service and the clients run in the test's process.

Timed: `ReviewService.Publish` of an approved message naming that segment as its audience, the publisher's call from
request to reply: segmentation ranks and sorts the members in one COPY out of PostgreSQL and streams the reachable
ids (10,000 per message); the review service checks their order, applies the channel's frequency cap, COPYs them as
they arrive, hashes them and commits the publication with its outbox row. Three publications, each the first on its
channel (e-mail, text message, push), so each pays the same; then a second e-mail to the same segment, whose
frequency cap reads the 980,000 contacts of the first; and segmentation's stream alone, read by a client.

Baselines, three times each: asyncpg's COPY of the 980,000 ids (as records) into an unindexed table of the
audience's two columns; and the same ids moved by COPY alone, out of segmentation's tables (joined, filtered and
sorted) and into that table.

Target: at most 3 s per publication, and at most 1.5x the raw COPY (medians).
"""

import asyncio
import io
import os
import statistics
import sys
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.faults.conftest import wait_until_serving
from tests.review.conftest import draft, eventually
from tests.support import free_port

pytestmark = pytest.mark.bench

MEMBERS, WITHOUT_CONSENT, OPTED_OUT = 1_000_000, 10_000, 10_000
REACHABLE = MEMBERS - WITHOUT_CONSENT - OPTED_OUT
TENANT = "bench"
CHANNELS = [review_pb2.CHANNEL_EMAIL, review_pb2.CHANNEL_SMS, review_pb2.CHANNEL_PUSH]


@pytest.fixture
async def bench_database(postgres_url) -> str:
    name = f"audience_bench_{uuid.uuid4().hex[:8]}"
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


def customer_id(number: int) -> str:
    return f"customer-{number:07d}"


async def seed_customers(database_url: str) -> None:
    """One purchase each, consenting to `campaign`; every 100th from the 50th opted out of e-mail."""
    bought = datetime(2026, 3, 2, tzinfo=UTC)
    rows = [
        (
            TENANT,
            customer_id(number),
            2,
            ["campaign"],
            ["email"] if number % 100 == 50 else [],
            customer_id(number),
            1,
            20.0,
            1.0,
            bought,
            bought,
        )
        for number in range(MEMBERS)
    ]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.copy_records_to_table(
            "segmentation_customers",
            records=rows,
            columns=[
                "tenant",
                "id",
                "data_class",
                "consented_purposes",
                "opted_out_channels",
                "subject_id",
                "purchases",
                "spend",
                "quantity",
                "first_purchase_at",
                "last_purchase_at",
            ],
        )
        await connection.execute(
            "INSERT INTO segmentation_tenants (tenant, reference_time) VALUES ($1, $2)", TENANT, bought
        )
        await connection.execute("ANALYZE segmentation_customers")
    finally:
        await connection.close()


async def withdraw_consent(database_url: str) -> None:
    """Every 100th customer withdraws their consent to `campaign` after the build (a build segments only customers
    who consented): still members of the segment, no longer reachable."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """UPDATE segmentation_customers SET consented_purposes = '{listening}'
               WHERE tenant = $1 AND right(id, 2) = '00'""",
            TENANT,
        )
        # Statistics of the version's new membership table, as autovacuum would gather them shortly after a build.
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def raw_copy_seconds(database_url: str, ids: list[str]) -> float:
    """asyncpg's COPY of the ids, as records, into an unindexed table of the audience's two columns."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute('CREATE TABLE raw_members (audience_key bigint, customer_id text COLLATE "C")')
        records = [(1, member) for member in ids]
        started = time.perf_counter()
        await connection.copy_records_to_table("raw_members", records=records)
        return time.perf_counter() - started
    finally:
        await connection.execute("DROP TABLE raw_members")
        await connection.close()


async def raw_round_trip_seconds(database_url: str) -> float:
    """The same ids moved by COPY alone, no service: out of the segment's members joined to the customers who may
    be reached by e-mail, sorted, then those bytes into the unindexed table."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute('CREATE TABLE raw_members (audience_key bigint, customer_id text COLLATE "C")')
        started = time.perf_counter()
        buffer = io.BytesIO()
        await connection.copy_from_query(
            """SELECT 1, c.id FROM segmentation_memberships m JOIN segmentation_customers c ON c.key = m.customer_key
               WHERE c.tenant = $1 AND 'campaign' = ANY(c.consented_purposes)
                 AND NOT 'email' = ANY(c.opted_out_channels)
               ORDER BY c.id COLLATE "C"
            """,
            TENANT,
            output=buffer,
        )
        buffer.seek(0)
        await connection.copy_to_table("raw_members", source=buffer)
        return time.perf_counter() - started
    finally:
        await connection.execute("DROP TABLE raw_members")
        await connection.close()


@dataclass(frozen=True)
class Listening:
    port: int


@asynccontextmanager
async def segmentation_process(database_url, state_dir, key_paths, workload_key_paths, log_path):
    """Segmentation as its own process, as deployed: its work and the review service's run side by side."""
    port = free_port()
    environment = {
        "MATCHA_DATABASE_URL": database_url,
        "MATCHA_STATE_DIR": str(state_dir),
        "MATCHA_AUTH_PUBLIC_KEY_FILE": str(key_paths.public),
        "MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE": str(workload_key_paths.public),
        "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MATCHA_LOG_LEVEL": "WARNING",
    }
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "matcha.segmentation", env={**os.environ, **environment}, stdout=log, stderr=log
        )
    try:
        await wait_until_serving(f"127.0.0.1:{port}", process)
        yield Listening(port)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def test_publishing_to_a_million_member_segment(
    bench_database, state_dir, key_paths, workload_key_paths, serve, connect, tmp_path
):
    async with segmentation_process(
        bench_database, state_dir, key_paths, workload_key_paths, tmp_path / "segmentation.log"
    ) as segmentation:
        await seed_customers(bench_database)
        builder = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation, TENANT, purpose="campaign"))
        started = time.perf_counter()
        await builder.BuildSegmentation(
            seg_pb.BuildSegmentationRequest(
                name="everyone",
                rules=seg_pb.RulesConfig(
                    rules=[seg_pb.SegmentRule(id="buyers", name="Buyers", condition="frequency >= 1")]
                ),
            ),
            timeout=600,
        )
        await withdraw_consent(bench_database)
        print(f"\nsetup: rule segmentation of {MEMBERS:,} customers built in {time.perf_counter() - started:.1f} s")

        publish_dir = tmp_path / "published"
        review_settings = ReviewSettings(
            database_url=bench_database,
            state_dir=state_dir,
            listen_address="127.0.0.1:0",
            review_segmentation_address=f"127.0.0.1:{segmentation.port}",
            review_publish_dir=publish_dir,
        )
        async with serve(assemble_review_service(review_settings).definition, review_settings) as review:
            writer = review_pb2_grpc.ReviewServiceStub(connect(review, TENANT, subject="planner"))
            reviewer = review_pb2_grpc.ReviewServiceStub(connect(review, TENANT, roles=["reviewer"], subject="rita"))
            publisher = review_pb2_grpc.ReviewServiceStub(connect(review, TENANT, roles=["publisher"], subject="pat"))
            audience = review_pb2.AudienceSpec(
                segment=review_pb2.SegmentAudience(segmentation="everyone", segment_id="buyers")
            )

            async def publish(channel) -> tuple[float, review_pb2.PublishResponse]:
                item = (await writer.Submit(draft(channel=channel))).item
                decided = await reviewer.Decide(
                    review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
                )
                request = review_pb2.PublishRequest(
                    item_id=item.id, content_sha256=decided.item.approved_sha256, audience=audience
                )
                started = time.perf_counter()
                reply = await publisher.Publish(request, timeout=120)
                elapsed = time.perf_counter() - started
                # The file sink's delivery (the members read back, the document written) runs in this process once
                # the publication commits; it ends before the next publication starts, so none pays for another's.
                written = publish_dir / TENANT / f"{item.id}.json"

                async def delivered() -> bool:
                    return written.exists()

                await eventually(delivered, within_seconds=120, every_seconds=0.02)
                deliveries.append(time.perf_counter() - started)
                return elapsed, reply

            timings, deliveries = [], []
            for channel in CHANNELS:
                seconds, reply = await publish(channel)
                timings.append(seconds)
                opted_out = OPTED_OUT if channel == review_pb2.CHANNEL_EMAIL else 0
                assert reply.audience.size == MEMBERS - WITHOUT_CONSENT - opted_out
                assert reply.audience.excluded_without_consent == WITHOUT_CONSENT
                assert reply.audience.excluded_opted_out == opted_out
            second_email, reply = await publish(review_pb2.CHANNEL_EMAIL)
            assert reply.audience.size == REACHABLE and reply.audience.excluded_frequency_capped == 0

        # Segmentation's part alone: the stream read to its end by a client.
        reader = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation, TENANT, purpose="campaign"))
        stream_timings = []
        for _ in range(3):
            started = time.perf_counter()
            streamed = 0
            request = seg_pb.StreamSegmentMembersRequest(name="everyone", segment_id="buyers", channel="email")
            async for message in reader.StreamSegmentMembers(request, timeout=120):
                streamed += len(message.customer_ids)
            stream_timings.append(time.perf_counter() - started)
            assert streamed == REACHABLE

    reachable = sorted(customer_id(number) for number in range(MEMBERS) if number % 100 not in (0, 50))
    raw = [await raw_copy_seconds(bench_database, reachable) for _ in range(3)]
    round_trip = [await raw_round_trip_seconds(bench_database) for _ in range(3)]
    publish_median, raw_median = statistics.median(timings), statistics.median(raw)
    round_trip_median = statistics.median(round_trip)

    def listed(values) -> str:
        return ", ".join(f"{value:.2f}" for value in values)

    print(
        f"audience of a {MEMBERS:,}-member segment ({REACHABLE:,} reached by e-mail): Publish {listed(timings)} s "
        f"(median {publish_median:.2f} s); StreamSegmentMembers alone {listed(stream_timings)} s; raw COPY of the "
        f"ids {listed(raw)} s (median {raw_median:.2f} s, ratio {publish_median / raw_median:.2f}); raw COPY out of "
        f"the segment and in {listed(round_trip)} s (median {round_trip_median:.2f} s, ratio "
        f"{publish_median / round_trip_median:.2f}); second e-mail, its frequency cap reading {REACHABLE:,} earlier "
        f"contacts: {second_email:.2f} s; from the call to the file sink's document written: {listed(deliveries)} s"
    )
    assert publish_median <= 3.0
    assert publish_median <= 1.5 * raw_median
