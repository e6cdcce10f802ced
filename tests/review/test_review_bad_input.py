"""Every bad request is refused with field violations, writes nothing, and the service keeps serving."""

from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft
from tests.support import refused


async def assert_only(stub, item_ids: list[str]) -> None:
    listed = await stub.List(review_pb2.ListRequest())
    assert sorted(item.id for item in listed.items) == sorted(item_ids)


async def test_submit_refusals_name_each_bad_field(review_for, tenant):
    writer = review_for(tenant)
    kept = (await writer.Submit(draft())).item
    past = timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))

    details = await refused(writer.Submit(draft(content="   ", channel=review_pb2.CHANNEL_UNSPECIFIED)))
    assert details.field_violations.keys() == {"content", "channel"}
    assert details.field_violations["content"] == "must not be empty"

    details = await refused(writer.Submit(draft(content="x" * (256 * 1024 + 1), title="t" * 501)))
    assert details.field_violations.keys() == {"content", "title"}
    assert "262144 bytes" in details.field_violations["content"]

    details = await refused(
        writer.Submit(
            draft(
                due_time=past,
                voice_score=120,
                priority=9,
                target="t" * 201,
                resume=review_pb2.RunResume(run_id="", signal_key=""),
            )
        )
    )
    assert details.field_violations.keys() == {
        "due_time",
        "voice_score",
        "priority",
        "target",
        "resume.run_id",
        "resume.signal_key",
        "resume.capability",
    }
    await assert_only(writer, [kept.id])


async def test_list_refusals(review_for, tenant):
    stub = review_for(tenant)
    details = await refused(stub.List(review_pb2.ListRequest(statuses=[review_pb2.REVIEW_STATUS_PENDING, 42])))
    assert details.field_violations == {"statuses[1]": "unknown status 42"}
    details = await refused(stub.List(review_pb2.ListRequest(statuses=[review_pb2.REVIEW_STATUS_UNSPECIFIED])))
    assert "statuses[0]" in details.field_violations
    details = await refused(stub.List(review_pb2.ListRequest(page_size=201)))
    assert "page_size" in details.field_violations
    details = await refused(stub.List(review_pb2.ListRequest(page_token="not-a-token")))
    assert "page_token" in details.field_violations


async def test_decision_refusals(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER)
    details = await refused(reviewer.Decide(review_pb2.DecideRequest(item_id=item.id, version=1)))
    assert "outcome" in details.field_violations
    details = await refused(
        reviewer.Decide(
            review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REJECT)
        )
    )
    assert details.field_violations == {"comment": "required to reject or request changes"}
    details = await refused(
        reviewer.Decide(
            review_pb2.DecideRequest(
                item_id=item.id,
                version=1,
                outcome=review_pb2.DECISION_OUTCOME_REQUEST_CHANGES,
                comment="shorter",
                edit=review_pb2.ContentEdit(content="edited"),
            )
        )
    )
    assert details.field_violations == {"edit": "only an approval may carry an edit"}
    details = await refused(
        reviewer.Decide(
            review_pb2.DecideRequest(
                item_id=item.id,
                version=1,
                outcome=review_pb2.DECISION_OUTCOME_APPROVE,
                edit=review_pb2.ContentEdit(content=""),
            )
        )
    )
    assert details.field_violations == {"edit.content": "must not be empty"}
    details = await refused(
        reviewer.Claim(review_pb2.ClaimRequest(item_id=item.id, ttl=duration_pb2.Duration(seconds=3 * 3600)))
    )
    assert details.field_violations == {"ttl": "1 minute to 2 hours"}

    got = await reviewer.Get(review_pb2.GetRequest(item_id=item.id))
    assert got.item.status == review_pb2.REVIEW_STATUS_PENDING and not got.item.decisions
    assert not got.item.HasField("claim") and len(got.item.versions) == 1


async def test_unknown_items_are_not_found(review_for, tenant):
    reviewer = review_for(tenant, roles=(*REVIEWER, "publisher", "author"))
    for item_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        for call in (
            reviewer.Get(review_pb2.GetRequest(item_id=item_id)),
            reviewer.Claim(review_pb2.ClaimRequest(item_id=item_id)),
            reviewer.Decide(
                review_pb2.DecideRequest(item_id=item_id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
            ),
            reviewer.Publish(review_pb2.PublishRequest(item_id=item_id, content_sha256="00")),
        ):
            details = await refused(call, grpc.StatusCode.NOT_FOUND)
            assert details.reason == "ITEM_NOT_FOUND" and details.metadata["item_id"] == item_id
    # ...and the service still answers.
    assert (await reviewer.Submit(draft())).created
