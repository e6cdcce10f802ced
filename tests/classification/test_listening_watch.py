"""Listening watches against the real service and PostgreSQL: posts pushed, windows closed on schedule, reports
stored, alerts streamed and POSTed to a webhook, a drop folder and feeds read by the service, bad input refused."""

import asyncio
import hashlib
import hmac
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
import uvicorn
from aiohttp import web
from click.testing import CliRunner
from opentelemetry.sdk.trace import TracerProvider

from matcha.classification.app import SERVICE_NAME, build_classification_service
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.cli.classify import listen
from matcha.common.v1 import common_pb2
from matcha.gateway.app import build_gateway
from matcha.gateway.settings import GatewaySettings
from matcha.runtime.governance import DataClass
from matcha.runtime.server import MatchaServer
from tests.classification.listening_support import COMPLAINTS, PRAISE, RECALL, posts, seconds, stamp
from tests.support import refused


@pytest.fixture(scope="module")
def drop_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("drops")


@pytest.fixture(scope="module")
async def watch_server(classification_settings, serve, local_encoder, drop_root) -> AsyncIterator[MatchaServer]:
    settings = classification_settings(
        classification_drop_folder_roots=str(drop_root),
        # The feeds and webhooks these tests serve are on loopback.
        classification_egress_allowed_networks="127.0.0.1",
        classification_webhook_backoff_seconds=0.2,
        classification_alert_poll_seconds=0.5,
        classification_watch_lease_seconds=3.0,
    )
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
def listening(watch_server, connect, tenant):
    def make(**kwargs) -> classification_pb2_grpc.ClassificationServiceStub:
        options = {"purpose": "listening", **kwargs}
        return classification_pb2_grpc.ClassificationServiceStub(connect(watch_server, tenant, **options))

    return make


def watch(name: str, *sources: pb.WatchSource, window: float = 2.0, **fields) -> pb.Watch:
    return pb.Watch(
        name=name,
        sources=list(sources) or [pb.WatchSource(name="api", push=pb.PushSource())],
        window=seconds(window),
        look_back_windows=fields.pop("look_back_windows", 4),
        thresholds=pb.SignalThresholds(min_topic_size=3),
        **fields,
    )


async def next_alerts(stream, count: int, within: float = 30.0) -> list[pb.WatchAlert]:
    alerts = []
    async with asyncio.timeout(within):
        while len(alerts) < count:
            alerts.append((await stream.read()).alert)
    return alerts


async def test_windows_close_on_schedule_with_reports_and_alerts(listening):
    stub = listening()
    created = await stub.CreateWatch(
        pb.CreateWatchRequest(
            watch=watch(
                "brand",
                tracked_topics=[pb.TrackedTopic(name="delivery", terms=["parcel", "courier"])],
                min_topic_posts=3,
            )
        )
    )
    first_end = created.watch.next_window_end.ToDatetime(tzinfo=UTC)
    assert created.watch.creator_subject == "user-1"
    assert [status.state for status in created.watch.source_statuses] == [pb.SOURCE_STATE_PENDING]
    stream = stub.WatchAlerts(pb.WatchAlertsRequest(watch="brand"))
    # The first window praises deliveries; the second complains about them, and a recall appears.
    first = await stub.IngestPosts(
        pb.IngestPostsRequest(watch="brand", posts=posts(PRAISE, first_end - timedelta(seconds=1), "praise"))
    )
    assert (first.accepted, first.duplicates, first.late) == (6, 0, 0)
    second = posts(COMPLAINTS, first_end + timedelta(seconds=1), "complaint")
    second += posts(RECALL, first_end + timedelta(seconds=1), "recall")
    await stub.IngestPosts(pb.IngestPostsRequest(watch="brand", posts=second))

    opening = await next_alerts(stream, 1)
    assert opening[0].type == pb.ALERT_TYPE_NEW_SIGNAL
    assert opening[0].window_end.ToDatetime(tzinfo=UTC) == first_end
    assert opening[0].topic.strength == pb.SIGNAL_STRENGTH_STRONG
    assert "parcel" in opening[0].topic.terms or "delivery" in opening[0].topic.terms
    latency = opening[0].create_time.ToDatetime(tzinfo=UTC) - first_end
    assert latency < timedelta(seconds=5)

    later = []
    async with asyncio.timeout(30):
        while not any(alert.type == pb.ALERT_TYPE_SENTIMENT_SHIFT for alert in later):
            later.append((await stream.read()).alert)
    stream.cancel()
    second_end = first_end + timedelta(seconds=2)
    assert all(alert.window_end.ToDatetime(tzinfo=UTC) == second_end for alert in later)
    shift = next(alert for alert in later if alert.type == pb.ALERT_TYPE_SENTIMENT_SHIFT)
    assert shift.tracked_topic.name == "delivery"
    assert shift.tracked_topic.post_count == 6 and shift.tracked_topic.baseline_post_count == 6
    assert shift.tracked_topic.shift <= -1.0
    assert "souring" in shift.summary
    signals = [alert for alert in later if alert.type == pb.ALERT_TYPE_NEW_SIGNAL]
    assert any({"oat", "milk", "recall"} & set(alert.topic.terms) for alert in signals)

    reports = await stub.ListWatchReports(pb.ListWatchReportsRequest(watch="brand"))
    assert reports.withheld_count == 0
    newest, oldest = reports.reports[0], reports.reports[-1]
    assert oldest.window_end.ToDatetime(tzinfo=UTC) == first_end
    assert (oldest.window_post_count, oldest.signals.post_count) == (6, 6)
    assert newest.window_end.ToDatetime(tzinfo=UTC) == second_end
    assert (newest.window_post_count, newest.signals.post_count) == (12, 18)
    assert newest.alert_count == len(later)
    assert [status.accepted_posts for status in newest.source_statuses] == [18]
    models = {model.id for model in newest.signals.models}
    assert models == {"sentence-transformers/all-MiniLM-L6-v2", "matcha-sentiment-en/minilm+vader-logreg"}
    assert len(newest.signals.topics[0].counts) == 4

    # Replay: every alert of the watch, in sequence order; or those after a sequence.
    replay = stub.WatchAlerts(pb.WatchAlertsRequest(watch="brand", from_start=True))
    replayed = await next_alerts(replay, 1 + len(later))
    replay.cancel()
    assert [alert.sequence for alert in replayed] == [opening[0].sequence] + [alert.sequence for alert in later]
    assert all(alert.webhook_state == pb.WEBHOOK_STATE_NONE for alert in replayed)
    after_first = stub.WatchAlerts(pb.WatchAlertsRequest(watch="brand", after_sequence=opening[0].sequence))
    assert [alert.sequence for alert in await next_alerts(after_first, len(later))] == [a.sequence for a in later]
    after_first.cancel()

    # A post of a closed window (within the look-back) is accepted, and counted late.
    late = await stub.IngestPosts(
        pb.IngestPostsRequest(
            watch="brand", posts=posts(["Late word on a parcel"], first_end - timedelta(seconds=1), "late")
        )
    )
    assert (late.accepted, late.late) == (1, 1)
    got = await stub.GetWatch(pb.GetWatchRequest(name="brand"))
    assert got.watch.report_count >= 2
    listed = await stub.ListWatches(pb.ListWatchesRequest())
    assert [item.name for item in listed.watches] == ["brand"]
    deleted = await stub.DeleteWatch(pb.DeleteWatchRequest(name="brand"))
    assert deleted.deleted_reports >= 2 and deleted.deleted_alerts == 1 + len(later)
    await refused(stub.GetWatch(pb.GetWatchRequest(name="brand")), grpc.StatusCode.NOT_FOUND)


async def test_bad_posts_are_refused_and_duplicates_count_once(listening):
    stub = listening()
    await stub.CreateWatch(pb.CreateWatchRequest(watch=watch("checks", window=60)))
    now = datetime.now(UTC)
    bad = [
        pb.WatchPost(id="no-time", text="A post without a time"),
        pb.WatchPost(id="no-text", text="  ", time=stamp(now)),
        pb.WatchPost(id="future", text="From tomorrow", time=stamp(now + timedelta(hours=1))),
        pb.WatchPost(id="ancient", text="From long ago", time=stamp(datetime(2001, 1, 1, tzinfo=UTC))),
        pb.WatchPost(
            id="personal",
            text="Jane's order",
            time=stamp(now),
            policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_PERSONAL, consented_purposes=["listening"]),
        ),
        pb.WatchPost(
            id="no-consent",
            text="Support chat",
            time=stamp(now),
            policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"]),
        ),
        pb.WatchPost(id="fine", text="A fine post", time=stamp(now)),
        pb.WatchPost(id="nul", text="A NUL \x00 inside", time=stamp(now)),
    ]
    details = await refused(stub.IngestPosts(pb.IngestPostsRequest(watch="checks", posts=bad)))
    assert set(details.field_violations) == {
        "posts[0].time",
        "posts[1].text",
        "posts[2].time",
        "posts[3].time",
        "posts[4].policy.data_class",
        "posts[5].policy.consented_purposes",
        "posts[7].text",
    }
    assert details.field_violations["posts[0].time"] == "is required"
    assert "in the future" in details.field_violations["posts[2].time"]
    assert details.field_violations["posts[3].time"] == "older than the watch's look-back"
    got = await stub.GetWatch(pb.GetWatchRequest(name="checks"))
    assert got.watch.post_count == 0  # a refused call writes nothing

    same = [pb.WatchPost(id="p1", text="Same post", time=stamp(now))] * 2
    same.append(pb.WatchPost(text="No id, same text and time", time=stamp(now)))
    same.append(pb.WatchPost(text="No id, same text and time", time=stamp(now)))
    reply = await stub.IngestPosts(pb.IngestPostsRequest(watch="checks", posts=same))
    assert (reply.accepted, reply.duplicates) == (2, 2)
    again = await stub.IngestPosts(pb.IngestPostsRequest(watch="checks", posts=same))
    assert (again.accepted, again.duplicates) == (0, 4)
    got = await stub.GetWatch(pb.GetWatchRequest(name="checks"))
    assert got.watch.post_count == 2
    status = got.watch.source_statuses[0]
    assert (status.accepted_posts, status.duplicate_posts) == (2, 6)

    await refused(stub.IngestPosts(pb.IngestPostsRequest(watch="nope", posts=same)), grpc.StatusCode.NOT_FOUND)
    await refused(
        stub.IngestPosts(pb.IngestPostsRequest(watch="checks", source="feed", posts=same)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    campaign = listening(purpose="campaign")
    details = await refused(
        campaign.IngestPosts(pb.IngestPostsRequest(watch="checks", posts=same)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert details.reason == "PURPOSE_MISMATCH"
    analyst = listening(roles=("analyst",))
    details = await refused(
        analyst.IngestPosts(pb.IngestPostsRequest(watch="checks", posts=same)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert details.reason == "MISSING_ROLE"
    assert (await analyst.GetWatch(pb.GetWatchRequest(name="checks"))).watch.name == "checks"


async def test_bad_watches_are_refused(listening, drop_root):
    stub = listening()
    escape = drop_root / "escape"  # a link under the allowed folder that leads out of it
    escape.symlink_to("/etc")
    bad = pb.Watch(
        name="Bad Name",
        sources=[
            pb.WatchSource(name="a", feed=pb.FeedSource(url="ftp://example.com/feed")),
            pb.WatchSource(name="a", drop_folder=pb.DropFolderSource(path="/etc")),
            pb.WatchSource(name="b"),
            pb.WatchSource(name="c", drop_folder=pb.DropFolderSource(path=str(escape))),
        ],
        window=seconds(0.5),
        look_back_windows=2,
        tracked_topics=[pb.TrackedTopic(name="x"), pb.TrackedTopic(name="x")],
        webhook_url="not a url",
        sentiment_shift_threshold=3,
    )
    details = await refused(stub.CreateWatch(pb.CreateWatchRequest(watch=bad)))
    assert set(details.field_violations) == {
        "watch.name",
        "watch.sources[0].feed.url",
        "watch.sources[1].name",
        "watch.sources[1].drop_folder.path",
        "watch.sources[2]",
        "watch.sources[3].drop_folder.path",
        "watch.window",
        "watch.look_back_windows",
        "watch.tracked_topics[1].name",
        "watch.webhook_url",
        "watch.sentiment_shift_threshold",
    }
    assert str(drop_root) in details.field_violations["watch.sources[1].drop_folder.path"]
    assert list((await stub.ListWatches(pb.ListWatchesRequest())).watches) == []
    await stub.CreateWatch(pb.CreateWatchRequest(watch=watch("twice")))
    await refused(stub.CreateWatch(pb.CreateWatchRequest(watch=watch("twice"))), grpc.StatusCode.ALREADY_EXISTS)
    await refused(
        listening(roles=("analyst",)).CreateWatch(pb.CreateWatchRequest(watch=watch("mine"))),
        grpc.StatusCode.PERMISSION_DENIED,
    )


RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Brand news</title>
<item><guid>rss-1</guid><title>Oat milk &amp; more</title><description>&lt;p&gt;New &lt;b&gt;flavours&lt;/b&gt;
in store&lt;/p&gt;</description><pubDate>{now}</pubDate></item>
<item><guid>rss-2</guid><title>Store opening</title><description>A new shop opens</description>
<pubDate>{now}</pubDate></item>
<item><guid>rss-3</guid><title>Undated item</title></item>
<item><guid>rss-4</guid><title>Old news</title><pubDate>Mon, 01 Jan 2001 00:00:00 GMT</pubDate></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Reviews</title>
<entry><id>urn:review:1</id><title>Great oat milk</title><summary>Creamy and smooth</summary>
<updated>{iso}</updated></entry>
<entry><id>urn:review:2</id><title>Too sweet</title><content type="html">&lt;p&gt;Not for me&lt;/p&gt;</content>
<published>{iso}</published></entry>
</feed>"""


@pytest.fixture
async def http_server() -> AsyncIterator:
    """A local HTTP server; `routes` maps a path to a handler, `requests` records what reached it."""
    routes: dict[str, object] = {}
    requests: list[tuple[str, bytes, dict]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        requests.append((request.path, body, dict(request.headers)))
        return await routes[request.path](request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", routes, requests
    await runner.cleanup()


def reply(text: str, content_type: str = "application/xml", status: int = 200):
    async def handler(_request):
        return web.Response(text=text, content_type=content_type, status=status)

    return handler


async def eventually(condition, within: float = 30.0, every: float = 0.2):
    """Awaits `condition()` until it returns something true, and returns that."""
    async with asyncio.timeout(within):
        while True:
            result = await condition()
            if result:
                return result
            await asyncio.sleep(every)


async def wait_for_statuses(stub, name: str, done, within: float = 30.0) -> pb.Watch:
    async with asyncio.timeout(within):
        while True:
            got = (await stub.GetWatch(pb.GetWatchRequest(name=name))).watch
            statuses = {status.source: status for status in got.source_statuses}
            if done(statuses):
                return got
            await asyncio.sleep(0.3)


async def test_feeds_and_a_drop_folder_are_read_and_a_failing_source_does_not_stop_the_others(
    listening, http_server, drop_root
):
    base, routes, requests = http_server
    now = datetime.now(UTC)
    rss = RSS.format(now=now.strftime("%a, %d %b %Y %H:%M:%S +0000"))

    async def rss_with_etag(request):
        if request.headers.get("if-none-match") == '"v1"':
            return web.Response(status=304)
        return web.Response(text=rss, content_type="application/rss+xml", headers={"etag": '"v1"'})

    routes["/rss"] = rss_with_etag
    routes["/atom"] = reply(ATOM.format(iso=now.isoformat()), "application/atom+xml")
    routes["/html"] = reply("<!doctype html><html><body><p>Not a feed<br></body></html>", "text/html")
    routes["/garbage"] = reply("\x00\x01 not xml at all {", "application/octet-stream")
    routes["/down"] = reply("oops", "text/plain", status=500)
    folder = drop_root / "brand"
    folder.mkdir()
    lines = [
        {"id": "d1", "text": "Dropped post about oat milk", "time": now.isoformat()},
        {"id": "d2", "text": "Another dropped post", "time": now.timestamp()},
        {"id": "d2", "text": "Another dropped post", "time": now.timestamp()},
        {"id": "d3", "text": "No time here"},
        {"id": "d4", "text": "Local time without offset", "time": "2026-01-01T10:00:00"},
    ]
    (folder / "batch.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    poll = seconds(1)
    stub = listening()
    await stub.CreateWatch(
        pb.CreateWatchRequest(
            watch=watch(
                "sources",
                *[
                    pb.WatchSource(name=name, feed=pb.FeedSource(url=f"{base}/{name}", poll_interval=poll))
                    for name in ("rss", "atom", "html", "garbage", "down")
                ],
                pb.WatchSource(name="drops", drop_folder=pb.DropFolderSource(path=str(folder), poll_interval=poll)),
                window=60,
            )
        )
    )

    def settled(statuses):
        return all(status.state != pb.SOURCE_STATE_PENDING for status in statuses.values()) and (
            statuses["drops"].accepted_posts > 0
        )

    got = await wait_for_statuses(stub, "sources", settled)
    statuses = {status.source: status for status in got.source_statuses}
    assert statuses["rss"].state == pb.SOURCE_STATE_OK
    # The undated item is rejected (at each read); the one older than the look-back is skipped.
    assert statuses["rss"].accepted_posts == 2 and statuses["rss"].rejected_posts >= 1
    assert statuses["rss"].last_rejection == "item 3: no publication time"
    assert statuses["atom"].state == pb.SOURCE_STATE_OK and statuses["atom"].accepted_posts == 2
    assert statuses["html"].state == pb.SOURCE_STATE_FAILING
    assert "not an RSS or Atom feed" in statuses["html"].last_error
    assert statuses["garbage"].state == pb.SOURCE_STATE_FAILING
    assert "not XML" in statuses["garbage"].last_error
    assert statuses["down"].state == pb.SOURCE_STATE_FAILING and statuses["down"].last_error == "HTTP 500 from the feed"
    drops = statuses["drops"]
    assert drops.state == pb.SOURCE_STATE_OK
    assert (drops.accepted_posts, drops.duplicate_posts, drops.rejected_posts) == (2, 1, 3)
    assert not (folder / "batch.jsonl").exists() and (folder / "processed" / "batch.jsonl").exists()
    assert got.post_count == 6

    # Fetched again: the Atom feed's items are known, so they count once; the RSS feed answers 304 Not Modified to
    # the ETag it gave, and nothing is read.
    await asyncio.sleep(2.5)
    got = (await stub.GetWatch(pb.GetWatchRequest(name="sources"))).watch
    statuses = {status.source: status for status in got.source_statuses}
    assert statuses["atom"].accepted_posts == 2 and statuses["atom"].duplicate_posts >= 2
    assert statuses["rss"].state == pb.SOURCE_STATE_OK and statuses["rss"].duplicate_posts == 0
    rss_requests = [request for request in requests if request[0] == "/rss"]
    assert len(rss_requests) >= 2 and rss_requests[-1][2].get("If-None-Match") == '"v1"'
    assert got.post_count == 6
    await stub.DeleteWatch(pb.DeleteWatchRequest(name="sources"))


async def test_alerts_are_posted_to_the_webhook_with_retries(listening, http_server):
    base, routes, requests = http_server
    answers = iter([500, 503, 200])

    async def receiver(_request):
        return web.Response(status=next(answers, 200))

    routes["/hook"] = receiver
    stub = listening()
    created = await stub.CreateWatch(
        pb.CreateWatchRequest(watch=watch("hooked", webhook_url=f"{base}/hook", window=1.0))
    )
    end = created.watch.next_window_end.ToDatetime(tzinfo=UTC)
    await stub.IngestPosts(
        pb.IngestPostsRequest(watch="hooked", posts=posts(RECALL, end - timedelta(seconds=0.5), "r"))
    )

    async def three_hooks():
        return len([request for request in requests if request[0] == "/hook"]) >= 3

    await eventually(three_hooks)
    hooks = [request for request in requests if request[0] == "/hook"]
    secret = created.webhook_secret.encode()
    assert len(secret) == 64
    for _, raw, headers in hooks:
        expected = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        assert headers["x-matcha-signature"] == expected
    body = json.loads(hooks[-1][1])
    assert body["type"] == "ALERT_TYPE_NEW_SIGNAL" and body["watch"] == "hooked"
    assert body["topic"]["representative_posts"] and all(
        "text" not in post for post in body["topic"]["representative_posts"]
    )
    assert hooks[0][2]["x-matcha-alert-sequence"] == str(body["sequence"])
    replay = stub.WatchAlerts(pb.WatchAlertsRequest(watch="hooked", from_start=True))
    async with asyncio.timeout(10):
        while True:
            alert = (await replay.read()).alert
            if alert.webhook_state == pb.WEBHOOK_STATE_DELIVERED:
                break
            await asyncio.sleep(0.2)
            replay.cancel()
            replay = stub.WatchAlerts(pb.WatchAlertsRequest(watch="hooked", from_start=True))
    replay.cancel()
    assert alert.webhook_attempts == 3


async def test_erasure_and_classes_of_reports(listening, watch_server, connect, tenant):
    stub = listening(data_class=DataClass.PERSONAL)
    created = await stub.CreateWatch(pb.CreateWatchRequest(watch=watch("people", window=1.0)))
    end = created.watch.next_window_end.ToDatetime(tzinfo=UTC)
    personal = common_pb2.RecordPolicy(
        data_class=common_pb2.DATA_CLASS_PERSONAL, consented_purposes=["listening"], subject_id="subject-9"
    )
    batch = posts(RECALL[:3], end - timedelta(seconds=0.5), "p", policy=personal)
    batch += posts(RECALL[3:], end - timedelta(seconds=0.5), "q")
    await stub.IngestPosts(pb.IngestPostsRequest(watch="people", posts=batch))

    async def reported():
        return (await stub.ListWatchReports(pb.ListWatchReportsRequest(watch="people"))).reports

    await eventually(reported)
    report = (await stub.ListWatchReports(pb.ListWatchReportsRequest(watch="people"))).reports[-1]
    assert report.data_class == common_pb2.DATA_CLASS_PERSONAL
    internal = listening(data_class=DataClass.INTERNAL)
    capped = await internal.ListWatchReports(pb.ListWatchReportsRequest(watch="people"))
    assert list(capped.reports) == [] and capped.withheld_count >= 1

    auditor = classification_pb2_grpc.ClassificationServiceStub(
        connect(watch_server, tenant, roles=("auditor",), purpose="access-request", data_class=DataClass.PERSONAL)
    )
    described = await auditor.DescribeSubject(pb.DescribeSubjectRequest(subject_id="subject-9"))
    holding = next(holding for holding in described.holdings if holding.kind == "listening-posts")
    assert holding.count == 3 and holding.highest_data_class == common_pb2.DATA_CLASS_PERSONAL
    admin = classification_pb2_grpc.ClassificationServiceStub(
        connect(watch_server, tenant, roles=("admin",), purpose="erasure", data_class=DataClass.PERSONAL)
    )
    erased = await admin.EraseSubject(pb.EraseSubjectRequest(subject_id="subject-9"))
    assert erased.erased_watch_posts == 3
    report = (await stub.ListWatchReports(pb.ListWatchReportsRequest(watch="people"))).reports[-1]
    shown = {post.id for topic in report.signals.topics for post in topic.representative_posts}
    assert shown and not shown & {"p-0", "p-1", "p-2"}
    described = await auditor.DescribeSubject(pb.DescribeSubjectRequest(subject_id="subject-9"))
    assert not [holding for holding in described.holdings if holding.kind == "listening-posts"]


async def test_command_line_creates_feeds_follows_and_reports(watch_server, issuer, tenant, tmp_path):
    token = issuer.mint(subject="cli", tenant=tenant, roles=["operator"])
    common = ["--target", f"127.0.0.1:{watch_server.port}", "--token", token]
    runner = CliRunner()

    async def run(*arguments, exit_code=0):
        result = await asyncio.to_thread(runner.invoke, listen, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == exit_code, result.output
        return result.output

    created = await run(
        "create-watch",
        "cli",
        "--window",
        "2s",
        "--look-back-windows",
        "3",
        "--min-topic-size",
        "3",
        "--track",
        "milk=oat milk,carton",
        "--push",
        "api",
    )
    assert created.startswith("cli: windows of 0:00:02 (look-back 3, grace 0:00:00)")
    assert "latest alert none" in created
    assert "tracking milk (oat milk, carton)" in created and "api" in created and "pending" in created
    following = asyncio.create_task(run("watch", "cli", "--count", "1"))
    await asyncio.sleep(0.5)  # the stream is open before the window closes
    now = datetime.now(UTC)
    rows = [{"text": text, "time": now.isoformat(), "channel": "forum"} for text in RECALL]
    rows.append(rows[0])  # a duplicate: no id, same text, time and source
    (tmp_path / "posts.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    ingested = await run("ingest", "cli", str(tmp_path / "posts.jsonl"), "--source-field", "channel")
    assert ingested.startswith("6 post(s) accepted, 1 duplicate(s), 0 late")
    alert = await asyncio.wait_for(following, 30)
    assert " cli NEW SIGNAL: strong signal in 'cli': " in alert and "    - " in alert
    shown = await run("show", "cli")
    sequence = re.search(r"#(\d+) ", alert)[1]
    assert "6 accepted, 1 duplicate, 0 rejected" in shown and f"latest alert {sequence}" in shown
    reports = await run("reports", "cli", "--limit", "5")
    assert "6 new post(s), 1 alert(s)" in reports and "STRONG (1)" in reports
    assert "milk: 6 post(s), balance" in reports
    listed = await run("watches")
    assert listed.startswith("cli: ")
    refused = await run("create-watch", "Bad", "--window", "2s", exit_code=1)
    assert "INVALID_ARGUMENT" in refused and "watch.name" in refused
    assert (await run("delete-watch", "cli")).startswith("deleted cli: 6 post(s)")


async def test_posts_pushed_and_alerts_followed_through_the_gateway(watch_server, issuer, verifier, state_dir, tenant):
    settings = GatewaySettings(state_dir=state_dir, gateway_backends={SERVICE_NAME: f"127.0.0.1:{watch_server.port}"})
    app = build_gateway(settings, TracerProvider(), verifier)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, loop="none"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    token = issuer.mint(subject="web", tenant=tenant, roles=["operator"])
    headers = {"authorization": f"Bearer {token}", "x-matcha-purpose": "listening", "x-matcha-data-class": "INTERNAL"}
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            created = await http.post(
                "/v1/watches",
                json={
                    "watch": {
                        "name": "gw",
                        "sources": [{"name": "api", "push": {}}],
                        "window": "1s",
                        "lookBackWindows": 3,
                        "thresholds": {"minTopicSize": 3},
                    }
                },
            )
            assert created.status_code == 200, created.text
            end = datetime.fromisoformat(created.json()["watch"]["nextWindowEnd"].replace("Z", "+00:00"))
            moment = (end - timedelta(seconds=0.5)).isoformat()
            posts = [{"id": f"g{index}", "text": text, "time": moment} for index, text in enumerate(RECALL)]
            ingested = await http.post("/v1/watches/gw:ingest", json={"posts": posts})
            assert ingested.status_code == 200, ingested.text
            assert ingested.json()["accepted"] == 6
            bad = await http.post("/v1/watches/gw:ingest", json={"posts": [{"id": "x", "text": "no time"}]})
            assert bad.status_code == 400
            violations = [
                violation["field"]
                for detail in bad.json()["details"]
                if detail["@type"].endswith("BadRequest")
                for violation in detail["fieldViolations"]
            ]
            assert violations == ["posts[0].time"]
            async with http.stream(
                "GET",
                "/v1/watches:alerts",
                params={"watch": "gw", "fromStart": "true"},
                headers={"accept": "application/x-ndjson"},
            ) as stream:
                line = await asyncio.wait_for(anext(stream.aiter_lines()), 30)
            alert = json.loads(line)["result"]["alert"]
            assert alert["type"] == "ALERT_TYPE_NEW_SIGNAL" and alert["watch"] == "gw"
            assert alert["topic"]["representativePosts"][0]["text"] in RECALL
    finally:
        server.should_exit = True
        await serving
        sock.close()
