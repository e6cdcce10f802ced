"""Experiments made before publication, on the real review and segmentation services: approved items as variants, the
audience resolved at creation (consent and opt-outs for the items' purpose and channel), each variant published to
its own arm only, the holdout receiving nothing, each member counting once toward the frequency cap; refusals write
nothing."""

import grpc

from matcha.review.v1 import review_pb2
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.review.conftest import draft
from tests.review.test_review_audiences import (
    CAMPAIGN,
    CUSTOMERS,
    LISTENING_ONLY,
    PUBLISHER,
    approved,
    audience_review,  # noqa: F401
    customer_base,
    customers,
    delivered,
    digest,
    publish,
    segment,
)
from tests.segmentation.conftest import segmentation_server, segmentation_settings  # noqa: F401
from tests.support import refused

# After `customer_base`: c-00 and c-01 consent to listening only, c-02 opted out of e-mail.
REACHABLE_BY_EMAIL = [c for c in CUSTOMERS if c not in ("c-00", "c-01", "c-02")]


def by_item(**items: review_pb2.ReviewItem) -> list[review_pb2.ExperimentVariant]:
    return [review_pb2.ExperimentVariant(label=label, item_id=item.id) for label, item in items.items()]


def arm(experiment_id: str) -> review_pb2.AudienceSpec:
    return review_pb2.AudienceSpec(experiment_arm=review_pb2.ExperimentArm(experiment_id=experiment_id))


async def experiment_of_two_variants(
    publisher, review_for, server, tenant, **fields
) -> tuple[review_pb2.CreateExperimentResponse, review_pb2.ReviewItem, review_pb2.ReviewItem]:
    """An experiment of two approved variants over the segment in which every arm, the holdout too, has someone.
    Arms are drawn under a fresh random key per experiment, so with 9 members an arm is empty about one time in
    twenty: such a draw is set aside and the experiment made again, with new items (an item joins one experiment)."""
    for _ in range(20):
        a, b = await approved(review_for, server, tenant), await approved(review_for, server, tenant)
        created = await publisher.CreateExperiment(
            review_pb2.CreateExperimentRequest(variants=by_item(A=a, B=b), audience=segment(), **fields)
        )
        if all(size.customers for size in created.arms):
            return created, a, b
    raise AssertionError("twenty draws left an arm empty")


async def arms_of(publisher, experiment_id: str, members) -> dict[str, str]:
    reply = await publisher.AssignVariants(
        review_pb2.AssignVariantsRequest(experiment_id=experiment_id, customer_ids=list(members))
    )
    return {assignment.customer_id: assignment.arm for assignment in reply.assignments}


async def test_each_member_receives_only_their_arms_variant(audience_review, review_for, connect, tenant):  # noqa: F811
    server, publish_dir, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    created, a, b = await experiment_of_two_variants(
        publisher, review_for, server, tenant, name="spring / buyers", holdout_share=0.25
    )
    experiment = created.experiment
    # Resolved at creation as a publication would be: who may not be reached is left out and counted.
    assert created.audience.size == experiment.audience_size == 9
    assert created.audience.members_sha256 == digest(REACHABLE_BY_EMAIL)
    assert (created.audience.excluded_without_consent, created.audience.excluded_opted_out) == (2, 1)
    assert (created.audience.segmentation, created.audience.segment_id) == ("audience", "buyers")
    assert [(v.label, v.item_id, v.publication_id) for v in experiment.variants] == [("A", a.id, ""), ("B", b.id, "")]
    arms = await arms_of(publisher, experiment.id, CUSTOMERS)
    # Nobody joins an audience resolved at creation: those left out have no arm, and nothing is added.
    assert {customer for customer, label in arms.items() if label} == set(REACHABLE_BY_EMAIL)
    sizes = {size.arm: size.customers for size in created.arms}
    assert sizes == {label: sum(1 for x in arms.values() if x == label) for label in ("A", "B", "holdout")}

    received = {}
    for label, item in (("A", a), ("B", b)):
        reply = await publisher.Publish(publish(item, arm(experiment.id)))
        assert (reply.audience.experiment_id, reply.audience.arm) == (experiment.id, label)
        members = sorted(customer for customer, x in arms.items() if x == label)
        assert reply.audience.size == len(members) and reply.audience.members_sha256 == digest(members)
        document = await delivered(publish_dir, tenant, item.id)
        assert document["audience_members"] == members
        assert document["resolved_audience"]["arm"] == label
        assert document["trace_id"] == reply.publication.trace_id != ""
        received[label] = set(document["audience_members"])
    assert not received["A"] & received["B"]
    holdout = {customer for customer, x in arms.items() if x == "holdout"}
    assert not holdout & (received["A"] | received["B"])

    # The variants record their publications, so outcomes keep being ingested by publication id.
    listed = (await publisher.ListExperiments(review_pb2.ListExperimentsRequest())).experiments[0]
    publications = {variant.label: variant.publication_id for variant in listed.variants}
    assert all(publications.values())
    in_a = sorted(received["A"])[0]
    ingester = review_for(tenant, server=server, roles=("operator",))
    await ingester.IngestOutcomes(
        review_pb2.IngestOutcomesRequest(
            events=[
                review_pb2.OutcomeEvent(
                    event_id="e1",
                    publication_id=publications["A"],
                    customer_id=in_a,
                    type=review_pb2.OUTCOME_TYPE_OPENED,
                )
            ]
        )
    )

    # Each member was sent one message: a second campaign in the same week reaches all of them (cap 2 per 7 days),
    # and a third reaches only the holdout, who has received nothing yet.
    second = await approved(review_for, server, tenant)
    assert (await publisher.Publish(publish(second, segment()))).audience.size == 9
    third = await approved(review_for, server, tenant)
    reply = await publisher.Publish(publish(third, segment()))
    assert reply.audience.excluded_frequency_capped == 9 - len(holdout)
    assert set((await delivered(publish_dir, tenant, third.id))["audience_members"]) == holdout


async def test_an_experiment_is_made_once_per_idempotency_key(audience_review, review_for, connect, tenant):  # noqa: F811
    server, _, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    item = await approved(review_for, server, tenant)
    request = review_pb2.CreateExperimentRequest(variants=by_item(A=item), audience=segment())
    key = (("x-matcha-idempotency-key", "run-1/experiment/0"),)
    first = await publisher.CreateExperiment(request, metadata=key)
    again = await publisher.CreateExperiment(request, metadata=key)
    assert again.experiment.id == first.experiment.id and again.audience == first.audience
    assert len((await publisher.ListExperiments(review_pb2.ListExperimentsRequest())).experiments) == 1


async def test_bad_experiments_before_publication_are_refused_and_write_nothing(
    audience_review,  # noqa: F811
    review_for,
    connect,
    tenant,
):
    server, _, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    a, b = await approved(review_for, server, tenant), await approved(review_for, server, tenant)
    pending = (await review_for(tenant, server=server, subject="planner").Submit(draft())).item
    sms = await approved(review_for, server, tenant, channel=review_pb2.CHANNEL_SMS)
    published = await approved(review_for, server, tenant)
    await publisher.Publish(review_pb2.PublishRequest(item_id=published.id, content_sha256=published.approved_sha256))

    async def refused_create(grpc_code=grpc.StatusCode.INVALID_ARGUMENT, **fields):
        return await refused(publisher.CreateExperiment(review_pb2.CreateExperimentRequest(**fields)), grpc_code)

    cases = [
        ({"variants": by_item(A=a, B=pending)}, "variants[1].item_id"),
        ({"variants": by_item(A=a, B=sms)}, "variants[1].item_id"),
        ({"variants": by_item(A=a, B=published)}, "variants[1].item_id"),
        ({"variants": by_item(A=a, B=a)}, "variants[1].item_id"),
        (
            {
                "variants": [
                    review_pb2.ExperimentVariant(label="A", item_id=a.id),
                    review_pb2.ExperimentVariant(label="B", item_id="00000000-0000-0000-0000-000000000000"),
                ]
            },
            "variants[1].item_id",
        ),
        ({"variants": [review_pb2.ExperimentVariant(label="A", item_id="nope")]}, "variants[0].item_id"),
    ]
    for fields, violation in cases:
        error = await refused_create(audience=segment(), **fields)
        assert violation in error.field_violations, (fields, error.field_violations)
    error = await refused_create(variants=by_item(A=a))
    assert "audience" in error.field_violations
    error = await refused_create(variants=by_item(A=a), audience=segment(), customer_ids=["c-05"])
    assert "customer_ids" in error.field_violations
    error = await refused_create(variants=by_item(A=a), audience=segment(), audience_publication_id="p")
    assert "audience_publication_id" in error.field_violations
    error = await refused_create(variants=by_item(A=a), audience=arm("x"))
    assert "audience.experiment_arm" in error.field_violations
    error = await refused_create(
        variants=[
            review_pb2.ExperimentVariant(label="A", item_id=a.id, publication_id="p"),
        ],
        audience=segment(),
    )
    assert "variants[0].publication_id" in error.field_violations
    error = await refused_create(grpc.StatusCode.NOT_FOUND, variants=by_item(A=a), audience=segment(segment_id="x"))
    assert error.reason == "SEGMENT_NOT_FOUND"
    error = await refused_create(variants=by_item(A=a), audience=customers(["c-05", "ghost"]))
    assert error.reason == "UNKNOWN_CUSTOMERS"
    error = await refused_create(
        grpc.StatusCode.FAILED_PRECONDITION, variants=by_item(A=a, B=b), audience=customers(["c-00", "c-01", "c-02"])
    )
    assert error.reason == "EMPTY_AUDIENCE" and error.metadata["without_consent"] == "2"

    # None of it left an experiment or took an item: both are still free for one.
    assert not (await publisher.ListExperiments(review_pb2.ListExperimentsRequest())).experiments
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(variants=by_item(A=a, B=b), audience=customers(["c-05", "c-06", "c-07"]))
    )
    assert created.experiment.audience_size == 3
    error = await refused_create(variants=by_item(A=a), audience=segment())
    assert error.field_violations["variants[0].item_id"] == "already a variant of another experiment"


async def test_an_audience_resolved_at_creation_needs_segmentation(review_for, tenant):
    item = await approved(review_for, None, tenant)
    publisher = review_for(tenant, roles=PUBLISHER, subject="pat")
    error = await refused(
        publisher.CreateExperiment(review_pb2.CreateExperimentRequest(variants=by_item(A=item), audience=segment())),
        grpc.StatusCode.UNAVAILABLE,
    )
    assert error.reason == "SEGMENTATION_NOT_CONFIGURED"


async def test_without_holdout_every_member_receives_one_variant(
    audience_review,  # noqa: F811
    review_for,
    connect,
    tenant,
):
    server, publish_dir, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    a, b = await approved(review_for, server, tenant), await approved(review_for, server, tenant)
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(variants=by_item(A=a, B=b), audience=segment(), holdout_share=0.0)
    )
    received: list[str] = []
    for item in (a, b):
        await publisher.Publish(publish(item, arm(created.experiment.id)))
        received += (await delivered(publish_dir, tenant, item.id))["audience_members"]
    assert sorted(received) == REACHABLE_BY_EMAIL


async def test_consent_withdrawn_after_creation_is_respected_at_publication(
    audience_review,  # noqa: F811
    review_for,
    connect,
    tenant,
):
    server, publish_dir, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    item = await approved(review_for, server, tenant)
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(variants=by_item(A=item), audience=segment(), holdout_share=0.0)
    )
    assert created.experiment.audience_size == 9
    # After the experiment was made, c-05 opts out of e-mail and c-06 withdraws their consent to campaigns.
    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation, tenant))
    await stub.IngestCustomers(
        seg_pb.IngestCustomersRequest(
            customers=[seg_pb.Customer(id="c-05", policy=CAMPAIGN, opted_out_channels=["email"])]
        )
    )
    listening = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation, tenant, purpose="listening"))
    await listening.IngestCustomers(
        seg_pb.IngestCustomersRequest(customers=[seg_pb.Customer(id="c-06", policy=LISTENING_ONLY)])
    )
    reply = await publisher.Publish(publish(item, arm(created.experiment.id)))
    assert (reply.audience.size, reply.audience.excluded_without_consent, reply.audience.excluded_opted_out) == (
        7,
        1,
        1,
    )
    members = (await delivered(publish_dir, tenant, item.id))["audience_members"]
    assert members == [c for c in REACHABLE_BY_EMAIL if c not in ("c-05", "c-06")]
    assert reply.audience.members_sha256 == digest(members)


async def test_ids_with_characters_copy_escapes_keep_their_arm(audience_review, review_for, connect, tenant):  # noqa: F811
    """Ids travel through COPY into the experiment's members and again into the arm's publication."""
    server, publish_dir, segmentation = audience_review
    odd = ["back\\slash", "tab\there", "line\nbreak", "carriage\rreturn", "plain", "é-accent", "\\N"]
    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation, tenant))
    await stub.IngestCustomers(
        seg_pb.IngestCustomersRequest(customers=[seg_pb.Customer(id=customer, policy=CAMPAIGN) for customer in odd])
    )
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    item = await approved(review_for, server, tenant)
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(variants=by_item(A=item), audience=customers(odd), holdout_share=0.0)
    )
    assert created.audience.size == len(odd) and created.audience.members_sha256 == digest(odd)
    assert await arms_of(publisher, created.experiment.id, odd) == dict.fromkeys(odd, "A")
    reply = await publisher.Publish(publish(item, arm(created.experiment.id)))
    assert reply.audience.size == len(odd) and reply.audience.members_sha256 == digest(odd)
    assert (await delivered(publish_dir, tenant, item.id))["audience_members"] == sorted(odd)
