"""The shipped plan `segment-campaign` end to end, on real services: segmentation of a small customer base
built here, generation with the real local model (a small token cap), review, conductor.

Per chosen segment the run reads the segment's profile and its recommended items, drafts two variants with
them as facts, submits each for review with the provenance the services reported, waits for a reviewer,
makes one experiment per segment of its approved variants, and publishes each approved variant to its arm only:
every member of a segment receives one variant at most, the holdout none.
"""

import asyncio
import importlib.resources
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import json_format, struct_pb2

from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.plans import install_plans
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.campaigns.conftest import until_state

VOICE = "grain-sauvage"
MARKETER = ("analyst", "author", "operator", "publisher")
ITEMS = {
    "ethiopia": "Ethiopia Yirgacheffe",
    "dripper": "V60 dripper",
    "house": "House blend",
    "decaf": "Swiss water decaf",
}


def customer_base() -> list[seg_pb.Transaction]:
    """Twelve regulars who buy the Ethiopian coffee and a dripper often, twelve occasional house-blend buyers."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    transactions = []
    for number in range(24):
        regular = number < 12
        purchases = 6 if regular else 1
        for purchase in range(purchases):
            item = ("ethiopia", "dripper", "ethiopia")[purchase % 3] if regular else ("house", "decaf")[number % 2]
            message = seg_pb.Transaction(
                id=f"t-{number}-{purchase}",
                customer_id=f"c-{number:02d}",
                amount=24.0 if regular else 9.5,
                item_id=item,
            )
            message.time.FromDatetime(start + timedelta(days=7 * purchase + number))
            transactions.append(message)
    return transactions


async def _prepare(mesh, connect, tenant) -> tuple[seg_pb.Segmentation, dict[str, list[str]]]:
    """The customer base, the catalogue, a rule segmentation and the brand's voice; the items each segment's
    most typical customer is recommended."""
    segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(mesh["segmentation"], tenant, roles=MARKETER))
    policy = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
    await segmentation.IngestItems(
        seg_pb.IngestItemsRequest(
            items=[seg_pb.Item(id=item_id, name=name, category="coffee") for item_id, name in ITEMS.items()]
        )
    )
    await segmentation.IngestTransactions(
        seg_pb.IngestTransactionsRequest(transactions=customer_base(), default_policy=policy)
    )
    built = (
        await segmentation.BuildSegmentation(
            seg_pb.BuildSegmentationRequest(
                name="tastes",
                rules=seg_pb.RulesConfig(
                    rules=[seg_pb.SegmentRule(id="regulars", name="Regulars", condition="frequency >= 4")]
                ),
            )
        )
    ).segmentation
    expected = {}
    for segment_id in ("regulars", "other"):
        members = await segmentation.ListSegmentMembers(
            seg_pb.ListSegmentMembersRequest(name="tastes", segment_id=segment_id, page_size=1)
        )
        recommended = await segmentation.Recommend(
            seg_pb.RecommendRequest(
                customer_id=members.members[0].customer_id, segmentation="tastes", limit=2, include_owned=True
            )
        )
        expected[segment_id] = [item.item_id for item in recommended.recommendations]
        assert all(item.item_name == ITEMS[item.item_id] for item in recommended.recommendations)

    samples = importlib.resources.files("matcha.generation") / "samples" / VOICE
    await generation_pb2_grpc.GenerationServiceStub(connect(mesh["generation"], tenant, roles=MARKETER)).LearnVoice(
        generation_pb2.LearnVoiceRequest(
            name=VOICE,
            documents=[
                generation_pb2.SourceDocument(id=page.name, text=page.read_text()) for page in samples.iterdir()
            ],
        )
    )
    return built, expected


def _inputs(**values) -> struct_pb2.Struct:
    inputs = struct_pb2.Struct()
    inputs.update(values)
    return inputs


async def test_segment_campaign_drafts_reviews_and_publishes_variants_per_segment(mesh, connect, tenant):
    built, recommended = await _prepare(mesh, connect, tenant)
    conductor = conductor_pb2_grpc.ConductorServiceStub(connect(mesh["conductor"], tenant, roles=MARKETER))
    installed = {plan.name: plan for plan in await install_plans(conductor)}
    assert installed["segment-campaign"].created

    run = (
        await conductor.StartRun(
            conductor_pb2.StartRunRequest(
                plan_name="segment-campaign",
                inputs=_inputs(
                    segmentation="tastes",
                    segments=["regulars", "other"],
                    brief="Invite our customers to taste this month's coffee.",
                    voice=VOICE,
                    title="This month's coffee",
                    items=2,
                    language="en",
                    target_words=8,
                ),
            )
        )
    ).run
    waiting = await until_state(conductor, run.id, (conductor_pb2.RUN_STATE_WAITING,))
    steps = {step.step_id: step for step in waiting.steps}
    drafts = json_format.MessageToDict(steps["draft"].output)
    submitted = json_format.MessageToDict(steps["submit"].output)
    item_ids = [entry["item_id"] for entry in submitted]
    assert [(entry["segment"], entry["variant"]) for entry in submitted] == [
        (draft["segment"]["id"], draft["variant"]) for draft in drafts
    ]
    assert [(draft["segment"]["id"], draft["variant"]) for draft in drafts] == [
        ("regulars", "A"),
        ("regulars", "B"),
        ("other", "A"),
        ("other", "B"),
    ]

    rita = review_pb2_grpc.ReviewServiceStub(connect(mesh["review"], tenant, roles=("reviewer",), subject="rita"))
    items = [(await rita.Get(review_pb2.GetRequest(item_id=item_id))).item for item_id in item_ids]
    for item, draft in zip(items, drafts, strict=True):
        segment_id = draft["segment"]["id"]
        generated = draft["draft"]
        # Provenance as the services reported it: the generation service's model, voice version and source
        # records (the recommended items given as facts), the conductor's run and plan version.
        assert item.content == generated["text"]
        assert item.provenance.model.id == generated["model"]["id"] != ""
        assert item.provenance.voice_profile == VOICE and item.provenance.voice_profile_version == 1
        assert list(item.provenance.source_record_ids) == recommended[segment_id]
        assert item.provenance.trace_id == generated["provenance"]["trace_id"]
        assert (item.provenance.run_id, item.provenance.plan_name) == (run.id, "segment-campaign")
        assert item.provenance.plan_version == installed["segment-campaign"].version
        assert item.provenance.step == "submit"
        assert (item.audience.segmentation, item.audience.segmentation_version) == ("tastes", built.version)
        assert item.audience.segment_id == segment_id
        assert item.target == f"variant {draft['variant']}" and item.title == "This month's coffee"
        assert "review.scores_attested" in [flag.code for flag in item.flags]
    regulars = next(segment for segment in built.segments if segment.id == "regulars")
    assert drafts[0]["segment"]["top_features"] == list(regulars.top_features)

    # A reviewer approves three variants and rejects one; the run publishes exactly the approved ones.
    for item in items[:3]:
        await rita.Decide(
            review_pb2.DecideRequest(item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
        )
    await rita.Decide(
        review_pb2.DecideRequest(
            item_id=items[3].id,
            version=items[3].version,
            outcome=review_pb2.DECISION_OUTCOME_REJECT,
            comment="too generic for occasional buyers",
        )
    )
    finished = await until_state(
        conductor,
        run.id,
        (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_CANCELLED),
        within_seconds=60,
    )
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    outputs = json_format.MessageToDict(finished.outputs)
    assert outputs["decisions"] == ["REVIEW_STATUS_APPROVED"] * 3 + ["REVIEW_STATUS_REJECTED"]
    assert outputs["items"] == item_ids
    assert len(outputs["publications"]) == 3 and outputs["unreached_segments"] == []
    assert [segment["segment"] for segment in outputs["segments"]] == ["regulars", "other"]
    assert [segment["size"] for segment in outputs["segments"]] == [12, 12]

    async def published() -> list[dict]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = sorted(mesh["published"].glob("*.json")) if mesh["published"].exists() else []
            if len(files) == 3:
                return [json.loads(path.read_text()) for path in files]
            await asyncio.sleep(0.2)
        raise AssertionError("the file sink did not receive the three approved variants")

    documents = {document["item_id"]: document for document in await published()}
    assert set(documents) == {item.id for item in items[:3]}
    for item in items[:3]:
        document = documents[item.id]
        assert document["content"] == item.content
        assert document["audience"]["segment_id"] == item.audience.segment_id
        assert document["audience"]["segmentation"] == "tastes"
        assert document["provenance"]["run_id"] == run.id

    # One experiment per segment over its approved variants (both of the regulars', A alone of the others), made
    # before publication over the segment's members; each variant was delivered to its arm only.
    experiments = {entry["segment"]: entry["experiment_id"] for entry in outputs["experiments"]}
    assert list(experiments) == ["regulars", "other"]
    publisher = review_pb2_grpc.ReviewServiceStub(connect(mesh["review"], tenant, roles=MARKETER))
    everyone = [f"c-{number:02d}" for number in range(24)]
    received: dict[str, list[str]] = {}
    for (segment_id, experiment_id), variants in zip(
        experiments.items(), ([items[0], items[1]], [items[2]]), strict=True
    ):
        results = await publisher.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
        experiment = results.experiment
        assert [(v.label, v.item_id) for v in experiment.variants] == [
            (item.target.removeprefix("variant "), item.id) for item in variants
        ]
        assert experiment.audience_size == 12 and experiment.holdout_share == pytest.approx(0.1)
        assert experiment.name == f"segment-campaign {run.id} / {segment_id}"
        assignments = await publisher.AssignVariants(
            review_pb2.AssignVariantsRequest(experiment_id=experiment_id, customer_ids=everyone)
        )
        arms = {row.customer_id: row.arm for row in assignments.assignments if row.arm}
        assert len(arms) == 12 and assignments.added == 0
        for variant, item in zip(experiment.variants, variants, strict=True):
            document = documents[item.id]
            assert document["publication_id"] == variant.publication_id
            assert document["resolved_audience"]["experiment_id"] == experiment_id
            assert document["resolved_audience"]["arm"] == variant.label
            # The arm's members, and only they, received this variant.
            assert document["audience_members"] == sorted(c for c, arm in arms.items() if arm == variant.label)
            for customer in document["audience_members"]:
                received.setdefault(customer, []).append(item.id)
        held_out = [customer for customer, arm in arms.items() if arm == "holdout"]
        assert not set(held_out) & set(received)
    # Each customer received exactly one variant at most (one if outside the holdout).
    assert all(len(documents_received) == 1 for documents_received in received.values())
    assert sum(1 for item in items[:3] for _ in documents[item.id]["audience_members"]) == len(received)


async def test_unknown_segment_fails_the_run_naming_it(mesh, connect, tenant):
    await _prepare(mesh, connect, tenant)
    conductor = conductor_pb2_grpc.ConductorServiceStub(connect(mesh["conductor"], tenant, roles=MARKETER))
    await install_plans(conductor)
    cases = (
        ("tastes", ["regulars", "no-such-segment"], "audience"),
        ("no-such-segmentation", ["x"], "segmentation"),
    )
    for segmentation, segments, failing_step in cases:
        run = (
            await conductor.StartRun(
                conductor_pb2.StartRunRequest(
                    plan_name="segment-campaign",
                    inputs=_inputs(segmentation=segmentation, segments=segments, brief="Hello.", voice=VOICE),
                )
            )
        ).run
        failed = await until_state(
            conductor, run.id, (conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_SUCCEEDED), within_seconds=60
        )
        assert failed.state == conductor_pb2.RUN_STATE_FAILED
        assert "NOT_FOUND" in failed.error.message
        states = {step.step_id: step.state for step in failed.steps}
        assert states[failing_step] == conductor_pb2.STEP_STATE_FAILED
        # Nothing was drafted, submitted or published.
        assert all(states[step] != conductor_pb2.STEP_STATE_SUCCEEDED for step in ("draft", "submit", "publish"))


async def test_win_back_drafts_one_variant_per_lapsed_group(mesh, connect, tenant):
    await _prepare(mesh, connect, tenant)
    conductor = conductor_pb2_grpc.ConductorServiceStub(connect(mesh["conductor"], tenant, roles=MARKETER))
    await install_plans(conductor)
    run = (
        await conductor.StartRun(
            conductor_pb2.StartRunRequest(
                plan_name="win-back",
                inputs=_inputs(
                    recency_days=20, brief="We miss you.", voice=VOICE, items=2, language="en", target_words=8
                ),
            )
        )
    ).run
    waiting = await until_state(conductor, run.id, (conductor_pb2.RUN_STATE_WAITING,))
    steps = {step.step_id: step for step in waiting.steps}
    groups = json_format.MessageToDict(steps["audience"].output)
    # The occasional buyers bought once, weeks before the regulars' last purchase: one group, one draft.
    assert [(group["segment"]["id"], group["size"]) for group in groups] == [("lapsed_occasional", 12)]
    (item_id,) = json_format.MessageToDict(steps["submit"].output)
    rita = review_pb2_grpc.ReviewServiceStub(connect(mesh["review"], tenant, roles=("reviewer",), subject="rita"))
    item = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item
    assert (item.audience.segmentation, item.audience.segment_id) == ("win-back", "lapsed_occasional")
    (recommended,) = json_format.MessageToDict(steps["recommend"].output)
    assert list(item.provenance.source_record_ids) == [entry["item_id"] for entry in recommended["items"]]
    assert item.provenance.source_record_ids
    assert (item.provenance.run_id, item.provenance.plan_name) == (run.id, "win-back")

    await rita.Decide(
        review_pb2.DecideRequest(
            item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_REJECT, comment="not yet"
        )
    )
    finished = await until_state(
        conductor,
        run.id,
        (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_CANCELLED),
        within_seconds=60,
    )
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    outputs = json_format.MessageToDict(finished.outputs)
    assert outputs["decisions"] == ["REVIEW_STATUS_REJECTED"] and outputs["publications"] == []


async def test_the_next_cycle_starts_from_the_variant_promoted_automatically(mesh, connect, tenant):
    """A first cycle whose experiments promote a winner on their own, outcomes that make one variant of the
    regulars win, and a second cycle whose drafts for the regulars are given the winning text with the brief."""
    await _prepare(mesh, connect, tenant)
    conductor = conductor_pb2_grpc.ConductorServiceStub(connect(mesh["conductor"], tenant, roles=MARKETER))
    await install_plans(conductor)
    rita = review_pb2_grpc.ReviewServiceStub(connect(mesh["review"], tenant, roles=("reviewer",), subject="rita"))
    marketer = review_pb2_grpc.ReviewServiceStub(connect(mesh["review"], tenant, roles=MARKETER))
    cycle = {
        "segmentation": "tastes",
        "segments": ["regulars", "other"],
        "brief": "Invite our customers to taste this month's coffee.",
        "voice": VOICE,
        "items": 2,
        "language": "en",
        "target_words": 8,
    }

    async def start(**inputs) -> conductor_pb2.Run:
        request = conductor_pb2.StartRunRequest(plan_name="segment-campaign", inputs=_inputs(**cycle, **inputs))
        return (await conductor.StartRun(request)).run

    # Twelve customers per segment, no holdout: an arm of a few customers is the minimum sample here.
    first = await start(auto_promote=0.9, min_sample_per_arm=1, holdout_share=0)
    waiting = await until_state(conductor, first.id, (conductor_pb2.RUN_STATE_WAITING,))
    first_drafts = json_format.MessageToDict({step.step_id: step for step in waiting.steps}["draft"].output)
    assert all(draft["previous_winner"] == [] for draft in first_drafts)
    for entry in json_format.MessageToDict({step.step_id: step for step in waiting.steps}["submit"].output):
        item = (await rita.Get(review_pb2.GetRequest(item_id=entry["item_id"]))).item
        await rita.Decide(
            review_pb2.DecideRequest(item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
        )
    finished = await until_state(
        conductor, first.id, (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED), within_seconds=60
    )
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    experiments = {
        entry["segment"]: entry["experiment_id"] for entry in json_format.MessageToDict(finished.outputs)["experiments"]
    }
    regulars = experiments["regulars"]
    created = (
        await marketer.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=regulars))
    ).experiment
    assert created.auto_promote.min_probability_best == pytest.approx(0.9) and created.min_sample_per_arm == 1

    # Every member of the larger arm of the regulars converts, nobody of the other: it is promoted on ingestion.
    assignments = await marketer.AssignVariants(
        review_pb2.AssignVariantsRequest(experiment_id=regulars, customer_ids=[f"c-{n:02d}" for n in range(12)])
    )
    arms: dict[str, list[str]] = {"A": [], "B": []}
    for row in assignments.assignments:
        arms[row.arm].append(row.customer_id)
    winning = max(arms, key=lambda label: len(arms[label]))
    await marketer.IngestOutcomes(
        review_pb2.IngestOutcomesRequest(
            events=[
                review_pb2.OutcomeEvent(
                    event_id=f"buy-{customer}",
                    experiment_id=regulars,
                    customer_id=customer,
                    type=review_pb2.OUTCOME_TYPE_CONVERTED,
                    value=24.0,
                )
                for customer in arms[winning]
            ]
        )
    )
    results = await marketer.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=regulars))
    assert (results.winner, results.experiment.promoter_subject) == (winning, "auto-promotion")
    winner_item = (await marketer.Get(review_pb2.GetRequest(item_id=results.winner_item_id))).item
    assert winner_item.target == f"variant {winning}" and winner_item.audience.segment_id == "regulars"

    # A previous experiment without a winner, or unknown, fails the next cycle before anything is drafted.
    for previous, code in (([experiments["other"]], "FAILED_PRECONDITION"), (["no-such-experiment"], "NOT_FOUND")):
        run = await start(previous_experiments=[regulars, *previous])
        failed = await until_state(
            conductor, run.id, (conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_SUCCEEDED), within_seconds=60
        )
        assert failed.state == conductor_pb2.RUN_STATE_FAILED
        assert code in failed.error.message and previous[0] in failed.error.message, failed.error.message
        states = {step.step_id: step.state for step in failed.steps}
        assert states["previous"] == conductor_pb2.STEP_STATE_FAILED
        assert all(states[step] != conductor_pb2.STEP_STATE_SUCCEEDED for step in ("draft", "submit", "publish"))

    # The next cycle: the regulars' drafts are given the winning text, the others' (no previous winner) are not.
    second = await start(previous_experiments=[regulars])
    waiting = await until_state(conductor, second.id, (conductor_pb2.RUN_STATE_WAITING,))
    steps = {step.step_id: step for step in waiting.steps}
    assert json_format.MessageToDict(steps["previous_winner"].output) == [
        {"segment": "regulars", "text": winner_item.content}
    ]
    drafts = json_format.MessageToDict(steps["draft"].output)
    assert [(draft["segment"]["id"], draft["previous_winner"]) for draft in drafts] == [
        ("regulars", [winner_item.content]),
        ("regulars", [winner_item.content]),
        ("other", []),
        ("other", []),
    ]
    await conductor.CancelRun(conductor_pb2.CancelRunRequest(run_id=second.id))
