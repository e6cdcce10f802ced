"""What a follower of a watch's alerts relies on, against the real service and PostgreSQL: a stream of one watch
ends with NOT_FOUND when the watch is deleted, a sentiment shift alert shows the tracked topic's terms and posts
(withheld, with the alert, from a call below their class; erased with their subject), and a watch says where
its alerts stand (its latest sequence a caller may read)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import grpc
import pytest

from matcha.classification.app import build_classification_service
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.common.v1 import common_pb2
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass
from matcha.runtime.server import MatchaServer
from tests.classification.listening_support import COMPLAINTS, PRAISE, posts, seconds

POLL_SECONDS = 0.5


@pytest.fixture(scope="module")
async def watch_server(classification_settings, serve, local_encoder) -> AsyncIterator[MatchaServer]:
    settings = classification_settings(
        classification_alert_poll_seconds=POLL_SECONDS, classification_watch_lease_seconds=3.0
    )
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
def listening(watch_server, connect, tenant):
    def make(**kwargs) -> classification_pb2_grpc.ClassificationServiceStub:
        options = {"purpose": "listening", **kwargs}
        return classification_pb2_grpc.ClassificationServiceStub(connect(watch_server, tenant, **options))

    return make


def watch(name: str, window: float = 2.0, **fields) -> pb.Watch:
    return pb.Watch(
        name=name,
        sources=[pb.WatchSource(name="api", push=pb.PushSource())],
        window=seconds(window),
        # Long enough that no later window raises an alert while a test reads the first ones.
        look_back_windows=10,
        thresholds=pb.SignalThresholds(min_topic_size=3),
        **fields,
    )


async def ended_with(stream, within: float) -> grpc.aio.AioRpcError:
    """The error a stream ends with, within `within` seconds (alerts before it are read past)."""
    async with asyncio.timeout(within):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await stream.read()
    return caught.value


async def test_a_stream_of_a_deleted_watch_ends_with_not_found(listening):
    stub = listening()
    await stub.CreateWatch(pb.CreateWatchRequest(watch=watch("gone", window=60)))
    stream = stub.WatchAlerts(pb.WatchAlertsRequest(watch="gone", from_start=True))
    every_watch = stub.WatchAlerts(pb.WatchAlertsRequest(from_start=True))
    await asyncio.sleep(2 * POLL_SECONDS)  # past the first reads: the stream is waiting for alerts
    await stub.DeleteWatch(pb.DeleteWatchRequest(name="gone"))
    ended = await ended_with(stream, within=POLL_SECONDS + 2.0)
    details = error_details(ended)
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert (details.reason, details.metadata) == ("WATCH_NOT_FOUND", {"watch": "gone"})
    # A stream of every watch does not end with one of them.
    read = asyncio.ensure_future(every_watch.read())
    await asyncio.sleep(2 * POLL_SECONDS)
    assert not read.done()
    read.cancel()
    every_watch.cancel()

    # A watch deleted and made again under the same name is another watch: its follower is told too.
    await stub.CreateWatch(pb.CreateWatchRequest(watch=watch("again", window=60)))
    stream = stub.WatchAlerts(pb.WatchAlertsRequest(watch="again"))
    await asyncio.sleep(2 * POLL_SECONDS)
    await stub.DeleteWatch(pb.DeleteWatchRequest(name="again"))
    await stub.CreateWatch(pb.CreateWatchRequest(watch=watch("again", window=60)))
    ended = await ended_with(stream, within=POLL_SECONDS + 2.0)
    assert (ended.code(), error_details(ended).reason) == (grpc.StatusCode.NOT_FOUND, "WATCH_NOT_FOUND")


async def test_a_sentiment_shift_shows_its_terms_and_posts_within_the_reader_s_class(
    listening, watch_server, connect, tenant
):
    internal = listening(data_class=DataClass.INTERNAL)
    personal = listening(data_class=DataClass.PERSONAL)
    created = await personal.CreateWatch(
        pb.CreateWatchRequest(
            watch=watch("moods", tracked_topics=[pb.TrackedTopic(name="delivery", terms=["parcel", "courier"])])
        )
    )
    assert created.watch.last_alert_sequence == 0
    first_end = created.watch.next_window_end.ToDatetime(tzinfo=UTC)
    # Praise in the first window (internal posts); complaints of one data subject in the second (personal).
    await internal.IngestPosts(
        pb.IngestPostsRequest(watch="moods", posts=posts(PRAISE, first_end - timedelta(seconds=1), "praise"))
    )
    subject = common_pb2.RecordPolicy(
        data_class=common_pb2.DATA_CLASS_PERSONAL, consented_purposes=["listening"], subject_id="subject-5"
    )
    complaints = posts(COMPLAINTS, first_end + timedelta(seconds=1), "complaint", policy=subject)
    await personal.IngestPosts(pb.IngestPostsRequest(watch="moods", posts=complaints))

    stream = personal.WatchAlerts(pb.WatchAlertsRequest(watch="moods", from_start=True))
    seen: list[pb.WatchAlert] = []
    async with asyncio.timeout(30):
        while not any(alert.type == pb.ALERT_TYPE_SENTIMENT_SHIFT for alert in seen):
            seen.append((await stream.read()).alert)
    stream.cancel()
    shift = next(alert for alert in seen if alert.type == pb.ALERT_TYPE_SENTIMENT_SHIFT)
    tracked = shift.tracked_topic
    assert tracked.name == "delivery" and list(tracked.terms) == ["parcel", "courier"]
    # Souring: the window's complaints (negative), not the praise before them.
    shown = {post.id: post.text for post in tracked.representative_posts}
    assert 1 <= len(shown) <= 3 and set(shown) <= {post.id for post in complaints}
    assert set(shown.values()) <= set(COMPLAINTS)
    assert all(0.0 < post.centrality <= 1.0 + 1e-6 for post in tracked.representative_posts)
    assert shift.data_class == common_pb2.DATA_CLASS_PERSONAL
    # The window's report shows the same posts for the tracked topic.
    reports = await personal.ListWatchReports(pb.ListWatchReportsRequest(watch="moods"))
    newest = next(report for report in reports.reports if report.window_end == shift.window_end)
    assert [post.id for post in newest.tracked_topics[0].representative_posts] == list(shown)

    # A reader below the posts' class gets neither the alert nor its posts; the watch's latest alert it may read
    # is an earlier one.
    first_alerts = [alert for alert in seen if alert.window_end.ToDatetime(tzinfo=UTC) == first_end]
    assert first_alerts and all(alert.data_class == common_pb2.DATA_CLASS_INTERNAL for alert in first_alerts)
    capped = internal.WatchAlerts(pb.WatchAlertsRequest(watch="moods", from_start=True))
    replayed = [(await capped.read()).alert for _ in first_alerts]
    late = asyncio.ensure_future(capped.read())
    await asyncio.sleep(3 * POLL_SECONDS)
    assert not late.done()
    late.cancel()
    capped.cancel()
    assert [alert.sequence for alert in replayed] == [alert.sequence for alert in first_alerts]
    latest = max(alert.sequence for alert in seen)
    got = await personal.GetWatch(pb.GetWatchRequest(name="moods"))
    assert got.watch.last_alert_sequence == latest
    listed = await personal.ListWatches(pb.ListWatchesRequest())
    assert [(item.name, item.last_alert_sequence) for item in listed.watches] == [("moods", latest)]
    got = await internal.GetWatch(pb.GetWatchRequest(name="moods"))
    assert got.watch.last_alert_sequence == max(alert.sequence for alert in first_alerts)
    listed = await internal.ListWatches(pb.ListWatchesRequest())
    assert [item.last_alert_sequence for item in listed.watches] == [got.watch.last_alert_sequence]
    # A follower that starts from it misses nothing it may read, and sees nothing older.
    after = personal.WatchAlerts(pb.WatchAlertsRequest(watch="moods", after_sequence=latest))
    pending = asyncio.ensure_future(after.read())
    await asyncio.sleep(3 * POLL_SECONDS)
    assert not pending.done()
    pending.cancel()
    after.cancel()

    # Erasing the subject takes their posts out of the shift alert (and of the report).
    admin = classification_pb2_grpc.ClassificationServiceStub(
        connect(watch_server, tenant, roles=("admin",), purpose="erasure", data_class=DataClass.PERSONAL)
    )
    assert (await admin.EraseSubject(pb.EraseSubjectRequest(subject_id="subject-5"))).erased_watch_posts == 6
    replay = personal.WatchAlerts(pb.WatchAlertsRequest(watch="moods", after_sequence=shift.sequence - 1))
    again = (await replay.read()).alert
    replay.cancel()
    assert again.sequence == shift.sequence and list(again.tracked_topic.representative_posts) == []
    assert list(again.tracked_topic.terms) == ["parcel", "courier"]
    reports = await personal.ListWatchReports(pb.ListWatchReportsRequest(watch="moods"))
    newest = next(report for report in reports.reports if report.window_end == shift.window_end)
    assert list(newest.tracked_topics[0].representative_posts) == []
