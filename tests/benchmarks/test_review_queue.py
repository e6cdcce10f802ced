"""Review service throughput and queue latency against raw PostgreSQL, in the same run.

Submit and decide: 10,000 items submitted then approved through the service (16 concurrent
clients), in interleaved rounds with the same rows written by raw asyncpg transactions (item,
version and event; then decision, status and event) on a pool of the same size. Reported as
items/s and as the service's ratio to the raw writes.

List: p50 latency of List (first pages and later pages, with and without filters) with
100,000 items stored for the tenant; target at most 20 ms, next to the raw SQL of the same page.
"""

import asyncio
import hashlib
import statistics
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc

pytestmark = pytest.mark.bench

ITEMS, ROUNDS, CLIENTS = 10_000, 2, 16
STORED, LIST_CALLS = 100_000, 200
CONTENT = "Our new walking shoes are here. Try them in store this weekend and feel the difference.\n" * 4


@pytest.fixture
async def bench_database(postgres_url) -> str:
    name = f"review_bench_{uuid.uuid4().hex[:8]}"
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


@pytest.fixture
async def review_bench(bench_database, state_dir, serve):
    settings = ReviewSettings(
        database_url=bench_database,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        database_pool_size=CLIENTS,
    )
    service = assemble_review_service(settings)
    async with serve(service.definition, settings) as server:
        yield server, bench_database


async def spread(count: int, work) -> float:
    """Runs work(index) for every index over CLIENTS concurrent workers; returns items/s."""

    async def worker(offset: int) -> None:
        for index in range(offset, count, CLIENTS):
            await work(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker(offset) for offset in range(CLIENTS)))
    return count / (time.perf_counter() - started)


async def raw_submit(pool: asyncpg.Pool, tenant: str, count: int) -> tuple[float, list[uuid.UUID]]:
    ids = [uuid.uuid4() for _ in range(count)]
    digest = hashlib.sha256(b"Spring\0" + CONTENT.encode()).hexdigest()

    async def submit(index: int) -> None:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(
                """INSERT INTO review_items (id, tenant, status, version, format, channel, target, audience,
                       provenance, flags, priority, due_at, four_eyes, submitter, data_class, purpose)
                   VALUES ($1, $2, 'PENDING', 1, 'PLAIN_TEXT', 'EMAIL', '', '{}', '{}', '[]', 2,
                       now() + interval '3 days', false, 'bench', 2, 'campaign')""",
                ids[index],
                tenant,
            )
            await connection.execute(
                """INSERT INTO review_versions (item_id, number, title, content, content_sha256, origin, author,
                       provenance, comment, diff)
                   VALUES ($1, 1, 'Spring', $2, $3, 'AI_DRAFT', 'bench', '{}', '', '')""",
                ids[index],
                CONTENT,
                digest,
            )
            await connection.execute(
                """INSERT INTO review_events (tenant, item_id, type, status, version, actor)
                   VALUES ($1, $2, 'SUBMITTED', 'PENDING', 1, 'bench')""",
                tenant,
                ids[index],
            )

    return await spread(count, submit), ids


async def raw_decide(pool: asyncpg.Pool, tenant: str, ids: list[uuid.UUID]) -> float:
    async def decide(index: int) -> None:
        async with pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT status, version FROM review_items WHERE tenant = $1 AND id = $2 FOR UPDATE", tenant, ids[index]
            )
            assert row["status"] == "PENDING"
            decision = await connection.fetchval(
                """INSERT INTO review_decisions (item_id, outcome, comment, reviewer, role, version, content_sha256)
                   VALUES ($1, 'APPROVE', '', 'rita', 'reviewer', 1, 'x') RETURNING id""",
                ids[index],
            )
            await connection.execute(
                "UPDATE review_items SET status = 'APPROVED', approved_version = 1, updated_at = now() WHERE id = $1",
                ids[index],
            )
            await connection.execute(
                """INSERT INTO review_events (tenant, item_id, type, status, version, actor, decision_id)
                   VALUES ($1, $2, 'DECIDED', 'APPROVED', 1, 'rita', $3)""",
                tenant,
                ids[index],
                decision,
            )

    return await spread(len(ids), decide)


async def service_submit(stub, count: int) -> tuple[float, list[review_pb2.ReviewItem]]:
    items: list[review_pb2.ReviewItem | None] = [None] * count

    async def submit(index: int) -> None:
        reply = await stub.Submit(
            review_pb2.SubmitRequest(title="Spring", content=CONTENT, channel=review_pb2.CHANNEL_EMAIL)
        )
        items[index] = reply.item

    return await spread(count, submit), items


async def service_decide(stub, items: list[review_pb2.ReviewItem]) -> float:
    async def decide(index: int) -> None:
        reply = await stub.Decide(
            review_pb2.DecideRequest(item_id=items[index].id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
        )
        assert reply.item.status == review_pb2.REVIEW_STATUS_APPROVED

    return await spread(len(items), decide)


async def test_submit_and_decide_throughput(review_bench, connect, tenant):
    server, database_url = review_bench
    writer = review_pb2_grpc.ReviewServiceStub(connect(server, tenant, subject="planner"))
    reviewer = review_pb2_grpc.ReviewServiceStub(connect(server, tenant, roles=("reviewer",), subject="rita"))
    raw_tenant = f"{tenant}-raw"
    pool = await asyncpg.create_pool(database_url, min_size=CLIENTS, max_size=CLIENTS)
    try:
        await service_submit(writer, 200)  # warm-up: connections, plans
        per_round = ITEMS // ROUNDS
        raw_submits, raw_decides, submits, decides = [], [], [], []
        for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
            rate, ids = await raw_submit(pool, raw_tenant, per_round)
            raw_submits.append(rate)
            raw_decides.append(await raw_decide(pool, raw_tenant, ids))
            rate, items = await service_submit(writer, per_round)
            submits.append(rate)
            decides.append(await service_decide(reviewer, items))
    finally:
        await pool.close()
    submit_rate, decide_rate = statistics.median(submits), statistics.median(decides)
    raw_submit_rate, raw_decide_rate = statistics.median(raw_submits), statistics.median(raw_decides)
    print(
        f"\nreview throughput ({ITEMS} items in {ROUNDS} interleaved rounds, {CLIENTS} clients, median):"
        f"\n  submit: service {submit_rate:.0f} items/s, raw SQL {raw_submit_rate:.0f} items/s,"
        f" ratio {submit_rate / raw_submit_rate:.2f}"
        f"\n  decide: service {decide_rate:.0f} items/s, raw SQL {raw_decide_rate:.0f} items/s,"
        f" ratio {decide_rate / raw_decide_rate:.2f}"
    )
    listed = await reviewer.List(review_pb2.ListRequest(statuses=[review_pb2.REVIEW_STATUS_APPROVED], page_size=1))
    assert listed.items and listed.next_page_token


async def seed(database_url: str, tenant: str, count: int) -> None:
    """Bulk-loads `count` items with their first version: statuses, channels, segments and priorities vary."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """INSERT INTO review_items (id, tenant, status, version, format, channel, target, audience, provenance,
                   flags, priority, due_at, four_eyes, submitter, data_class, purpose)
               SELECT md5($1 || g)::uuid, $1, (ARRAY['PENDING', 'APPROVED', 'REJECTED', 'REVISED'])[1 + g % 4], 1,
                   'PLAIN_TEXT', (ARRAY['EMAIL', 'SOCIAL_POST', 'AD'])[1 + g % 3], '',
                   jsonb_build_object('segment_id', 's-' || (g % 50)), '{}', '[]', 1 + g % 4,
                   now() + make_interval(secs => g * 30), false, 'seed', 2, 'campaign'
               FROM generate_series(1, $2) AS g""",
            tenant,
            count,
        )
        await connection.execute(
            """INSERT INTO review_versions (item_id, number, title, content, content_sha256, origin, author,
                   provenance, comment, diff)
               SELECT id, 1, 'Spring', $2, $3, 'AI_DRAFT', 'seed', '{}', '', ''
               FROM review_items WHERE tenant = $1""",
            tenant,
            CONTENT,
            hashlib.sha256(b"Spring\0" + CONTENT.encode()).hexdigest(),
        )
        await connection.execute("ANALYZE review_items")
        await connection.execute("ANALYZE review_versions")
    finally:
        await connection.close()


RAW_PAGE = """SELECT i.*, v.title, v.content, v.content_sha256 FROM review_items i
    JOIN review_versions v ON v.item_id = i.id AND v.number = i.version
    WHERE i.tenant = $1 AND ($2::text[] IS NULL OR i.status = ANY($2::text[]))
    ORDER BY i.due_at, i.priority DESC, i.id LIMIT 51"""


async def test_list_latency_with_100k_items(review_bench, connect, tenant):
    server, database_url = review_bench
    await seed(database_url, tenant, STORED)
    stub = review_pb2_grpc.ReviewServiceStub(connect(server, tenant, roles=("reviewer",)))

    first = await stub.List(review_pb2.ListRequest())
    later_token = first.next_page_token
    for _ in range(20):  # a page deep in the queue
        later_token = (await stub.List(review_pb2.ListRequest(page_token=later_token))).next_page_token
    requests = [
        review_pb2.ListRequest(),
        review_pb2.ListRequest(statuses=[review_pb2.REVIEW_STATUS_PENDING, review_pb2.REVIEW_STATUS_REVISED]),
        review_pb2.ListRequest(channel=review_pb2.CHANNEL_SOCIAL_POST, segment_id="s-7"),
        review_pb2.ListRequest(page_token=later_token),
    ]
    raw_statuses = [None, ["PENDING", "REVISED"]]
    connection = await asyncpg.connect(database_url)
    service_ms, raw_ms = [], []
    try:
        for call in range(LIST_CALLS):  # interleaved
            started = time.perf_counter()
            reply = await stub.List(requests[call % len(requests)])
            service_ms.append((time.perf_counter() - started) * 1000)
            assert len(reply.items) == 50
            started = time.perf_counter()
            rows = await connection.fetch(RAW_PAGE, tenant, raw_statuses[call % 2])
            raw_ms.append((time.perf_counter() - started) * 1000)
            assert len(rows) == 51
    finally:
        await connection.close()
    p50, raw_p50 = statistics.median(service_ms), statistics.median(raw_ms)
    p95 = statistics.quantiles(service_ms, n=20)[-1]
    print(
        f"\nreview List with {STORED} items ({LIST_CALLS} calls, pages of 50, filters and deep pages mixed):"
        f"\n  service p50 {p50:.1f} ms, p95 {p95:.1f} ms; raw SQL p50 {raw_p50:.1f} ms; ratio {p50 / raw_p50:.2f}"
    )
    assert p50 <= 20.0
