"""Orchestration overhead of the shipped `segment-campaign` plan: 10 segments x 2 variants on real services.

The run's working time is the drafting phase (from its start to the last submission) and the publishing phase
(from the last decision to its end); the wait for reviewers is not the conductor's. The capability services
(segmentation, generation with the real local model, review) are traced: the time at least one of their server
spans was open is the capabilities' time; the rest of the working time is orchestration (scheduling, CEL,
checkpoints, audit rows, per-hop tokens, the network between services). Target: at most 5% of the working time.
"""

import asyncio
import importlib.resources
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import struct_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from matcha.cli import campaign_loop
from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.plans import install_plans
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.campaigns.conftest import campaign_mesh
from tests.campaigns.test_segment_campaign_plan import ITEMS, MARKETER, VOICE

pytestmark = pytest.mark.bench

SEGMENTS, VARIANTS, CUSTOMERS_PER_SEGMENT = 10, ("A", "B"), 10
TARGET_SHARE = 0.05


def customer_base() -> list[seg_pb.Transaction]:
    """Ten spending bands of ten customers; each customer buys items of the catalogue."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    items = list(ITEMS)
    transactions = []
    for band in range(SEGMENTS):
        for number in range(CUSTOMERS_PER_SEGMENT):
            customer = f"c-{band}-{number}"
            for purchase in range(2):
                message = seg_pb.Transaction(
                    id=f"t-{customer}-{purchase}",
                    customer_id=customer,
                    amount=10.0 * (band + 1),
                    item_id=items[(band + number + purchase) % len(items)],
                )
                message.time.FromDatetime(start + timedelta(days=number + 7 * purchase))
                transactions.append(message)
    return transactions


def busy_seconds(spans, start_ns: int, end_ns: int) -> float:
    """Length of the union of the server spans' intervals, clipped to [start, end]."""
    intervals = sorted(
        (max(span.start_time, start_ns), min(span.end_time, end_ns))
        for span in spans
        if span.kind == SpanKind.SERVER and span.end_time > start_ns and span.start_time < end_ns
    )
    total, current_start, current_end = 0, None, None
    for low, high in intervals:
        if current_end is None or low > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = low, high
        else:
            current_end = max(current_end, high)
    if current_end is not None:
        total += current_end - current_start
    return total / 1e9


def nanoseconds(timestamp) -> int:
    return timestamp.ToNanoseconds()


async def test_segment_campaign_orchestration_overhead(
    serve, postgres_url, isolated_database, state_dir, local_encoder, issuer, tmp_path, tenant, connect
):
    exporter = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    async with campaign_mesh(
        serve,
        postgres_url=postgres_url,
        database_url=isolated_database,
        state_dir=state_dir,
        encoder=local_encoder,
        issuer=issuer,
        tenant=tenant,
        work_dir=tmp_path,
        tracer_provider=tracing,
    ) as mesh:
        segmentation = segmentation_pb2_grpc.SegmentationServiceStub(
            connect(mesh["segmentation"], tenant, roles=MARKETER)
        )
        policy = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
        await segmentation.IngestItems(
            seg_pb.IngestItemsRequest(items=[seg_pb.Item(id=key, name=name) for key, name in ITEMS.items()])
        )
        await segmentation.IngestTransactions(
            seg_pb.IngestTransactionsRequest(transactions=customer_base(), default_policy=policy)
        )
        rules = [
            seg_pb.SegmentRule(id=f"band_{band}", name=f"Band {band}", condition=f"monetary >= {10.0 * (band + 1)}")
            for band in reversed(range(SEGMENTS))
        ]
        await segmentation.BuildSegmentation(
            seg_pb.BuildSegmentationRequest(name="bands", rules=seg_pb.RulesConfig(rules=rules))
        )
        samples = importlib.resources.files("matcha.generation") / "samples" / VOICE
        await generation_pb2_grpc.GenerationServiceStub(connect(mesh["generation"], tenant, roles=MARKETER)).LearnVoice(
            generation_pb2.LearnVoiceRequest(
                name=VOICE,
                documents=[
                    generation_pb2.SourceDocument(id=page.name, text=page.read_text()) for page in samples.iterdir()
                ],
            )
        )
        conductor = conductor_pb2_grpc.ConductorServiceStub(connect(mesh["conductor"], tenant, roles=MARKETER))
        await install_plans(conductor)

        inputs = struct_pb2.Struct()
        inputs.update(
            {
                "segmentation": "bands",
                "segments": [f"band_{band}" for band in range(SEGMENTS)],
                "variants": list(VARIANTS),
                "brief": "Invite our customers to taste this month's coffee.",
                "voice": VOICE,
                "items": 2,
                "language": "en",
                "target_words": 8,
            }
        )
        run_id = (
            await conductor.StartRun(conductor_pb2.StartRunRequest(plan_name="segment-campaign", inputs=inputs))
        ).run.id
        waiting = await campaign_loop.until(
            conductor, run_id, lambda run: run.state == conductor_pb2.RUN_STATE_WAITING, 1800
        )
        drafts = campaign_loop.drafts_of(waiting)
        assert len(drafts) == SEGMENTS * len(VARIANTS)
        reviewer = review_pb2_grpc.ReviewServiceStub(
            connect(mesh["review"], tenant, roles=("reviewer",), subject="rita")
        )
        for draft in drafts:
            await reviewer.Decide(
                review_pb2.DecideRequest(item_id=draft.item_id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
            )
        done = await campaign_loop.until(
            conductor, run_id, lambda run: run.state == conductor_pb2.RUN_STATE_SUCCEEDED, 600
        )
        await asyncio.sleep(0.5)  # the last spans end after the replies that completed the run

    steps = {step.step_id: step for step in done.steps}
    phases = [
        (nanoseconds(done.start_time), nanoseconds(steps["submit"].end_time)),
        (nanoseconds(steps["approval"].end_time), nanoseconds(done.end_time)),
    ]
    spans = exporter.get_finished_spans()
    lengths = [(end - start) / 1e9 for start, end in phases]
    busy = [busy_seconds(spans, start, end) for start, end in phases]
    working, capabilities = sum(lengths), sum(busy)
    share = (working - capabilities) / working
    print(
        f"\nsegment-campaign, {SEGMENTS} segments x {len(VARIANTS)} variants: working time {working:.2f} s, "
        f"capability calls {capabilities:.2f} s, orchestration {working - capabilities:.2f} s = {share:.1%} "
        f"(target <= {TARGET_SHARE:.0%}); drafting {lengths[0]:.2f} s ({lengths[0] - busy[0]:.2f} s orchestration), "
        f"experiments and publishing {lengths[1]:.2f} s ({lengths[1] - busy[1]:.2f} s orchestration)"
    )
    assert share <= TARGET_SHARE
