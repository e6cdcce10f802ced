"""A listening watch under load, through the real service and PostgreSQL.

`test_a_watch_keeps_up`: posts pushed with IngestPosts at ten times 100,000 posts a day (11.6 posts/s) into
a watch of 10-second windows, a burst of posts on a new topic in one window; measured: how long after a
window's end its report is stored (close latency), the delay from each post's arrival to its window's
report, the latency of the alerts from the window's close (as stored and as received on a WatchAlerts
stream), then how fast the service ingests and analyses (embeds and scores) a backlog of 5,000 posts.

`test_report_cost_at_a_day_scale`: the report of one window of a watch at 100,000 posts a day with hourly
windows and a 14-hour look-back (58,333 posts clustered per report), the posts already analysed (synthetic
clustered embeddings written to the store, so that only the report is timed).
"""

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from matcha.classification import datasets
from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc

pytestmark = pytest.mark.bench

POSTS_PER_DAY = 100_000
SPEED_UP = 10
RATE = POSTS_PER_DAY / 86_400 * SPEED_UP
WINDOW_SECONDS = 10
WINDOWS = 8
BURST_WINDOW = 5
BACKLOG = 5_000
BURST = [
    "Oat milk recall: cartons pulled from shelves after sour taste reports",
    "Supermarket recalls oat milk over contamination fears",
    "Oat milk maker apologises as the recall widens to more stores",
    "Shoppers asked to return recalled oat milk cartons for a refund",
    "Cafes stop serving oat milk during the carton recall",
    "Food safety agency investigates the oat milk recall",
]


def texts() -> list[str]:
    pool = [item.text for item in datasets.rotten_tomatoes()] + [item.text for item in datasets.guardian_headlines()]
    return [text for text in pool if 20 <= len(text) <= 400]


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def seconds(value: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=value))
    return message


async def eventually(condition, within: float, every: float = 0.5):
    """Awaits `condition()` until it returns something true, and returns that."""
    async with asyncio.timeout(within):
        while True:
            result = await condition()
            if result:
                return result
            await asyncio.sleep(every)


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else float("nan")


@pytest.fixture
async def server(postgres_url, state_dir, serve, local_encoder):
    settings = ClassificationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as running:
        yield running


async def test_a_watch_keeps_up(server, connect, tenant, postgres_url):
    stub = classification_pb2_grpc.ClassificationServiceStub(connect(server, tenant, purpose="listening"))
    pool = texts()
    created = await stub.CreateWatch(
        pb.CreateWatchRequest(
            watch=pb.Watch(
                name="load",
                sources=[pb.WatchSource(name="api", push=pb.PushSource())],
                window=seconds(WINDOW_SECONDS),
                look_back_windows=6,
                tracked_topics=[pb.TrackedTopic(name="film", terms=["film", "movie"])],
            )
        )
    )
    first_end = created.watch.next_window_end.ToDatetime(tzinfo=UTC)
    received: list[tuple[pb.WatchAlert, datetime]] = []

    async def follow():
        async for reply in stub.WatchAlerts(pb.WatchAlertsRequest(watch="load")):
            received.append((reply.alert, datetime.now(UTC)))

    follower = asyncio.create_task(follow())
    await asyncio.sleep(max(0.0, (first_end - datetime.now(UTC)).total_seconds()))
    # Windows from first_end on: a batch every 0.5 s, each post stamped with its arrival.
    arrivals: dict[str, datetime] = {}
    end_of_load = first_end + timedelta(seconds=WINDOW_SECONDS * WINDOWS)
    sent, tick = 0, 0.5
    burst_start = first_end + timedelta(seconds=WINDOW_SECONDS * (BURST_WINDOW - 1))
    burst_sent = False
    while (now := datetime.now(UTC)) < end_of_load:
        due = int((now - first_end).total_seconds() * RATE) - sent
        batch = []
        for _ in range(max(due, 0)):
            batch.append(pb.WatchPost(id=f"p{sent}", text=pool[sent % len(pool)], time=stamp(now)))
            sent += 1
        if not burst_sent and now >= burst_start + timedelta(seconds=2):
            batch += [
                pb.WatchPost(
                    id=f"burst-{index}", text=f"{BURST[index % len(BURST)]} ({index // len(BURST)})", time=stamp(now)
                )
                for index in range(60)
            ]
            burst_sent = True
        if batch:
            await stub.IngestPosts(pb.IngestPostsRequest(watch="load", posts=batch))
            arrived = datetime.now(UTC)
            for post in batch:
                arrivals[post.id] = arrived
        await asyncio.sleep(tick)
    last_end = end_of_load
    async with asyncio.timeout(120):
        while True:
            reports = (await stub.ListWatchReports(pb.ListWatchReportsRequest(watch="load", page_size=100))).reports
            if reports and reports[0].window_end.ToDatetime(tzinfo=UTC) >= last_end:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    follower.cancel()

    closes = {}
    for report in reports:
        end = report.window_end.ToDatetime(tzinfo=UTC)
        if first_end < end <= last_end:
            closes[end] = (report.close_time.ToDatetime(tzinfo=UTC), report.window_post_count)
    close_latency = [(closed - end).total_seconds() for end, (closed, _) in sorted(closes.items())]
    delays = []
    for arrived in arrivals.values():
        end = first_end + timedelta(seconds=WINDOW_SECONDS) * (
            int((arrived - first_end).total_seconds() // WINDOW_SECONDS) + 1
        )
        if end in closes:
            delays.append((closes[end][0] - arrived).total_seconds())
    stored_latency = [
        (alert.create_time.ToDatetime(tzinfo=UTC) - alert.window_end.ToDatetime(tzinfo=UTC)).total_seconds()
        for alert, _ in received
    ]
    seen_latency = [(at - alert.window_end.ToDatetime(tzinfo=UTC)).total_seconds() for alert, at in received]
    burst_alerts = [alert for alert, _ in received if {"oat", "milk", "recall"} & set(alert.topic.terms)]

    # Backlog: 5,000 posts pushed as fast as the client can, then analysed by the watch's owner.
    backlog = pb.Watch(
        name="backlog",
        sources=[pb.WatchSource(name="api", push=pb.PushSource())],
        window=seconds(3600),
        look_back_windows=3,
    )
    await stub.CreateWatch(pb.CreateWatchRequest(watch=backlog))
    now = datetime.now(UTC)
    started = time.perf_counter()
    for offset in range(0, BACKLOG, 500):
        batch = [
            pb.WatchPost(id=f"b{index}", text=pool[(index * 7) % len(pool)], time=stamp(now))
            for index in range(offset, offset + 500)
        ]
        await stub.IngestPosts(pb.IngestPostsRequest(watch="backlog", posts=batch))
    ingest_seconds = time.perf_counter() - started
    connection = await asyncpg.connect(postgres_url)
    try:

        async def analysed():
            return not await connection.fetchval(
                """SELECT count(*) FROM classification_watch_posts
                   WHERE tenant = $1 AND watch = 'backlog' AND embedding IS NULL""",
                tenant,
            )

        await eventually(analysed, 900)
    finally:
        await connection.close()
    analysis_seconds = time.perf_counter() - started

    print(f"\nWatch of {WINDOW_SECONDS}-second windows at {RATE:.1f} posts/s ({SPEED_UP}x 100,000 posts a day):")
    print(f"  {len(arrivals)} posts in {len(closes)} windows: {[count for _, count in sorted(closes.values())]}")
    print(f"  close latency (report stored after the window's end), s: {[round(v, 2) for v in close_latency]}")
    print(
        f"  post arrival to its window's report: median {statistics.median(delays):.1f} s, "
        f"p95 {percentile(delays, 0.95):.1f} s, max {max(delays):.1f} s"
    )
    print(
        f"  alerts: {len(received)}; from the window's close to stored: max {max(stored_latency):.2f} s; "
        f"to received on the stream: max {max(seen_latency):.2f} s; burst alerted: {bool(burst_alerts)}"
    )
    print(
        f"  backlog of {BACKLOG}: ingested in {ingest_seconds:.1f} s ({BACKLOG / ingest_seconds:.0f} posts/s), "
        f"analysed in {analysis_seconds:.1f} s ({BACKLOG / analysis_seconds:.0f} posts/s, "
        f"{BACKLOG / analysis_seconds * 86_400:,.0f} posts a day)"
    )
    assert len(closes) == WINDOWS
    assert burst_alerts
    assert max(stored_latency) <= 5.0 and max(seen_latency) <= 5.0
    assert BACKLOG / analysis_seconds * 86_400 >= POSTS_PER_DAY


async def test_report_cost_at_a_day_scale(server, connect, tenant, postgres_url):
    stub = classification_pb2_grpc.ClassificationServiceStub(connect(server, tenant, purpose="listening"))
    window, look_back = timedelta(hours=1), 14
    count = POSTS_PER_DAY * look_back // 24
    now = datetime.now(UTC)
    # The window holding now ends in 40 s: time enough to write the posts.
    start = now + timedelta(seconds=40) - window
    await stub.CreateWatch(
        pb.CreateWatchRequest(
            watch=pb.Watch(
                name="day",
                sources=[pb.WatchSource(name="api", push=pb.PushSource())],
                window=seconds(window.total_seconds()),
                look_back_windows=look_back,
                start_time=stamp(start),
                tracked_topics=[pb.TrackedTopic(name="film", terms=["film", "movie"])],
            )
        )
    )
    end = start + window
    pool = texts()
    generator = np.random.default_rng(0)
    centres = generator.normal(size=(60, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic = generator.integers(0, 60, size=count)
    vectors = centres[topic] + generator.normal(scale=0.05, size=(count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    span = (window * look_back).total_seconds()
    times = [end - timedelta(seconds=span * (index + 0.5) / count) for index in range(count)]
    sentiments = generator.choice(["negative", "neutral", "positive"], size=count)
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.copy_records_to_table(
            "classification_watch_posts",
            columns=[
                "tenant",
                "watch",
                "post_id",
                "text",
                "published_at",
                "source",
                "data_class",
                "consented_purposes",
                "embedding",
                "sentiment",
            ],
            records=[
                (
                    tenant,
                    "day",
                    f"d{index}-{uuid.uuid4().hex[:6]}",
                    pool[(index * 13) % len(pool)],
                    times[index],
                    f"s{index % 50}",
                    2,
                    ["listening"],
                    vectors[index].tobytes(),
                    str(sentiments[index]),
                )
                for index in range(count)
            ],
        )
    finally:
        await connection.close()

    async def reported():
        return (await stub.ListWatchReports(pb.ListWatchReportsRequest(watch="day"))).reports

    report = (await eventually(reported, 900))[0]
    latency = (report.close_time.ToDatetime(tzinfo=UTC) - end).total_seconds()
    print(f"\nReport of a watch at {POSTS_PER_DAY:,} posts a day, 1-hour windows, 14-hour look-back:")
    print(
        f"  {report.signals.post_count:,} posts clustered, {len(report.signals.topics)} topics; "
        f"report stored {latency:.1f} s after the window's end"
    )
    assert report.signals.post_count == count
