"""Automatic promotion: an experiment made with an `auto_promote` rule has its winner recorded by the ingestion of
outcomes once every arm has the minimum sample and one variant is clearly best; never before, never twice, never
the holdout, never without the rule."""

import math

import grpc
import pytest

from matcha.review.v1 import review_pb2
from tests.review.test_review_experiments import CONVERTED, OPENED, arms_of, event, new_experiment
from tests.support import refused

RULE = review_pb2.AutoPromotion()  # 0.95 on CONVERTED


async def convert(review_for, tenant, experiment_id: str, arms: dict[str, str], shares: dict[str, float], tag: str):
    """Converts the first `shares[arm]` of each arm's members (in id order), as events named `tag`."""
    events = []
    for arm, share in shares.items():
        members = sorted(customer for customer, assigned in arms.items() if assigned == arm)
        events += [
            event(f"{tag}-{customer}", experiment_id, customer, CONVERTED)
            for customer in members[: int(len(members) * share)]
        ]
    ingester = review_for(tenant, roles=("operator",))
    return await ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=events))


async def results_of(stub, experiment_id: str) -> review_pb2.GetCampaignResultsResponse:
    return await stub.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))


async def test_a_clear_winner_is_promoted_once_every_arm_has_the_minimum_sample(review_for, tenant):
    customers = [f"c{index:04d}" for index in range(1000)]
    # The holdout (a tenth, about 100 customers) is under the minimum of 200 until more customers join.
    created, publisher = await new_experiment(review_for, tenant, customers, min_sample_per_arm=200, auto_promote=RULE)
    experiment = created.experiment
    assert experiment.auto_promote.min_probability_best == pytest.approx(0.95)
    assert experiment.auto_promote.outcome == CONVERTED
    arms = await arms_of(publisher, experiment.id, customers)
    await convert(review_for, tenant, experiment.id, arms, {"A": 0.2, "B": 0.05}, "first")
    results = await results_of(publisher, experiment.id)
    assert not results.minimum_sample_reached and results.winner == "" and results.winner_item_id == ""
    error = await refused(
        publisher.GetCampaignResults(
            review_pb2.GetCampaignResultsRequest(experiment_id=experiment.id, require_winner=True)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error.reason == "NO_WINNER" and error.metadata["experiment_id"] == experiment.id
    assert {arm.arm: arm.probability_best for arm in results.arms}["A"] > 0.99

    more = [f"d{index:04d}" for index in range(2000)]
    arms |= await arms_of(publisher, experiment.id, more)
    # Adding customers changes no counter: the rule is judged on the next ingestion that does.
    assert (await results_of(publisher, experiment.id)).winner == ""
    await convert(review_for, tenant, experiment.id, arms, {"A": 0.2, "B": 0.05}, "second")
    results = await results_of(publisher, experiment.id)
    assert results.minimum_sample_reached
    assert (results.winner, results.experiment.promoter_subject) == ("A", "auto-promotion")
    assert [arm.arm for arm in results.arms if arm.promoted] == ["A"]
    # The winner's review item: the one its publication published.
    winner = await results_of(publisher, experiment.id)
    item = (await publisher.Get(review_pb2.GetRequest(item_id=winner.winner_item_id))).item
    assert item.publication.id == experiment.variants[0].publication_id and item.target == "variant A"
    required = await publisher.GetCampaignResults(
        review_pb2.GetCampaignResultsRequest(experiment_id=experiment.id, require_winner=True)
    )
    assert required.winner == "A"
    promoted_at = results.experiment.promote_time
    listed = await publisher.ListExperiments(review_pb2.ListExperimentsRequest())
    (shown,) = [row for row in listed.experiments if row.id == experiment.id]
    assert (shown.promoted_variant, shown.promoter_subject) == ("A", "auto-promotion")

    # Never twice: B turning out far better later changes nothing, and a publisher cannot promote B either.
    await convert(review_for, tenant, experiment.id, arms, {"B": 0.9}, "third")
    results = await results_of(publisher, experiment.id)
    assert results.winner == "A" and results.experiment.promote_time == promoted_at
    assert {arm.arm: arm.probability_best for arm in results.arms}["B"] > 0.99
    error = await refused(
        publisher.PromoteVariant(review_pb2.PromoteVariantRequest(experiment_id=experiment.id, variant="B")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error.reason == "ALREADY_PROMOTED"


async def test_nothing_is_promoted_without_a_clear_best_variant_or_without_the_rule(review_for, tenant):
    customers = [f"c{index:04d}" for index in range(1000)]
    cases = (
        # A and B alike: neither is clearly best.
        ({"auto_promote": RULE}, {"A": 0.1, "B": 0.1}),
        # The holdout does best: it is never promoted, and no variant is best.
        ({"auto_promote": RULE}, {"holdout": 0.5, "A": 0.05, "B": 0.02}),
        # A clearly best, but the experiment has no rule.
        ({}, {"A": 0.2, "B": 0.02}),
        # A clearly best on conversions, the rule judges opens.
        ({"auto_promote": review_pb2.AutoPromotion(outcome=OPENED)}, {"A": 0.2, "B": 0.02}),
    )
    for fields, shares in cases:
        created, publisher = await new_experiment(review_for, tenant, customers, min_sample_per_arm=50, **fields)
        experiment_id = created.experiment.id
        arms = await arms_of(publisher, experiment_id, customers)
        reply = await convert(review_for, tenant, experiment_id, arms, shares, experiment_id)
        assert reply.accepted > 0
        results = await results_of(publisher, experiment_id)
        assert results.minimum_sample_reached and results.winner == "", (fields, shares)
        assert results.experiment.promoter_subject == ""
        assert results.experiment.HasField("auto_promote") == bool(fields)


async def test_a_stricter_threshold_waits_for_stronger_evidence(review_for, tenant):
    customers = [f"c{index:04d}" for index in range(1000)]
    strict = review_pb2.AutoPromotion(min_probability_best=0.9999)
    created, publisher = await new_experiment(review_for, tenant, customers, min_sample_per_arm=50, auto_promote=strict)
    experiment_id = created.experiment.id
    arms = await arms_of(publisher, experiment_id, customers)
    await convert(review_for, tenant, experiment_id, arms, {"A": 0.06, "B": 0.04}, "weak")
    results = await results_of(publisher, experiment_id)
    best = {arm.arm: arm.probability_best for arm in results.arms}
    assert 0.5 < best["A"] < 0.9999 and results.winner == ""
    await convert(review_for, tenant, experiment_id, arms, {"A": 0.5}, "strong")
    assert (await results_of(publisher, experiment_id)).winner == "A"


async def test_an_invalid_threshold_or_outcome_is_refused_on_its_field(review_for, tenant):
    for threshold in (0.5, 0.3, 1.5, -1.0, math.nan, math.inf):
        error = await refused(
            new_experiment(
                review_for,
                tenant,
                ["c1"],
                auto_promote=review_pb2.AutoPromotion(min_probability_best=threshold),
            )
        )
        assert set(error.field_violations) == {"auto_promote.min_probability_best"}, threshold
    error = await refused(new_experiment(review_for, tenant, ["c1"], auto_promote=review_pb2.AutoPromotion(outcome=99)))
    assert set(error.field_violations) == {"auto_promote.outcome"}
    # Nothing was created by the refusals.
    publisher = review_for(tenant, roles=("publisher",))
    listed = await publisher.ListExperiments(review_pb2.ListExperimentsRequest())
    assert listed.experiments == []
