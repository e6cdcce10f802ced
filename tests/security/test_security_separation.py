"""Separation of duties: one person holding every review role cannot carry a draft from submission to
publication alone, whatever the submission asks for."""

import grpc

from matcha.review.v1 import review_pb2, review_pb2_grpc
from tests.support import refused

ALL_HATS = ("author", "reviewer", "publisher")


def approve(item, **kwargs) -> review_pb2.DecideRequest:
    return review_pb2.DecideRequest(
        item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE, **kwargs
    )


async def test_one_person_cannot_submit_approve_and_publish(review_server, connect, tenant):
    mallory = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=ALL_HATS, subject="mallory"))
    trent = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=ALL_HATS, subject="trent"))
    peggy = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=ALL_HATS, subject="peggy"))
    # The submitter opts out of four-eyes: the tenant's policy holds anyway.
    item = (
        await mallory.Submit(
            review_pb2.SubmitRequest(
                title="Sale", content="Everything must go.", channel=review_pb2.CHANNEL_EMAIL, four_eyes=False
            )
        )
    ).item
    assert item.four_eyes
    details = await refused(mallory.Decide(approve(item)), grpc.StatusCode.PERMISSION_DENIED)
    assert details.reason == "FOUR_EYES"

    # An approver who edits has written a new version: that one needs someone else's approval.
    edit = review_pb2.ContentEdit(title="Sale", content="Everything must go, today only, no refunds.")
    proposed = (await trent.Decide(approve(item, edit=edit))).item
    assert proposed.status == review_pb2.REVIEW_STATUS_REVISED
    details = await refused(trent.Decide(approve(proposed)), grpc.StatusCode.PERMISSION_DENIED)
    assert details.reason == "FOUR_EYES"

    # Nor may the submitter approve it: a third person does...
    details = await refused(mallory.Decide(approve(proposed)), grpc.StatusCode.PERMISSION_DENIED)
    assert details.reason == "FOUR_EYES"
    approved = (await peggy.Decide(approve(proposed))).item
    assert approved.status == review_pb2.REVIEW_STATUS_APPROVED and approved.approved_version == 2
    # ...and so may not publish it; someone who did not approve it may.
    publish = review_pb2.PublishRequest(item_id=item.id, content_sha256=approved.approved_sha256)
    details = await refused(peggy.Publish(publish), grpc.StatusCode.PERMISSION_DENIED)
    assert details.reason == "FOUR_EYES"
    published = await mallory.Publish(publish)
    assert published.publication.publisher_subject == "mallory"


async def test_a_reviewer_without_the_publisher_role_cannot_publish(review_server, connect, tenant):
    author = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=("author",), subject="ann"))
    rita = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=("reviewer",), subject="rita"))
    item = (
        await author.Submit(review_pb2.SubmitRequest(title="T", content="Copy.", channel=review_pb2.CHANNEL_EMAIL))
    ).item
    approved = (await rita.Decide(approve(item))).item
    publish = review_pb2.PublishRequest(item_id=item.id, content_sha256=approved.approved_sha256)
    details = await refused(rita.Publish(publish), grpc.StatusCode.PERMISSION_DENIED)
    assert (details.reason, details.metadata["role"]) == ("MISSING_ROLE", "publisher")
