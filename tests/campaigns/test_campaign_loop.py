"""The demo's main job end to end on real services: variants per segment of an RFM segmentation, a demo
reviewer's decisions, the experiment per segment the plan makes before publishing each variant to its arm,
simulated outcomes, results, and the converters moving between segments once their conversions reached
segmentation."""

import re

from matcha.cli import campaign_loop
from matcha.cli.demo import CAMPAIGN_SEGMENTATION, run_campaign_demo
from matcha.conductor.v1 import conductor_pb2_grpc
from matcha.plans import install_plans
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.campaigns.test_segment_campaign_plan import MARKETER, _prepare


async def test_demo_campaign_loop_runs_from_segments_to_moving_customers(
    mesh,
    connect,
    issuer,
    tenant,
    monkeypatch,
    capsys,
):
    await _prepare(mesh, connect, tenant)
    segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(mesh["segmentation"], tenant, roles=MARKETER))
    built = (
        await segmentation.BuildSegmentation(
            seg_pb.BuildSegmentationRequest(name=CAMPAIGN_SEGMENTATION, rules=seg_pb.RulesConfig())
        )
    ).segmentation
    await install_plans(conductor_pb2_grpc.ConductorServiceStub(connect(mesh["conductor"], tenant, roles=MARKETER)))
    # A small base, and arms drawn under a random key: everyone converts (on their own if not through the e-mail),
    # so that outcomes and moves are certain whatever the draw.
    monkeypatch.setattr(campaign_loop, "OPEN_BASE", 0.76)
    monkeypatch.setattr(campaign_loop, "CLICK_GIVEN_OPEN", 1.0)
    monkeypatch.setattr(campaign_loop, "ORGANIC", 1.0)

    addresses = {name: f"127.0.0.1:{mesh[name].port}" for name in ("generation", "conductor", "review", "segmentation")}
    marketer = issuer.mint(subject="marketer", tenant=tenant, roles=list(MARKETER))
    reviewer = issuer.mint(subject="demo-reviewer", tenant=tenant, roles=["reviewer"])
    await run_campaign_demo(addresses, marketer, reviewer, "http://gateway/ui/campaigns.html#token=x")
    shown = capsys.readouterr().out

    assert len(re.findall(r"^  approved: ", shown, re.MULTILINE)) == 3
    assert len(re.findall(r"^  rejected: ", shown, re.MULTILINE)) == 1
    assert "SIMULATED OUTCOMES" in shown and "DEMO REVIEWER" in shown
    review = review_pb2_grpc.ReviewServiceStub(connect(mesh["review"], tenant, roles=MARKETER))
    experiments = (await review.ListExperiments(review_pb2.ListExperimentsRequest())).experiments
    # One experiment per chosen segment (the two largest) over its approved variants, made by the run; every member
    # of the segment is in its audience, and each variant was published to its arm.
    assert sorted(len(experiment.variants) for experiment in experiments) == [1, 2]
    # Each variant whose arm the draw gave someone was published to it (an empty arm, possible in so small a base,
    # is not published).
    published = 0
    for experiment in experiments:
        results = await review.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment.id))
        reached = {arm.arm for arm in results.arms if arm.audience > 0}
        for variant in experiment.variants:
            assert variant.item_id and bool(variant.publication_id) == (variant.label in reached)
            published += bool(variant.publication_id)
    assert published >= 1 and f"published {published} variants" in shown
    assert "experiments made by the run before publication" in shown
    largest = sorted((segment.size for segment in built.segments), reverse=True)[:2]
    assert sorted(experiment.audience_size for experiment in experiments) == sorted(largest)
    for experiment in experiments:
        assert f"campaign page: http://gateway/ui/campaigns.html#token=x&experiment={experiment.id}" in shown
        results = await review.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment.id))
        converted = sum(
            rate.customers
            for arm in results.arms
            for rate in arm.outcomes
            if rate.type == review_pb2.OUTCOME_TYPE_CONVERTED
        )
        assert converted > 0
    moved = re.search(r"customers moving: (\d+) converters", shown)
    assert moved and int(moved[1]) > 0
    assert re.search(r"^\s+\d+\s+\S+ -> \S+", shown, re.MULTILINE), shown
