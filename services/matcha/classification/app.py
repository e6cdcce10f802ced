"""Assembles the classification service from its settings."""

import asyncio
import hashlib
import hmac

import grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.classification.core import ClassificationCore, Limits
from matcha.classification.listening import ListeningCore
from matcha.classification.servicer import ClassificationServicer, alert_json
from matcha.classification.settings import ClassificationSettings
from matcha.classification.store import ClassifierStore
from matcha.classification.v1 import classification_pb2, classification_pb2_grpc
from matcha.classification.watch_scheduler import WatchScheduler
from matcha.classification.watch_store import WatchStore
from matcha.embedding.reader import CollectionReader
from matcha.models.encoders import LocalEncoder
from matcha.runtime.access import access_key
from matcha.runtime.batching import MicroBatcher
from matcha.runtime.database import configured_database, load_migrations
from matcha.runtime.egress import EgressPolicy
from matcha.runtime.server import ServiceDefinition

SERVICE_NAME = classification_pb2.DESCRIPTOR.services_by_name["ClassificationService"].full_name


def build_classification_service(
    settings: ClassificationSettings,
    tracer_provider: TracerProvider | None = None,
    *,
    encoder: LocalEncoder | None = None,
) -> ServiceDefinition:
    """`encoder` lets a caller share an already loaded MiniLM; it then keeps ownership of it."""
    owns_encoder = encoder is None
    encoder = encoder or LocalEncoder(
        device=settings.classification_device, forward_batch_size=settings.classification_forward_batch_size
    )
    database = configured_database(settings)
    batcher = MicroBatcher(
        encoder.encode,
        max_batch_size=settings.classification_max_batch_size,
        max_wait_seconds=settings.classification_max_wait_ms / 1000,
    )
    limits = Limits(max_texts_per_call=settings.classification_max_texts_per_call)
    collections = CollectionReader(
        settings.classification_embedding_address,
        address_setting="MATCHA_CLASSIFICATION_EMBEDDING_ADDRESS",
        tracer_provider=tracer_provider,
        transport=settings.transport,
    )
    core = ClassificationCore(encoder, batcher, ClassifierStore(database), limits, collections)
    roots = tuple(root.strip() for root in settings.classification_drop_folder_roots.split(",") if root.strip())
    # Webhook secrets derive from the deployment's shared key (its own label), so every replica signs alike.
    webhook_key = hmac.new(access_key(settings), b"classification-webhook-signing", hashlib.sha256).digest()
    egress = EgressPolicy.parse(settings.classification_egress_allowed_networks)
    listening = ListeningCore(
        WatchStore(database), core, drop_folder_roots=roots, webhook_key=webhook_key, egress=egress
    )
    scheduler = WatchScheduler(
        listening,
        lease_seconds=settings.classification_watch_lease_seconds,
        webhook_attempts=settings.classification_webhook_attempts,
        webhook_backoff_seconds=settings.classification_webhook_backoff_seconds,
        webhook_timeout_seconds=settings.classification_webhook_timeout_seconds,
        render_alert=alert_json,
    )
    listening.on_created(scheduler.wake)

    def register(server: grpc.aio.Server) -> None:
        servicer = ClassificationServicer(
            core, listening, alert_poll_seconds=settings.classification_alert_poll_seconds
        )
        classification_pb2_grpc.add_ClassificationServiceServicer_to_server(servicer, server)

    async def on_start() -> None:
        # The models and the database are independent: load and migrate together.
        load_encoder = encoder.load() if owns_encoder else asyncio.sleep(0)
        await asyncio.gather(
            load_encoder,
            core.load(),
            database.connect(load_migrations("classification", "matcha.classification.migrations")),
        )
        core.check_embedding_model()
        await listening.store.listen()
        if settings.classification_run_watches:
            await scheduler.start()

    async def on_stop() -> None:
        await scheduler.stop()
        await listening.store.stop_listening()
        await batcher.close()
        await collections.close()
        await database.close()
        await core.close()
        if owns_encoder:
            await encoder.close()

    return ServiceDefinition("classification", [SERVICE_NAME], register, on_start, on_stop)
