"""Attacks on delivery per arm, on the real review and segmentation services, judged by what the file sink actually
received: a publisher trying to send a variant of an experiment to its whole segment, to customers of their choosing
(the holdout), to another experiment's arm, or publishing an item that is no variant of the experiment it names."""

import grpc

from matcha.review.v1 import review_pb2
from tests.review.conftest import eventually
from tests.review.test_review_audiences import PUBLISHER, approved, customer_base, customers, publish, segment
from tests.review.test_review_experiment_arms import (
    REACHABLE_BY_EMAIL,
    arm,
    arms_of,
    by_item,
    experiment_of_two_variants,
)
from tests.security.test_security_audience_consent import publishing, received, review_for  # noqa: F401
from tests.segmentation.conftest import segmentation_server, segmentation_settings  # noqa: F401
from tests.support import refused


async def test_a_variant_reaches_its_arm_and_nobody_else(publishing, review_for, connect, tenant):  # noqa: F811
    start, segmentation, publish_dir = publishing
    await customer_base(connect, segmentation, tenant)
    async with start() as (server, _):
        publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
        created, a, b = await experiment_of_two_variants(publisher, review_for, server, tenant, holdout_share=0.4)
        outsider = await approved(review_for, server, tenant)
        experiment_id = created.experiment.id
        arms = await arms_of(publisher, experiment_id, REACHABLE_BY_EMAIL)
        holdout = sorted(customer for customer, label in arms.items() if label == "holdout")
        in_b = sorted(customer for customer, label in arms.items() if label == "B")

        # Variant A to the whole segment, to no audience, or to customers of the publisher's choosing (the
        # holdout, B's arm): refused, whatever the list.
        for audience in (segment(), None, customers(holdout), customers(in_b)):
            request = review_pb2.PublishRequest(item_id=a.id, content_sha256=a.approved_sha256)
            if audience is not None:
                request.audience.CopyFrom(audience)
            error = await refused(publisher.Publish(request), grpc.StatusCode.FAILED_PRECONDITION)
            assert error.reason == "EXPERIMENT_VARIANT" and error.metadata["arm"] == "A"

        # An item that is no variant of the experiment cannot borrow an arm; nor can a variant name another
        # experiment's arm, or another tenant's experiment.
        other = await publisher.CreateExperiment(
            review_pb2.CreateExperimentRequest(
                variants=by_item(A=await approved(review_for, server, tenant)), audience=segment()
            )
        )
        for item, experiment in ((outsider, experiment_id), (a, other.experiment.id)):
            error = await refused(publisher.Publish(publish(item, arm(experiment))))
            assert error.reason == "NOT_A_VARIANT"
            assert "audience.experiment_arm.experiment_id" in error.field_violations
        stranger = review_for("another-tenant", server=server, roles=PUBLISHER, subject="mallory")
        foreign = await approved(review_for, server, "another-tenant")
        await refused(stranger.Publish(publish(foreign, arm(experiment_id))), grpc.StatusCode.NOT_FOUND)
        # A second experiment cannot take variant A to give it another arm.
        error = await refused(
            publisher.CreateExperiment(
                review_pb2.CreateExperimentRequest(variants=by_item(B=b, A=a), audience=customers(holdout))
            )
        )
        assert set(error.field_violations) == {"variants[0].item_id", "variants[1].item_id"}
        # The holdout cannot be joined or named: AssignVariants adds nobody, and "holdout" is no variant label.
        assert (await arms_of(publisher, experiment_id, ["c-00"])) == {"c-00": ""}
        await refused(
            publisher.CreateExperiment(
                review_pb2.CreateExperimentRequest(
                    variants=[review_pb2.ExperimentVariant(label="holdout", item_id=outsider.id)], audience=segment()
                )
            )
        )

        # Nothing of that reached the sink.
        assert not (publish_dir / tenant).exists() or not list((publish_dir / tenant).glob("*.json"))

        # Published to its arm, A reaches exactly its arm: no holdout member, nobody of B's arm, nobody left out
        # for consent or opt-out.
        await publisher.Publish(publish(a, arm(experiment_id)))
        members = await received(publish_dir, tenant, a.id)
        assert members == sorted(customer for customer, label in arms.items() if label == "A")
        assert not set(members) & (set(holdout) | set(in_b) | {"c-00", "c-01", "c-02"})
        # Repeating the call with the whole segment changes nothing: the first publication is the answer.
        again = await publisher.Publish(publish(a, segment()))
        assert again.already_published and again.audience.arm == "A"

        async def only_a_written() -> bool:
            return [path.stem for path in (publish_dir / tenant).glob("*.json")] == [a.id]

        await eventually(only_a_written)
