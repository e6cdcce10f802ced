"""Assembles the generation service from its settings."""

import asyncio

import grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.embedding.reader import CollectionReader
from matcha.generation.backend import Backend
from matcha.generation.core import GenerationCore, Limits
from matcha.generation.local import LocalBackend
from matcha.generation.openai import OpenAIBackend
from matcha.generation.servicer import GenerationServicer
from matcha.generation.settings import BackendSettings, GenerationSettings
from matcha.generation.store import GenerationStore
from matcha.generation.tgi import TgiBackend
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.models.encoders import LocalEncoder
from matcha.review.attestation import AttestationSigner, ensure_attestation_keys
from matcha.runtime.batching import MicroBatcher
from matcha.runtime.database import configured_database, load_migrations
from matcha.runtime.pii import shared_engine
from matcha.runtime.server import ServiceDefinition

SERVICE_NAME = generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name


def build_backend(backend: BackendSettings, settings: GenerationSettings) -> Backend:
    if backend.kind == "tgi":
        return TgiBackend(
            backend.name,
            url=backend.server_url,
            clearance=backend.clearance_policy,
            chat_template=backend.chat_template,
            context_length=backend.context_length,
            max_new_tokens_limit=backend.max_new_tokens_limit,
            timeout_seconds=backend.timeout_seconds,
        )
    if backend.kind == "openai":
        return OpenAIBackend(
            backend.name,
            url=backend.server_url,
            clearance=backend.clearance_policy,
            remote_model=backend.remote_model,
            api_key=backend.api_key,
            context_length=backend.context_length,
            max_new_tokens_limit=backend.max_new_tokens_limit,
            timeout_seconds=backend.timeout_seconds,
        )
    return LocalBackend(
        backend.name,
        clearance=backend.clearance_policy,
        model_path=settings.generation_local_model_path,
        context_length=settings.generation_local_context_length,
        max_new_tokens_limit=settings.generation_local_max_new_tokens,
        threads=settings.generation_local_threads,
        queue_size=settings.generation_local_queue_size,
        weight_repacking=settings.generation_local_weight_repacking,
    )


def build_generation_service(
    settings: GenerationSettings,
    tracer_provider: TracerProvider | None = None,
    *,
    encoder: LocalEncoder | None = None,
    shared_backends: dict[str, Backend] | None = None,
) -> ServiceDefinition:
    """`encoder` and `shared_backends` (by model name) let a caller share loaded models; it keeps ownership."""
    shared_backends = shared_backends or {}
    owned = {
        backend.name: build_backend(backend, settings)
        for backend in settings.generation_backends
        if backend.name not in shared_backends
    }
    backends = {
        backend.name: shared_backends.get(backend.name) or owned[backend.name]
        for backend in settings.generation_backends
    }
    owns_encoder = encoder is None
    encoder = encoder or LocalEncoder()
    database = configured_database(settings)
    batcher = MicroBatcher(
        encoder.encode,
        max_batch_size=settings.generation_embedding_max_batch_size,
        max_wait_seconds=settings.generation_embedding_max_wait_ms / 1000,
    )
    collections = CollectionReader(
        settings.generation_embedding_address,
        address_setting="MATCHA_GENERATION_EMBEDDING_ADDRESS",
        tracer_provider=tracer_provider,
        transport=settings.transport,
    )
    key_file = settings.attestation_key_file
    if settings.generation_attestation_key_file is None:
        ensure_attestation_keys(key_file.parent)
    core = GenerationCore(
        backends,
        settings.default_model,
        GenerationStore(database),
        encoder,
        batcher,
        Limits(),
        collections,
        languages={backend.name: tuple(backend.languages) for backend in settings.generation_backends},
        thresholds=settings.quality_thresholds,
        signer=AttestationSigner.from_file(key_file),
        pii=shared_engine(),
    )

    def register(server: grpc.aio.Server) -> None:
        generation_pb2_grpc.add_GenerationServiceServicer_to_server(GenerationServicer(core), server)

    async def on_start() -> None:
        # Models, remote backends and the database are independent: bring them up together.
        await asyncio.gather(
            *(backend.load() for backend in owned.values()),
            encoder.load() if owns_encoder else asyncio.sleep(0),
            database.connect(load_migrations("generation", "matcha.generation.migrations")),
        )

    async def on_stop() -> None:
        await batcher.close()
        await collections.close()
        await database.close()
        await asyncio.gather(*(backend.close() for backend in owned.values()))
        if owns_encoder:
            await encoder.close()

    return ServiceDefinition("generation", [SERVICE_NAME], register, on_start, on_stop)
