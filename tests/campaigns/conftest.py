"""The campaign mesh: segmentation, generation (the real local model, a small token cap), review feeding outcomes
to segmentation, and the conductor; review and conductor on a database of their own, so no other conductor of
the session claims the run. The listening mesh adds classification, reading collections from the session's
embedding service."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2
from matcha.generation.app import build_generation_service
from matcha.generation.settings import GenerationSettings
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from tests.support import free_port

GENERATION = "matcha.generation.v1.GenerationService"
SEGMENTATION = "matcha.segmentation.v1.SegmentationService"
REVIEW = "matcha.review.v1.ReviewService"
CLASSIFICATION = "matcha.classification.v1.ClassificationService"


@asynccontextmanager
async def campaign_mesh(
    serve,
    *,
    postgres_url: str,
    database_url: str,
    state_dir: Path,
    encoder,
    issuer,
    tenant: str,
    work_dir: Path,
    tracer_provider: TracerProvider | None = None,
    endpoints: dict[str, str] | None = None,
) -> AsyncIterator[dict]:
    """`tracer_provider` traces the capability services (a benchmark times their calls with it); `endpoints`
    gives the conductor more capability services (full service name: address)."""
    common = {"state_dir": state_dir, "listen_address": "127.0.0.1:0"}
    segmentation_settings = SegmentationSettings(database_url=postgres_url, **common)
    generation_settings = GenerationSettings(
        database_url=postgres_url,
        **common,
        generation_local_max_new_tokens=32,
        generation_local_context_length=1024,
        generation_local_threads=1,
    )
    review_port = free_port()
    tokens_dir = work_dir / "tokens"
    tokens_dir.mkdir()
    (tokens_dir / f"{tenant}.jwt").write_text(
        issuer.mint(subject="review-service", tenant=tenant, roles=["review-service"])
    )
    async with (
        serve(
            build_segmentation_service(segmentation_settings), segmentation_settings, tracer_provider
        ) as segmentation,
        serve(
            build_generation_service(generation_settings, encoder=encoder), generation_settings, tracer_provider
        ) as generation,
    ):
        conductor_settings = ConductorSettings(
            database_url=database_url,
            **common,
            conductor_endpoints={
                GENERATION: f"127.0.0.1:{generation.port}",
                SEGMENTATION: f"127.0.0.1:{segmentation.port}",
                REVIEW: f"127.0.0.1:{review_port}",
                **(endpoints or {}),
            },
            conductor_poll_seconds=0.3,
        )
        async with serve(build_conductor_service(conductor_settings), conductor_settings) as conductor:
            review_settings = ReviewSettings(
                database_url=database_url,
                state_dir=state_dir,
                listen_address=f"127.0.0.1:{review_port}",
                review_conductor_address=f"127.0.0.1:{conductor.port}",
                review_segmentation_address=f"127.0.0.1:{segmentation.port}",
                review_outcome_feed_poll_seconds=0.2,
                review_publish_dir=work_dir / "published",
                review_service_tokens_dir=tokens_dir,
                review_delivery_initial_backoff_seconds=0.05,
                review_delivery_max_backoff_seconds=0.2,
            )
            review_service = assemble_review_service(review_settings, tracer_provider)
            async with serve(review_service.definition, review_settings, tracer_provider) as review:
                yield {
                    "segmentation": segmentation,
                    "generation": generation,
                    "conductor": conductor,
                    "review": review,
                    "published": work_dir / "published" / tenant,
                }


@pytest.fixture
async def mesh(serve, postgres_url, isolated_database, state_dir, local_encoder, issuer, tmp_path, tenant):
    async with campaign_mesh(
        serve,
        postgres_url=postgres_url,
        database_url=isolated_database,
        state_dir=state_dir,
        encoder=local_encoder,
        issuer=issuer,
        tenant=tenant,
        work_dir=tmp_path,
    ) as running:
        yield running


@pytest.fixture
async def listening_mesh(
    serve, postgres_url, isolated_database, state_dir, local_encoder, issuer, tmp_path, tenant, embedding_server
):
    """The campaign mesh, and a classification service that reads collections from the session's embedding
    service as the caller (as `matcha up` wires them); no watch scheduler, the plans call DetectSignals."""
    classification_settings = ClassificationSettings(
        database_url=postgres_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        classification_embedding_address=f"127.0.0.1:{embedding_server.port}",
        classification_run_watches=False,
    )
    async with (
        serve(
            build_classification_service(classification_settings, encoder=local_encoder), classification_settings
        ) as classification,
        campaign_mesh(
            serve,
            postgres_url=postgres_url,
            database_url=isolated_database,
            state_dir=state_dir,
            encoder=local_encoder,
            issuer=issuer,
            tenant=tenant,
            work_dir=tmp_path,
            endpoints={CLASSIFICATION: f"127.0.0.1:{classification.port}"},
        ) as running,
    ):
        yield {**running, "embedding": embedding_server, "classification": classification}


async def until_state(conductor, run_id: str, states, within_seconds: float = 600) -> conductor_pb2.Run:
    """Polls the run until it is in one of `states`; a run that ends otherwise fails the test with its error."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        run = (await conductor.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))).run
        if run.state in states:
            return run
        assert run.state in (
            conductor_pb2.RUN_STATE_PENDING,
            conductor_pb2.RUN_STATE_RUNNING,
            conductor_pb2.RUN_STATE_WAITING,
        ), run.error
        await asyncio.sleep(0.3)
    steps = [(step.step_id, conductor_pb2.StepState.Name(step.state), step.error.message) for step in run.steps]
    raise AssertionError(f"run {run_id} did not reach {states}: {steps}")
