"""Experiments on the review service: stable assignment with a holdout, deduplicated all-or-nothing outcome
ingestion, results with Wilson intervals and lift, promotion after the minimum sample, and who may do what."""

import math
import random

import grpc
import pytest

from matcha.review.experiments import assign_arm, wilson_interval
from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft
from tests.support import refused

PUBLISHER = ("publisher", "operator")
CONVERTED = review_pb2.OUTCOME_TYPE_CONVERTED
OPENED = review_pb2.OUTCOME_TYPE_OPENED
DELIVERED = review_pb2.OUTCOME_TYPE_DELIVERED


async def published_variants(review_for, tenant: str, labels: list[str]) -> list[review_pb2.ExperimentVariant]:
    """One approved and published item per label, as experiment variants."""
    reviewer = review_for(tenant, roles=REVIEWER, subject="rita")
    publisher = review_for(tenant, roles=PUBLISHER, subject="pat")
    variants = []
    for label in labels:
        item = (await review_for(tenant, subject="planner").Submit(draft(target=f"variant {label}"))).item
        decided = await reviewer.Decide(
            review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
        )
        published = await publisher.Publish(
            review_pb2.PublishRequest(item_id=item.id, content_sha256=decided.item.approved_sha256)
        )
        variants.append(review_pb2.ExperimentVariant(label=label, publication_id=published.publication.id))
    return variants


async def new_experiment(review_for, tenant, customers: list[str], labels=("A", "B"), **fields):
    variants = await published_variants(review_for, tenant, list(labels))
    publisher = review_for(tenant, roles=PUBLISHER, subject="pat")
    reply = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(name="spring", variants=variants, customer_ids=customers, **fields)
    )
    return reply, publisher


async def arms_of(stub, experiment_id: str, customers: list[str]) -> dict[str, str]:
    reply = await stub.AssignVariants(
        review_pb2.AssignVariantsRequest(experiment_id=experiment_id, customer_ids=customers)
    )
    return {assignment.customer_id: assignment.arm for assignment in reply.assignments}


def event(event_id: str, experiment_id: str, customer: str, outcome=CONVERTED, value=0.0, **fields):
    return review_pb2.OutcomeEvent(
        event_id=event_id, experiment_id=experiment_id, customer_id=customer, type=outcome, value=value, **fields
    )


async def test_assignment_is_stable_and_holds_out_a_tenth(review_for, tenant):
    customers = [f"c{index:05d}" for index in range(10_000)]
    created, publisher = await new_experiment(review_for, tenant, customers)
    experiment_id = created.experiment.id
    sizes = {arm.arm: arm.customers for arm in created.arms}
    assert sum(sizes.values()) == created.experiment.audience_size == 10_000
    assert created.experiment.holdout_share == pytest.approx(0.10)
    # Each experiment draws its own key, so these shares vary from run to run: binomial standard deviations at
    # 10,000 are 0.3 points for the holdout and 0.5 for each variant; bounds of 5 deviations fail by chance less
    # than once in a million runs (the exact shares on a fixed key are checked below, at 3 deviations).
    assert abs(sizes["holdout"] / 10_000 - 0.10) < 0.015
    for label in ("A", "B"):
        assert abs(sizes[label] / 10_000 - 0.45) < 0.025

    first = await arms_of(publisher, experiment_id, customers)
    shuffled = [*reversed(customers[:3000]), "newcomer"]
    again = await publisher.AssignVariants(
        review_pb2.AssignVariantsRequest(experiment_id=experiment_id, customer_ids=shuffled)
    )
    assert again.added == 1
    assert all(first[row.customer_id] == row.arm for row in again.assignments if row.customer_id != "newcomer")
    assert [row.customer_id for row in again.assignments] == shuffled

    # A configurable holdout; a customer's arm in one experiment says nothing of their arm in another.
    other, _ = await new_experiment(review_for, tenant, customers, holdout_share=0.2)
    other_sizes = {arm.arm: arm.customers for arm in other.arms}
    assert abs(other_sizes["holdout"] / 10_000 - 0.20) < 0.02  # 5 deviations of 0.4 points
    other_arms = await arms_of(publisher, other.experiment.id, customers)
    held_out_in_both = sum(1 for c in customers if first[c] == "holdout" and other_arms[c] == "holdout")
    assert abs(held_out_in_both / 10_000 - 0.02) < 0.007  # 5 deviations of 0.14 points


def test_assignment_splits_a_fixed_key_as_configured():
    """The same split on a fixed key, so the tight bounds (3 binomial deviations) can never fail by chance."""
    customers = [f"c{index:05d}" for index in range(10_000)]
    for holdout_share in (0.10, 0.20):
        arms = [assign_arm(b"k" * 32, "experiment-1", customer, ["A", "B"], holdout_share) for customer in customers]
        deviation = math.sqrt(holdout_share * (1 - holdout_share) / 10_000)
        assert abs(arms.count("holdout") / 10_000 - holdout_share) < 3 * deviation
        variant_share = (1 - holdout_share) / 2
        for label in ("A", "B"):
            variant_deviation = math.sqrt(variant_share * (1 - variant_share) / 10_000)
            assert abs(arms.count(label) / 10_000 - variant_share) < 3 * variant_deviation


async def test_outcomes_are_deduplicated_by_event_id(review_for, tenant):
    customers = [f"c{index}" for index in range(200)]
    created, _ = await new_experiment(review_for, tenant, customers)
    experiment_id = created.experiment.id
    events = [event(f"e{index}", experiment_id, customers[index], OPENED) for index in range(50)]
    ingester = review_for(tenant, roles=("operator",))
    reply = await ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=events + events[:5]))
    assert (reply.accepted, reply.duplicates) == (50, 5)
    reply = await ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=events[10:20]))
    assert (reply.accepted, reply.duplicates) == (0, 10)
    # A second open by the same customer is an event, not a new customer.
    reply = await ingester.IngestOutcomes(
        review_pb2.IngestOutcomesRequest(events=[event("e-again", experiment_id, customers[0], OPENED)])
    )
    assert (reply.accepted, reply.duplicates) == (1, 0)

    results = await ingester.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    opened = [next(rate for rate in arm.outcomes if rate.type == OPENED) for arm in results.arms]
    assert sum(rate.events for rate in opened) == 51
    assert sum(rate.customers for rate in opened) == 50


async def test_unknown_events_are_counted_and_refused_with_nothing_stored(review_for, tenant):
    customers = [f"c{index}" for index in range(300)]
    created, publisher = await new_experiment(review_for, tenant, customers)
    experiment = created.experiment
    arms = await arms_of(publisher, experiment.id, customers)
    in_a = next(c for c in customers if arms[c] == "A")
    in_b = next(c for c in customers if arms[c] == "B")
    publication_a = experiment.variants[0].publication_id
    good = [
        event("ok-1", experiment.id, customers[0], DELIVERED),
        event("ok-2", "", in_a, CONVERTED, value=12.5, publication_id=publication_a),
    ]
    bad = [
        event("bad-1", "no-such-experiment", customers[0]),
        event("bad-2", experiment.id, "stranger"),
        event("bad-3", "", in_b, OPENED, publication_id=publication_a),
        event("bad-4", "", customers[0], publication_id="00000000-0000-0000-0000-000000000000"),
    ]
    ingester = review_for(tenant, roles=("operator",))
    error = await refused(ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=good + bad)))
    assert error.reason == "OUTCOMES_REFUSED"
    assert error.metadata == {"refused": "4", "unknown_experiment": "2", "not_in_audience": "1", "wrong_arm": "1"}
    assert set(error.field_violations) == {
        "events[2].experiment_id",
        "events[3].customer_id",
        "events[4].publication_id",
        "events[5].publication_id",
    }
    assert "nothing was stored" in error.message

    results = await ingester.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment.id))
    assert all(rate.events == 0 for arm in results.arms for rate in arm.outcomes)
    # The refused call stored nothing, not even its good events' ids: they are accepted now.
    reply = await ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=good))
    assert (reply.accepted, reply.duplicates) == (2, 0)

    malformed = [event("", experiment.id, customers[0], review_pb2.OUTCOME_TYPE_UNSPECIFIED, value=-1)]
    error = await refused(ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=malformed)))
    assert {"events[0].event_id", "events[0].type", "events[0].value"} <= set(error.field_violations)


def hand_wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson's score interval written out: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = 1.96
    p = x / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def test_wilson_interval_matches_the_textbook_values():
    # 10 successes in 50: 0.1124 to 0.3304; none in 20: 0 to 0.1611.
    assert wilson_interval(10, 50) == pytest.approx((0.1124, 0.3304), abs=5e-5)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=5e-5)


async def test_results_give_rates_intervals_lift_and_probability_best(review_for, tenant):
    customers = [f"c{index:03d}" for index in range(600)]
    created, publisher = await new_experiment(review_for, tenant, customers, holdout_share=0.2)
    experiment_id = created.experiment.id
    arms = await arms_of(publisher, experiment_id, customers)
    # A seeded outcome stream: variant A converts about 30%, B about 10%, the holdout about 5%.
    seeded = random.Random(16)
    chance = {"A": 0.30, "B": 0.10, "holdout": 0.05}
    events, converted, values = [], {"A": 0, "B": 0, "holdout": 0}, {"A": 0.0, "B": 0.0, "holdout": 0.0}
    for customer in customers:
        arm = arms[customer]
        events.append(event(f"o-{customer}", experiment_id, customer, OPENED))
        if seeded.random() < chance[arm]:
            value = round(seeded.uniform(5, 50), 2)
            events.append(event(f"c-{customer}", experiment_id, customer, CONVERTED, value=value))
            converted[arm] += 1
            values[arm] += value
    ingester = review_for(tenant, roles=("operator",))
    await ingester.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=events))

    analyst = review_for(tenant, roles=("analyst",))
    results = await analyst.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert results.outcome == CONVERTED
    assert [arm.arm for arm in results.arms] == ["A", "B", "holdout"]
    audience = {arm: sum(1 for c in customers if arms[c] == arm) for arm in chance}
    by_arm = {arm.arm: arm for arm in results.arms}
    for name, arm in by_arm.items():
        assert arm.audience == audience[name]
        rate = next(rate for rate in arm.outcomes if rate.type == CONVERTED)
        assert (rate.customers, rate.events) == (converted[name], converted[name])
        assert rate.rate == pytest.approx(converted[name] / audience[name])
        assert (rate.ci_low, rate.ci_high) == pytest.approx(hand_wilson(converted[name], audience[name]), abs=1e-4)
        assert rate.value_sum == pytest.approx(values[name])
        opened = next(rate for rate in arm.outcomes if rate.type == OPENED)
        assert (opened.customers, opened.rate) == (audience[name], 1.0)
    holdout_rate = converted["holdout"] / audience["holdout"]
    for name in ("A", "B"):
        own = converted[name] / audience[name]
        assert by_arm[name].lift_absolute == pytest.approx(own - holdout_rate)
        assert by_arm[name].lift == pytest.approx((own - holdout_rate) / holdout_rate)
    assert not by_arm["holdout"].HasField("lift")
    assert sum(arm.probability_best for arm in results.arms) == pytest.approx(1.0)
    assert by_arm["A"].probability_best > 0.99
    # A fixed seed: the same counts give the same probabilities.
    again = await analyst.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert [arm.probability_best for arm in again.arms] == [arm.probability_best for arm in results.arms]

    on_opens = await analyst.GetCampaignResults(
        review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id, outcome=OPENED)
    )
    assert {arm.arm: arm.lift for arm in on_opens.arms if arm.arm != "holdout"} == {"A": 0.0, "B": 0.0}
    error = await refused(
        analyst.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id, outcome=42))
    )
    assert "outcome" in error.field_violations
    await refused(
        analyst.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id="missing")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_variant_is_promoted_only_after_the_minimum_sample(review_for, tenant):
    created, publisher = await new_experiment(
        review_for, tenant, [f"c{index}" for index in range(60)], min_sample_per_arm=40
    )
    experiment_id = created.experiment.id
    promote = review_pb2.PromoteVariantRequest(experiment_id=experiment_id, variant="B")
    error = await refused(publisher.PromoteVariant(promote), grpc.StatusCode.FAILED_PRECONDITION)
    assert error.reason == "SAMPLE_TOO_SMALL" and error.metadata["min_sample_per_arm"] == "40"

    await arms_of(publisher, experiment_id, [f"d{index}" for index in range(1000)])
    reply = await publisher.PromoteVariant(promote)
    assert (reply.experiment.promoted_variant, reply.experiment.promoter_subject) == ("B", "pat")
    assert not reply.already_promoted
    assert (await publisher.PromoteVariant(promote)).already_promoted
    error = await refused(
        publisher.PromoteVariant(review_pb2.PromoteVariantRequest(experiment_id=experiment_id, variant="A")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error.reason == "ALREADY_PROMOTED"
    for variant in ("holdout", "Z"):
        error = await refused(
            publisher.PromoteVariant(review_pb2.PromoteVariantRequest(experiment_id=experiment_id, variant=variant))
        )
        assert "variant" in error.field_violations

    results = await publisher.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert results.winner == "B" and results.minimum_sample_reached
    assert [arm.arm for arm in results.arms if arm.promoted] == ["B"]


async def test_experiments_refuse_bad_definitions(review_for, tenant):
    variants = await published_variants(review_for, tenant, ["A"])
    publisher = review_for(tenant, roles=PUBLISHER, subject="pat")
    error = await refused(
        publisher.CreateExperiment(
            review_pb2.CreateExperimentRequest(
                experiment_id="bad id",
                variants=[
                    variants[0],
                    review_pb2.ExperimentVariant(label="holdout", publication_id=variants[0].publication_id),
                    review_pb2.ExperimentVariant(label="A", publication_id="nope"),
                ],
                holdout_share=0.7,
                customer_ids=["ok", ""],
            )
        )
    )
    assert {
        "experiment_id",
        "variants[1].label",
        "variants[2].label",
        "holdout_share",
        "customer_ids[1]",
    } <= set(error.field_violations)
    await publisher.CreateExperiment(review_pb2.CreateExperimentRequest(experiment_id="spring-1", variants=variants))
    error = await refused(
        publisher.CreateExperiment(review_pb2.CreateExperimentRequest(experiment_id="spring-2", variants=variants))
    )
    assert error.field_violations == {"variants[0].publication_id": "already a variant of another experiment"}
    others = await published_variants(review_for, tenant, ["A"])
    await refused(
        publisher.CreateExperiment(review_pb2.CreateExperimentRequest(experiment_id="spring-1", variants=others)),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_an_analyst_reads_results_but_cannot_ingest_promote_or_create(review_for, tenant):
    created, _ = await new_experiment(review_for, tenant, [f"c{index}" for index in range(10)])
    experiment_id = created.experiment.id
    analyst = review_for(tenant, roles=("analyst",), subject="ana")
    denied = grpc.StatusCode.PERMISSION_DENIED
    error = await refused(
        analyst.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=[event("x", experiment_id, "c1")])), denied
    )
    assert error.reason == "MISSING_ROLE"
    await refused(
        analyst.PromoteVariant(review_pb2.PromoteVariantRequest(experiment_id=experiment_id, variant="A")), denied
    )
    await refused(analyst.CreateExperiment(review_pb2.CreateExperimentRequest(name="x")), denied)
    await refused(
        analyst.AssignVariants(review_pb2.AssignVariantsRequest(experiment_id=experiment_id, customer_ids=["z"])),
        denied,
    )
    # A publisher alone does not ingest outcomes: that is an operator's data.
    publisher_only = review_for(tenant, roles=("publisher",), subject="pat")
    await refused(
        publisher_only.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=[event("x", experiment_id, "c1")])),
        denied,
    )
    results = await analyst.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert results.experiment.audience_size == 10


async def test_erasing_a_customer_forgets_their_arm_and_outcomes_and_takes_them_out_of_the_results(review_for, tenant):
    customers = [f"c{index}" for index in range(40)]
    created, _ = await new_experiment(review_for, tenant, customers)
    experiment_id = created.experiment.id
    ingester = review_for(tenant, roles=("operator",))
    await ingester.IngestOutcomes(
        review_pb2.IngestOutcomesRequest(
            events=[
                event("e1", experiment_id, "c7", CONVERTED, value=12.5),
                event("e2", experiment_id, "c7", OPENED),
                event("e3", experiment_id, "c8", CONVERTED, value=4.0),
            ]
        )
    )
    auditor = review_for(tenant, roles=("auditor",))
    described = await auditor.DescribeSubject(review_pb2.DescribeSubjectRequest(subject_id="c7"))
    assert {(holding.kind, holding.count) for holding in described.holdings} == {
        ("experiment-arms", 1),
        ("outcome-events", 2),
    }

    admin = review_for(tenant, roles=("admin",))
    erased = await admin.EraseSubject(review_pb2.EraseSubjectRequest(subject_id="c7"))
    assert (erased.erased_experiment_arms, erased.erased_outcome_events) == (1, 2)
    assert not (await auditor.DescribeSubject(review_pb2.DescribeSubjectRequest(subject_id="c7"))).holdings

    results = await ingester.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert sum(arm.audience for arm in results.arms) == 39
    converted = [next(rate for rate in arm.outcomes if rate.type == CONVERTED) for arm in results.arms]
    assert (sum(rate.customers for rate in converted), sum(rate.events for rate in converted)) == (1, 1)
    assert sum(rate.value_sum for rate in converted) == pytest.approx(4.0)
    opened = [next(rate for rate in arm.outcomes if rate.type == OPENED) for arm in results.arms]
    assert sum(rate.events for rate in opened) == 0
