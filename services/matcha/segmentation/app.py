"""Assembles the segmentation service from its settings."""

import time
from collections.abc import Callable

import grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime.channels import ChannelPool
from matcha.runtime.database import configured_database, load_migrations
from matcha.runtime.pii import shared_engine
from matcha.runtime.server import ServiceDefinition
from matcha.segmentation.checks import Limits
from matcha.segmentation.condition_core import ConditionSegmentsCore
from matcha.segmentation.condition_store import ConditionStore
from matcha.segmentation.customer_store import CustomerStore
from matcha.segmentation.feed import ChangeFeed
from matcha.segmentation.ingestion_core import IngestionCore
from matcha.segmentation.live_counters import LiveSegments
from matcha.segmentation.partitions import Partitions
from matcha.segmentation.peers import Peers
from matcha.segmentation.recommendation_core import RecommendationCore
from matcha.segmentation.recommendation_store import RecommendationStore
from matcha.segmentation.servicer import SegmentationPartitionServicer, SegmentationServicer
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc
from matcha.segmentation.versions_core import VersionsCore
from matcha.segmentation.versions_store import VersionsStore

SERVICE_NAME = segmentation_pb2.DESCRIPTOR.services_by_name["SegmentationService"].full_name
PARTITION_SERVICE_NAME = segmentation_pb2.DESCRIPTOR.services_by_name["SegmentationPartitionService"].full_name


def build_segmentation_service(
    settings: SegmentationSettings,
    tracer_provider: TracerProvider | None = None,
    clock: Callable[[], float] = time.time,
) -> ServiceDefinition:
    database = configured_database(settings)
    feed = ChangeFeed(database.session_url)
    limits = Limits(
        max_customers_per_call=settings.segmentation_max_customers_per_call,
        max_transactions_per_call=settings.segmentation_max_transactions_per_call,
        max_events_per_message=settings.segmentation_max_events_per_message,
    )
    conditions = ConditionStore(database)
    address = settings.segmentation_replica_endpoint
    partitions = Partitions(
        database,
        replica=settings.segmentation_replica_name or address,
        address=address,
        lease_seconds=settings.segmentation_slot_lease_seconds,
        channels=ChannelPool(
            transport=settings.transport,
            tracer_provider=tracer_provider,
            options=[("grpc.ssl_target_name_override", settings.segmentation_replica_tls_name)]
            if settings.segmentation_replica_tls_name
            else [],
        ),
    )
    live = LiveSegments(
        conditions,
        clock=clock,
        late_tolerance_seconds=settings.segmentation_late_tolerance_seconds,
        sweep_interval_seconds=settings.segmentation_sweep_interval_seconds,
        partitions=partitions,
    )
    # One database, one store per seam; ingestion re-assigns through the versions core, recommendations read the
    # customer's segment from it.
    customers = CustomerStore(database)
    versions = VersionsCore(VersionsStore(database), customers, feed, limits)
    ingestion = IngestionCore(customers, versions, live, limits, shared_engine(), partitions, Peers(partitions))
    recommendations = RecommendationCore(RecommendationStore(database), customers, versions, limits)
    condition_core = ConditionSegmentsCore(conditions, live, settings.segmentation_event_retention_days)

    def register(server: grpc.aio.Server) -> None:
        segmentation_pb2_grpc.add_SegmentationServiceServicer_to_server(
            SegmentationServicer(ingestion, versions, recommendations, condition_core), server
        )
        segmentation_pb2_grpc.add_SegmentationPartitionServiceServicer_to_server(
            SegmentationPartitionServicer(ingestion), server
        )

    async def on_start() -> None:
        await database.connect(load_migrations("segmentation", "matcha.segmentation.migrations"))
        await feed.start()
        await partitions.start()
        await live.start()

    async def on_stop() -> None:
        await live.close()
        await partitions.close()
        await versions.close()
        await feed.close()
        await database.close()

    return ServiceDefinition("segmentation", [SERVICE_NAME, PARTITION_SERVICE_NAME], register, on_start, on_stop)
