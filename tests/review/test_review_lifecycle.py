"""Every transition of the status machine, claims, four-eyes, versions and digests, against the real service."""

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from matcha.common.v1 import common_pb2
from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft
from tests.support import refused


def digest(title: str, content: str) -> str:
    return hashlib.sha256(title.encode() + b"\0" + content.encode()).hexdigest()


def approve(item, **kwargs) -> review_pb2.DecideRequest:
    return review_pb2.DecideRequest(
        item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE, **kwargs
    )


PROVENANCE = common_pb2.Provenance(
    run_id="run-1",
    plan_name="spring-campaign",
    plan_version=3,
    step="draft",
    model=common_pb2.ModelRef(id="smollm2-135m-instruct", version="q8_0"),
    prompt_template="email",
    prompt_template_version=2,
    voice_profile="brand",
    voice_profile_version=5,
    source_record_ids=["customer-segment-7"],
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
)


async def test_submit_keeps_provenance_and_gives_a_due_time_by_priority(review_for, tenant):
    writer = review_for(tenant, subject="planner")
    flags = [common_pb2.ContentFlag(code="voice.long_sentence", message="long", severity=common_pb2.FLAG_SEVERITY_INFO)]
    before = datetime.now(UTC)
    reply = await writer.Submit(
        draft(
            provenance=PROVENANCE,
            voice_score=87.5,
            flags=flags,
            priority=review_pb2.PRIORITY_URGENT,
            audience=review_pb2.Audience(segmentation="shoppers", segmentation_version=2, segment_id="s-7"),
        )
    )
    item = reply.item
    assert reply.created
    assert item.status == review_pb2.REVIEW_STATUS_PENDING and item.version == 1
    assert item.content_sha256 == digest(item.title, item.content)
    assert item.provenance == PROVENANCE and list(item.flags) == flags and item.voice_score == 87.5
    assert item.submitter_subject == "planner" and item.audience.segment_id == "s-7"
    due = item.due_time.ToDatetime(tzinfo=UTC)
    assert before + timedelta(hours=4) <= due <= datetime.now(UTC) + timedelta(hours=4)

    normal = (await writer.Submit(draft())).item
    assert normal.priority == review_pb2.PRIORITY_NORMAL
    assert normal.due_time.ToDatetime(tzinfo=UTC) >= before + timedelta(hours=72)

    got = await writer.Get(review_pb2.GetRequest(item_id=item.id))
    assert [version.origin for version in got.item.versions] == [review_pb2.VERSION_ORIGIN_AI_DRAFT]
    assert [event.type for event in got.history] == [review_pb2.REVIEW_EVENT_TYPE_SUBMITTED]


async def test_submit_is_idempotent_on_the_idempotency_key(review_for, tenant):
    writer = review_for(tenant)
    key = (("x-matcha-idempotency-key", "run-9/draft/0"),)
    first = await writer.Submit(draft(), metadata=key)
    again = await writer.Submit(draft(), metadata=key)
    assert first.created and not again.created
    assert again.item.id == first.item.id and again.item.content == first.item.content
    # The key is bound to its request: another body under it is no retry (tests/security covers the attack).
    swapped = await refused(
        writer.Submit(draft(content="a different retry body"), metadata=key), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert swapped.reason == "IDEMPOTENCY_KEY_REUSED"
    other = await writer.Submit(draft(), metadata=(("x-matcha-idempotency-key", "run-9/draft/1"),))
    assert other.created and other.item.id != first.item.id
    listed = await writer.List(review_pb2.ListRequest())
    assert len(listed.items) == 2


async def test_approve_records_reviewer_role_time_and_digest(review_for, tenant):
    item = (await review_for(tenant, subject="planner").Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER, subject="rita")
    reply = await reviewer.Decide(approve(item, comment="on brand"))
    assert reply.item.status == review_pb2.REVIEW_STATUS_APPROVED
    assert reply.item.approved_version == 1 and reply.item.approved_sha256 == item.content_sha256
    assert reply.item.approved_diff == ""
    decision = reply.decision
    assert (decision.reviewer_subject, decision.role, decision.version) == ("rita", "reviewer", 1)
    assert decision.content_sha256 == digest(item.title, item.content)
    assert decision.outcome == review_pb2.DECISION_OUTCOME_APPROVE and decision.decide_time.seconds > 0

    again = await refused(reviewer.Decide(approve(reply.item)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "APPROVED" in again.message and again.metadata["status"] == "APPROVED"


async def test_approve_with_an_edit_approves_the_edit_as_a_new_version(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER, subject="rita")
    edited = "Our new walking shoes are here.\nTry them in any store this month.\n"
    proposed = await reviewer.Decide(approve(item, edit=review_pb2.ContentEdit(title="Walk on air", content=edited)))
    # Four-eyes: the edit is rita's own version, which she may not approve; another reviewer does.
    assert proposed.item.status == review_pb2.REVIEW_STATUS_REVISED and proposed.item.version == 2
    refusal = await refused(reviewer.Decide(approve(proposed.item)), grpc.StatusCode.PERMISSION_DENIED)
    assert refusal.reason == "FOUR_EYES"
    reply = await review_for(tenant, roles=REVIEWER, subject="bob").Decide(approve(proposed.item))
    assert reply.item.status == review_pb2.REVIEW_STATUS_APPROVED
    assert reply.item.version == 2 and reply.item.approved_version == 2
    assert reply.item.approved_sha256 == digest("Walk on air", edited) == reply.decision.content_sha256
    assert reply.decision.reviewer_subject == "bob"
    assert "-Try them in store this weekend." in reply.item.approved_diff
    assert "+Try them in any store this month." in reply.item.approved_diff

    full = (await reviewer.Get(review_pb2.GetRequest(item_id=item.id))).item
    assert [(v.number, v.origin) for v in full.versions] == [
        (1, review_pb2.VERSION_ORIGIN_AI_DRAFT),
        (2, review_pb2.VERSION_ORIGIN_HUMAN_EDIT),
    ]
    assert full.versions[1].author_subject == "rita" and full.versions[1].diff_from_previous
    assert full.versions[0].content == item.content  # the AI draft is kept as it was


async def test_request_changes_then_revise_then_approve(review_for, tenant):
    writer = review_for(tenant, subject="planner")
    item = (await writer.Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER, subject="rita")
    asked = await reviewer.Decide(
        review_pb2.DecideRequest(
            item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REQUEST_CHANGES, comment="mention the sale"
        )
    )
    assert asked.item.status == review_pb2.REVIEW_STATUS_CHANGES_REQUESTED
    not_open = await refused(reviewer.Decide(approve(asked.item)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "CHANGES_REQUESTED" in not_open.message

    regenerated = common_pb2.Provenance(run_id="run-2", plan_name="spring-campaign", plan_version=3, step="redraft")
    revised = await writer.Revise(
        review_pb2.ReviseRequest(
            item_id=item.id,
            version=1,
            title=item.title,
            content="Our walking shoes are 20% off.\nTry them in store this weekend.\n",
            provenance=regenerated,
            comment="added the sale",
        )
    )
    assert revised.item.status == review_pb2.REVIEW_STATUS_REVISED and revised.item.version == 2
    twice = await refused(
        writer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=2, content="again")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "REVISED" in twice.message and twice.metadata["status"] == "REVISED"

    approved = await reviewer.Decide(approve(revised.item))
    assert approved.item.status == review_pb2.REVIEW_STATUS_APPROVED and approved.item.approved_version == 2
    assert approved.item.approved_diff == ""  # approved exactly as the plan regenerated it

    full = await reviewer.Get(review_pb2.GetRequest(item_id=item.id))
    assert [v.origin for v in full.item.versions] == [
        review_pb2.VERSION_ORIGIN_AI_DRAFT,
        review_pb2.VERSION_ORIGIN_REGENERATED,
    ]
    assert full.item.versions[1].provenance == regenerated
    assert "+Our walking shoes are 20% off." in full.item.versions[1].diff_from_previous
    assert [d.outcome for d in full.item.decisions] == [
        review_pb2.DECISION_OUTCOME_REQUEST_CHANGES,
        review_pb2.DECISION_OUTCOME_APPROVE,
    ]
    assert [event.type for event in full.history] == [
        review_pb2.REVIEW_EVENT_TYPE_SUBMITTED,
        review_pb2.REVIEW_EVENT_TYPE_DECIDED,
        review_pb2.REVIEW_EVENT_TYPE_REVISED,
        review_pb2.REVIEW_EVENT_TYPE_DECIDED,
    ]
    assert full.history[-1].decision.reviewer_subject == "rita"


async def test_reject_is_terminal(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    reviewer = review_for(tenant, roles=(*REVIEWER, "author"))
    rejected = await reviewer.Decide(
        review_pb2.DecideRequest(
            item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REJECT, comment="off brand"
        )
    )
    assert rejected.item.status == review_pb2.REVIEW_STATUS_REJECTED
    for call in (
        reviewer.Decide(approve(rejected.item)),
        reviewer.Claim(review_pb2.ClaimRequest(item_id=item.id)),
        reviewer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=1, content="new")),
    ):
        details = await refused(call, grpc.StatusCode.FAILED_PRECONDITION)
        assert "REJECTED" in details.message and details.reason == "WRONG_STATUS"


async def test_four_eyes_forbids_deciding_on_ones_own_submission(review_for, tenant):
    author = review_for(tenant, roles=(*REVIEWER, "author"), subject="ann")
    guarded = (await author.Submit(draft(four_eyes=True))).item
    details = await refused(author.Decide(approve(guarded)), grpc.StatusCode.PERMISSION_DENIED)
    assert details.reason == "FOUR_EYES" and details.metadata["subject"] == "ann"
    colleague = review_for(tenant, roles=REVIEWER, subject="bob")
    assert (await colleague.Decide(approve(guarded))).item.status == review_pb2.REVIEW_STATUS_APPROVED

    # Four-eyes is the tenant's policy, not the submitter's choice: a submission that does not ask for it
    # gets it all the same.
    unasked = (await author.Submit(draft(four_eyes=False))).item
    assert unasked.four_eyes
    details = await refused(author.Decide(approve(unasked)), grpc.StatusCode.PERMISSION_DENIED)
    assert details.reason == "FOUR_EYES"


async def test_only_reviewers_decide_and_claim(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    analyst = review_for(tenant, roles=("analyst",))
    for call in (analyst.Decide(approve(item)), analyst.Claim(review_pb2.ClaimRequest(item_id=item.id))):
        details = await refused(call, grpc.StatusCode.PERMISSION_DENIED)
        assert details.reason == "MISSING_ROLE" and details.metadata["role"] == "reviewer"
    # A reviewer of another tenant does not even see the item.
    outsider = review_for(f"{tenant}-other", roles=REVIEWER)
    details = await refused(outsider.Decide(approve(item)), grpc.StatusCode.NOT_FOUND)
    assert details.reason == "ITEM_NOT_FOUND"
    assert (await analyst.Get(review_pb2.GetRequest(item_id=item.id))).item.status == review_pb2.REVIEW_STATUS_PENDING


async def test_a_stale_version_is_aborted(review_for, tenant):
    writer = review_for(tenant)
    item = (await writer.Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER)
    await reviewer.Decide(
        review_pb2.DecideRequest(
            item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REQUEST_CHANGES, comment="shorter"
        )
    )
    await writer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=1, content="Shoes. In store now."))
    details = await refused(reviewer.Decide(approve(item)), grpc.StatusCode.ABORTED)
    assert details.reason == "STALE_VERSION" and details.metadata["current_version"] == "2"
    current = (await reviewer.Get(review_pb2.GetRequest(item_id=item.id))).item
    assert current.status == review_pb2.REVIEW_STATUS_REVISED and len(current.decisions) == 1


async def test_claims_are_seen_by_others_extend_release_and_lapse(review_for, review_service, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    rita = review_for(tenant, roles=REVIEWER, subject="rita")
    bob = review_for(tenant, roles=REVIEWER, subject="bob")
    claimed = await rita.Claim(review_pb2.ClaimRequest(item_id=item.id, ttl=duration_pb2.Duration(seconds=120)))
    assert claimed.item.claim.reviewer_subject == "rita"
    first_expiry = claimed.item.claim.expire_time.ToDatetime(tzinfo=UTC)

    seen = (await bob.List(review_pb2.ListRequest(claimed_by="rita"))).items
    assert [listed.id for listed in seen] == [item.id]
    assert not (await bob.List(review_pb2.ListRequest(claimed_by="-"))).items
    for call in (bob.Claim(review_pb2.ClaimRequest(item_id=item.id)), bob.Decide(approve(item))):
        details = await refused(call, grpc.StatusCode.FAILED_PRECONDITION)
        assert details.reason == "CLAIMED_BY_OTHER" and "rita" in details.message
    await refused(bob.Release(review_pb2.ReleaseRequest(item_id=item.id)), grpc.StatusCode.FAILED_PRECONDITION)

    extended = await rita.Claim(review_pb2.ClaimRequest(item_id=item.id, ttl=duration_pb2.Duration(seconds=600)))
    assert extended.item.claim.expire_time.ToDatetime(tzinfo=UTC) > first_expiry
    released = await rita.Release(review_pb2.ReleaseRequest(item_id=item.id))
    assert not released.item.HasField("claim")
    await bob.Claim(review_pb2.ClaimRequest(item_id=item.id, ttl=duration_pb2.Duration(seconds=60)))

    # The sweeper drops lapsed claims (driven here with a clock two minutes ahead).
    await review_service.core.sweep(datetime.now(UTC) + timedelta(minutes=2))
    lapsed = await rita.Get(review_pb2.GetRequest(item_id=item.id))
    assert not lapsed.item.HasField("claim")
    assert lapsed.history[-1].type == review_pb2.REVIEW_EVENT_TYPE_RELEASED and lapsed.history[-1].actor_subject == ""
    assert (await rita.Decide(approve(item))).item.status == review_pb2.REVIEW_STATUS_APPROVED


async def test_expiry_never_approves(review_for, review_service, tenant):
    writer = review_for(tenant)
    soon = timestamp_pb2.Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
    item = (await writer.Submit(draft(due_time=soon))).item
    untouched = (await writer.Submit(draft())).item

    expired = await review_service.core.sweep(datetime.now(UTC) + timedelta(minutes=6))
    assert expired >= 1
    reviewer = review_for(tenant, roles=REVIEWER)
    got = await reviewer.Get(review_pb2.GetRequest(item_id=item.id))
    assert got.item.status == review_pb2.REVIEW_STATUS_EXPIRED and not got.item.approved_sha256
    assert got.history[-1].type == review_pb2.REVIEW_EVENT_TYPE_EXPIRED
    details = await refused(reviewer.Decide(approve(item)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "EXPIRED" in details.message
    other = await reviewer.Get(review_pb2.GetRequest(item_id=untouched.id))
    assert other.item.status == review_pb2.REVIEW_STATUS_PENDING


async def test_a_decision_after_the_due_time_expires_the_item(review_for, tenant):
    """Between two sweeps, an overdue item is expired by the decision that finds it, not approved."""
    writer = review_for(tenant)
    due = timestamp_pb2.Timestamp()
    # Two seconds ahead: a Submit slowed by a loaded machine still sees a due time in the future.
    due_time = datetime.now(UTC) + timedelta(seconds=2)
    due.FromDatetime(due_time)
    item = (await writer.Submit(draft(due_time=due))).item
    await asyncio.sleep((due_time - datetime.now(UTC)).total_seconds() + 0.1)
    reviewer = review_for(tenant, roles=REVIEWER)
    details = await refused(reviewer.Decide(approve(item)), grpc.StatusCode.FAILED_PRECONDITION)
    assert details.metadata["status"] == "EXPIRED"
    got = await reviewer.Get(review_pb2.GetRequest(item_id=item.id))
    assert got.item.status == review_pb2.REVIEW_STATUS_EXPIRED and not got.item.decisions


async def test_decide_is_idempotent_on_the_idempotency_key(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER)
    key = (("x-matcha-idempotency-key", "ui/decide/1"),)
    first = await reviewer.Decide(approve(item), metadata=key)
    again = await reviewer.Decide(approve(item), metadata=key)
    assert again.decision == first.decision and again.item.status == review_pb2.REVIEW_STATUS_APPROVED
    assert len((await reviewer.Get(review_pb2.GetRequest(item_id=item.id))).item.decisions) == 1


async def test_concurrent_decisions_one_wins_the_other_sees_the_outcome(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    rita = review_for(tenant, roles=REVIEWER, subject="rita")
    bob = review_for(tenant, roles=REVIEWER, subject="bob")
    reject = review_pb2.DecideRequest(
        item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REJECT, comment="off brand"
    )
    results = await asyncio.gather(rita.Decide(approve(item)), bob.Decide(reject), return_exceptions=True)
    decided = [result for result in results if isinstance(result, review_pb2.DecideResponse)]
    refusals = [result for result in results if isinstance(result, grpc.aio.AioRpcError)]
    assert len(decided) == 1 and len(refusals) == 1
    assert refusals[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert review_pb2.ReviewStatus.Name(decided[0].item.status).removeprefix("REVIEW_STATUS_") in refusals[0].details()
    full = (await rita.Get(review_pb2.GetRequest(item_id=item.id))).item
    assert len(full.decisions) == 1


async def test_revise_refusals_and_idempotency(review_for, tenant):
    writer = review_for(tenant)
    item = (await writer.Submit(draft())).item
    reviewer = review_for(tenant, roles=REVIEWER)
    await reviewer.Decide(
        review_pb2.DecideRequest(
            item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REQUEST_CHANGES, comment="shorter"
        )
    )
    details = await refused(writer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=1, content=" ")))
    assert details.field_violations == {"content": "must not be empty"}
    details = await refused(
        writer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=3, content="Shoes.")), grpc.StatusCode.ABORTED
    )
    assert details.reason == "STALE_VERSION"

    key = (("x-matcha-idempotency-key", "run-3/redraft/0"),)
    first = await writer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=1, content="Shoes."), metadata=key)
    again = await writer.Revise(review_pb2.ReviseRequest(item_id=item.id, version=1, content="Shoes."), metadata=key)
    assert first.item.version == again.item.version == 2
    assert len((await writer.Get(review_pb2.GetRequest(item_id=item.id))).item.versions) == 2


async def test_an_admin_may_release_anyones_claim(review_for, tenant):
    item = (await review_for(tenant).Submit(draft())).item
    await review_for(tenant, roles=REVIEWER, subject="rita").Claim(review_pb2.ClaimRequest(item_id=item.id))
    released = await review_for(tenant, roles=("admin",), subject="boss").Release(
        review_pb2.ReleaseRequest(item_id=item.id)
    )
    assert not released.item.HasField("claim")
    history = (await review_for(tenant).Get(review_pb2.GetRequest(item_id=item.id))).history
    assert [(event.type, event.actor_subject) for event in history[-2:]] == [
        (review_pb2.REVIEW_EVENT_TYPE_CLAIMED, "rita"),
        (review_pb2.REVIEW_EVENT_TYPE_RELEASED, "boss"),
    ]
