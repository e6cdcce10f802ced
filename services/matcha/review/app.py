"""Assembles the review service from its settings."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.review.attestation import AttestationVerifier
from matcha.review.audiences import SegmentationMembers, with_audience_members
from matcha.review.core import Limits, ReviewCore
from matcha.review.delivery import ConductorSignaller, Deliver, FileSink, OutboxDispatcher, RetryPolicy, WebhookSink
from matcha.review.experiment_store import ExperimentStore
from matcha.review.experiments import ExperimentCore
from matcha.review.outcome_feed import OutcomeFeed
from matcha.review.servicer import ReviewServicer, encode_signal
from matcha.review.settings import ReviewSettings
from matcha.review.store import ReviewStore
from matcha.review.tenant_channels import TenantChannels
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.database import configured_database, load_migrations
from matcha.runtime.server import ServiceDefinition

SERVICE_NAME = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name
FILES_SINK = "files"
WEBHOOK_SINK = "webhook"

logger = logging.getLogger(__name__)


@dataclass
class ReviewService:
    """The assembled service: its server definition, and its core (tests drive the expiry sweep directly)."""

    definition: ServiceDefinition
    core: ReviewCore


async def _every(seconds: float, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            logger.exception("periodic work failed; retrying at the next period")


def assemble_review_service(settings: ReviewSettings, tracer_provider: TracerProvider | None = None) -> ReviewService:
    database = configured_database(settings)
    transport = settings.transport
    store = ReviewStore(database)
    # Without a conductor, run signals wait in the outbox for a replica that has one.
    signaller = (
        ConductorSignaller(
            settings.review_conductor_address,
            settings.tokens_dir,
            timeout_seconds=settings.review_delivery_timeout_seconds,
            tracer_provider=tracer_provider,
            transport=transport,
        )
        if settings.review_conductor_address
        else None
    )
    sinks: dict[str, Deliver] = {}
    webhook: WebhookSink | None = None
    files: FileSink | None = None
    if settings.review_publish_dir is not None:
        files = FileSink(settings.review_publish_dir)
        sinks[FILES_SINK] = with_audience_members(files.deliver, database)
    if settings.review_webhook_url:
        webhook = WebhookSink(settings.review_webhook_url, timeout_seconds=settings.review_webhook_timeout_seconds)
        sinks[WEBHOOK_SINK] = with_audience_members(webhook.deliver, database)
    dispatcher = OutboxDispatcher(
        store,
        signaller.deliver if signaller else None,
        sinks,
        RetryPolicy(
            initial_backoff_seconds=settings.review_delivery_initial_backoff_seconds,
            max_backoff_seconds=settings.review_delivery_max_backoff_seconds,
            max_age_seconds=settings.review_delivery_max_age_hours * 3600,
        ),
        poll_seconds=settings.review_delivery_poll_seconds,
        lease_seconds=settings.review_delivery_lease_seconds,
        retractors={FILES_SINK: files.retract} if files else {},
    )
    # Without segmentation, a publication naming an audience is refused (UNAVAILABLE); one without is published.
    audiences = SegmentationMembers(
        settings.review_segmentation_address,
        tracer_provider=tracer_provider,
        timeout_seconds=settings.review_audience_timeout_seconds,
        transport=transport,
    )
    core = ReviewCore(
        store,
        Limits(max_content_bytes=settings.review_max_content_bytes),
        sla_hours=settings.sla_hours,
        sinks=list(sinks),
        encode_signal=encode_signal,
        four_eyes_off_tenants=frozenset(settings.review_four_eyes_off_tenants),
        attestations=AttestationVerifier(settings.attestation_public_key_file),
        published_files=files,
        audiences=audiences,
        frequency_caps=settings.frequency_cap,
    )
    experiments = ExperimentCore(ExperimentStore(database), audiences=audiences)
    # Without segmentation, clicks and conversions wait in the feed for a replica that has it.
    feed = (
        OutcomeFeed(
            database,
            TenantChannels(
                settings.review_segmentation_address,
                settings.tokens_dir,
                tracer_provider=tracer_provider,
                transport=transport,
            ),
            batch_size=settings.review_outcome_feed_batch_size,
            poll_seconds=settings.review_outcome_feed_poll_seconds,
            timeout_seconds=settings.review_delivery_timeout_seconds,
            max_backoff_seconds=settings.review_delivery_max_backoff_seconds,
        )
        if settings.review_segmentation_address
        else None
    )
    sweeper: asyncio.Task | None = None

    def register(server: grpc.aio.Server) -> None:
        review_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(core, experiments), server)

    async def on_start() -> None:
        nonlocal sweeper
        await database.connect(load_migrations("review", "matcha.review.migrations"))
        await store.listen()
        dispatcher.start()
        if feed is not None:
            feed.start()
        sweeper = asyncio.get_running_loop().create_task(_every(settings.review_sweep_seconds, core.sweep))

    async def on_stop() -> None:
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        await dispatcher.stop(settings.review_delivery_timeout_seconds + 1)
        if feed is not None:
            await feed.stop()
        if signaller is not None:
            await signaller.close()
        if webhook is not None:
            await webhook.close()
        await audiences.close()
        await store.stop_listening()
        await database.close()

    definition = ServiceDefinition("review", [SERVICE_NAME], register, on_start, on_stop)
    return ReviewService(definition, core)


def build_review_service(settings: ReviewSettings, tracer_provider: TracerProvider | None = None) -> ServiceDefinition:
    return assemble_review_service(settings, tracer_provider).definition
