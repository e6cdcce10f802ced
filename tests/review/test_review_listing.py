"""The queue: filters, order, pagination, tenant isolation, and the event stream."""

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import timestamp_pb2

from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft
from tests.support import refused


def due_in(hours: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(hours=hours))
    return stamp


async def test_list_orders_by_due_time_then_priority_and_pages(review_for, tenant):
    writer = review_for(tenant)
    same_due = due_in(10)
    specs = [
        ("late", due_in(50), review_pb2.PRIORITY_URGENT),
        ("low", same_due, review_pb2.PRIORITY_LOW),
        ("high", same_due, review_pb2.PRIORITY_HIGH),
        ("first", due_in(1), review_pb2.PRIORITY_LOW),
        ("middle", due_in(20), review_pb2.PRIORITY_NORMAL),
    ]
    ids = {}
    for name, due, priority in specs:
        ids[name] = (await writer.Submit(draft(title=name, due_time=due, priority=priority))).item.id

    pages, token = [], ""
    while True:
        reply = await writer.List(review_pb2.ListRequest(page_size=2, page_token=token))
        pages.append([item.title for item in reply.items])
        token = reply.next_page_token
        if not token:
            break
    assert pages == [["first", "high"], ["low", "middle"], ["late"]]
    # A token belongs to its listing: under another filter it would skip items, so it is refused.
    first = await writer.List(review_pb2.ListRequest(page_size=2))
    filtered = writer.List(review_pb2.ListRequest(page_size=2, page_token=first.next_page_token, due_before=due_in(15)))
    assert "page_token" in (await refused(filtered)).field_violations

    due_soon = await writer.List(review_pb2.ListRequest(due_before=due_in(15)))
    assert [item.title for item in due_soon.items] == ["first", "high", "low"]


async def test_list_filters_by_status_channel_and_segment(review_for, tenant):
    writer = review_for(tenant)
    email = (await writer.Submit(draft(audience=review_pb2.Audience(segment_id="s-1")))).item
    social = (await writer.Submit(draft(channel=review_pb2.CHANNEL_SOCIAL_POST))).item
    reviewer = review_for(tenant, roles=REVIEWER)
    await reviewer.Decide(
        review_pb2.DecideRequest(item_id=social.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )

    async def titles(**filters) -> list[str]:
        return [item.id for item in (await writer.List(review_pb2.ListRequest(**filters))).items]

    assert await titles(statuses=[review_pb2.REVIEW_STATUS_PENDING]) == [email.id]
    assert await titles(statuses=[review_pb2.REVIEW_STATUS_APPROVED, review_pb2.REVIEW_STATUS_REJECTED]) == [social.id]
    assert await titles(channel=review_pb2.CHANNEL_SOCIAL_POST) == [social.id]
    assert await titles(segment_id="s-1") == [email.id]
    assert sorted(await titles()) == sorted([email.id, social.id])


async def test_tenants_never_see_each_other(review_for, tenant):
    mine = (await review_for(tenant).Submit(draft())).item
    other = review_for(f"{tenant}-b", roles=(*REVIEWER, "author"))
    assert not (await other.List(review_pb2.ListRequest())).items
    await refused(other.Get(review_pb2.GetRequest(item_id=mine.id)), grpc.StatusCode.NOT_FOUND)
    # The same idempotency key in two tenants makes two items.
    key = (("x-matcha-idempotency-key", "shared/key/0"),)
    first = await review_for(tenant).Submit(draft(), metadata=key)
    second = await other.Submit(draft(), metadata=key)
    assert first.created and second.created and first.item.id != second.item.id


async def test_watch_replays_then_streams_live_events(review_for, tenant):
    writer = review_for(tenant)
    reviewer = review_for(tenant, roles=REVIEWER, subject="rita")
    earlier = (await writer.Submit(draft(title="earlier"))).item
    history = await writer.Get(review_pb2.GetRequest(item_id=earlier.id))
    before = history.history[0].sequence - 1

    stream = reviewer.WatchEvents(review_pb2.WatchEventsRequest(after_sequence=before))
    received: list[review_pb2.ReviewEvent] = []

    async def collect(count: int) -> None:
        async for reply in stream:
            received.append(reply.event)
            if len(received) == count:
                return

    collecting = asyncio.create_task(collect(3))
    later = (await writer.Submit(draft(title="later"))).item
    await reviewer.Decide(
        review_pb2.DecideRequest(item_id=later.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )
    await asyncio.wait_for(collecting, 15)
    stream.cancel()
    assert [(event.item_id, event.type) for event in received] == [
        (earlier.id, review_pb2.REVIEW_EVENT_TYPE_SUBMITTED),
        (later.id, review_pb2.REVIEW_EVENT_TYPE_SUBMITTED),
        (later.id, review_pb2.REVIEW_EVENT_TYPE_DECIDED),
    ]
    assert received[2].status == review_pb2.REVIEW_STATUS_APPROVED and received[2].decision.reviewer_subject == "rita"
    assert received[0].sequence < received[1].sequence < received[2].sequence


async def test_watch_filters_by_item_and_type_and_refuses_bad_requests(review_for, tenant):
    writer = review_for(tenant)
    reviewer = review_for(tenant, roles=REVIEWER)
    watched = (await writer.Submit(draft())).item
    stream = writer.WatchEvents(
        review_pb2.WatchEventsRequest(item_id=watched.id, types=[review_pb2.REVIEW_EVENT_TYPE_DECIDED])
    )
    first = asyncio.create_task(anext(aiter(stream)))
    other = (await writer.Submit(draft())).item
    await reviewer.Decide(
        review_pb2.DecideRequest(item_id=other.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )
    await reviewer.Claim(review_pb2.ClaimRequest(item_id=watched.id))
    await reviewer.Decide(
        review_pb2.DecideRequest(
            item_id=watched.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REJECT, comment="no"
        )
    )
    event = (await asyncio.wait_for(first, 15)).event
    stream.cancel()
    assert (event.item_id, event.type, event.status) == (
        watched.id,
        review_pb2.REVIEW_EVENT_TYPE_DECIDED,
        review_pb2.REVIEW_STATUS_REJECTED,
    )

    bad = writer.WatchEvents(review_pb2.WatchEventsRequest(types=[99]))
    details = await refused(anext(aiter(bad)))
    assert details.field_violations == {"types[0]": "unknown event type 99"}
    missing = writer.WatchEvents(review_pb2.WatchEventsRequest(item_id="00000000-0000-0000-0000-000000000000"))
    await refused(anext(aiter(missing)), grpc.StatusCode.NOT_FOUND)


async def test_watchers_miss_no_event_of_concurrent_changes(review_for, tenant):
    writer = review_for(tenant)
    opening = (await writer.Submit(draft(title="opening"))).item
    start = (await writer.Get(review_pb2.GetRequest(item_id=opening.id))).history[-1].sequence
    watcher = writer.WatchEvents(review_pb2.WatchEventsRequest(after_sequence=start))
    seen: list[str] = []

    async def collect(count: int) -> None:
        async for reply in watcher:
            seen.append(reply.event.item_id)
            if len(seen) == count:
                return

    collecting = asyncio.create_task(collect(40))
    replies = await asyncio.gather(*(writer.Submit(draft(title=f"draft {index}")) for index in range(40)))
    await asyncio.wait_for(collecting, 30)
    watcher.cancel()
    assert sorted(seen) == sorted(reply.item.id for reply in replies)
