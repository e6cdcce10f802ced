"""Assembles the embedding service from its settings."""

import asyncio

import grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.embedding.core import EmbeddingCore, Limits
from matcha.embedding.servicer import EmbeddingServicer
from matcha.embedding.settings import EmbeddingSettings
from matcha.embedding.store import SEARCH_SERVER_SETTINGS, VectorStore
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.models.encoders import Encoder, LocalEncoder, TeiEncoder
from matcha.runtime.batching import MicroBatcher
from matcha.runtime.database import configured_database, load_migrations
from matcha.runtime.pii import shared_engine
from matcha.runtime.server import ServiceDefinition

SERVICE_NAME = embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name


def build_encoder(settings: EmbeddingSettings) -> Encoder:
    if settings.embedding_backend == "tei":
        assert settings.embedding_tei_url is not None  # required with tei (see the settings)
        return TeiEncoder(settings.embedding_tei_url)
    return LocalEncoder(device=settings.embedding_device, forward_batch_size=settings.embedding_forward_batch_size)


def build_embedding_service(
    settings: EmbeddingSettings,
    tracer_provider: TracerProvider | None = None,
    *,
    encoder: Encoder | None = None,
) -> ServiceDefinition:
    """`encoder` lets a caller share an already loaded model; it then keeps ownership of it."""
    owns_encoder = encoder is None
    encoder = encoder or build_encoder(settings)
    database = configured_database(settings, server_settings=SEARCH_SERVER_SETTINGS)
    batcher = MicroBatcher(
        encoder.encode,
        max_batch_size=settings.embedding_max_batch_size,
        max_wait_seconds=settings.embedding_max_wait_ms / 1000,
    )
    limits = Limits(
        max_items_per_call=settings.embedding_max_items_per_call,
        max_text_chars=settings.embedding_max_text_chars,
    )
    core = EmbeddingCore(encoder, batcher, VectorStore(database), limits, shared_engine())

    def register(server: grpc.aio.Server) -> None:
        embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(EmbeddingServicer(core), server)

    async def on_start() -> None:
        # Loading the model and migrating the database are independent: overlap them.
        load = encoder.load() if owns_encoder else asyncio.sleep(0)
        await asyncio.gather(load, database.connect(load_migrations("embedding", "matcha.embedding.migrations")))

    async def on_stop() -> None:
        await batcher.close()
        await database.close()
        if owns_encoder:
            await encoder.close()

    return ServiceDefinition("embedding", [SERVICE_NAME], register, on_start, on_stop)
