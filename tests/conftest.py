"""Shared fixtures: a real embedded PostgreSQL, real signing keys, the real local model."""

import os

# As the launcher and the image run the services: torch's threads sleep between operations, read when
# torch loads (below). Spinning would take the cores from the other processes a test starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from matcha.embedding.app import build_embedding_service
from matcha.embedding.settings import EmbeddingSettings
from matcha.launcher.postgres import EmbeddedPostgres
from matcha.models.encoders import LocalEncoder
from matcha.runtime.access import configured_access_ledger
from matcha.runtime.auth import TokenIssuer, TokenVerifier, ensure_signing_keys, ensure_workload_keys
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass
from matcha.runtime.server import MatchaServer, ServiceDefinition


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    """Outside pytest's temp root: pytest resets that root to mode 0700 whenever a session starts,
    which would lock the embedded server's system user out of its data directory."""
    path = Path(tempfile.mkdtemp(prefix="matcha-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(state_dir) -> str:
    postgres = EmbeddedPostgres(state_dir / "postgres", delete_on_stop=True)
    url = postgres.start()
    yield url
    postgres.stop()


@pytest.fixture(scope="session")
def key_paths(state_dir):
    return ensure_signing_keys(state_dir / "keys")


@pytest.fixture(scope="session")
def issuer(key_paths) -> TokenIssuer:
    return TokenIssuer.from_file(key_paths.private)


@pytest.fixture(scope="session")
def workload_key_paths(state_dir):
    """The conductor's workload key, where conductors of the session (state dir defaults) find it."""
    return ensure_workload_keys(state_dir / "keys")


@pytest.fixture(scope="session")
def verifier(key_paths, workload_key_paths) -> TokenVerifier:
    return TokenVerifier.from_file(key_paths.public, workload_path=workload_key_paths.public)


@pytest.fixture
async def isolated_database(postgres_url) -> str:
    """A fresh database on the shared server, for services whose background work (claiming runs, serving an
    outbox) must not be shared with the other servers of the session."""
    name = f"isolated_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test: tests never see each other's data."""
    return f"tenant-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def local_encoder() -> AsyncIterator[LocalEncoder]:
    encoder = LocalEncoder()
    await encoder.load()
    yield encoder
    await encoder.close()


@pytest.fixture(scope="session")
def embedding_settings(postgres_url, state_dir) -> Callable[..., EmbeddingSettings]:
    def make(**overrides) -> EmbeddingSettings:
        values = {
            "database_url": postgres_url,
            "state_dir": state_dir,
            "listen_address": "127.0.0.1:0",
            **overrides,
        }
        return EmbeddingSettings(**values)

    return make


@asynccontextmanager
async def running_server(
    definition: ServiceDefinition,
    settings,
    verifier: TokenVerifier,
    tracer_provider: TracerProvider | None = None,
    *,
    record_accesses: bool = True,
) -> AsyncIterator[MatchaServer]:
    """`record_accesses=False` serves without the access ledger: only to measure what recording costs."""
    server = MatchaServer(
        definition,
        listen_address=settings.listen_address,
        verifier=verifier,
        clearance=settings.service_clearance,
        tracer_provider=tracer_provider or TracerProvider(),
        access_ledger=configured_access_ledger(settings) if record_accesses else None,
        grace_period_seconds=1.0,
        tenant_limits=settings.tenant_limits,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        transport=settings.transport,
        health_listen_address=settings.health_listen_address,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def serve(verifier):
    """`async with serve(definition, settings) as server`: an in-process server on a free port."""

    def start(definition: ServiceDefinition, settings, tracer_provider: TracerProvider | None = None, **options):
        return running_server(definition, settings, verifier, tracer_provider, **options)

    return start


@pytest.fixture(scope="session")
async def embedding_server(embedding_settings, serve, local_encoder) -> AsyncIterator[MatchaServer]:
    settings = embedding_settings()
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
async def connect(issuer) -> AsyncIterator[Callable[..., grpc.aio.Channel]]:
    """Opens a channel to a server as a principal of `tenant` with `roles`."""
    channels: list[grpc.aio.Channel] = []

    def open_for(
        server: MatchaServer,
        tenant: str,
        *,
        roles=("analyst", "author", "operator"),
        purpose="campaign",
        data_class=DataClass.INTERNAL,
        subject="user-1",
        tracer_provider=None,
    ) -> grpc.aio.Channel:
        token = issuer.mint(subject=subject, tenant=tenant, roles=list(roles))
        channel = open_channel(
            f"127.0.0.1:{server.port}",
            token=token,
            purpose=purpose,
            data_class=data_class,
            tracer_provider=tracer_provider,
        )
        channels.append(channel)
        return channel

    yield open_for
    for channel in channels:
        await channel.close()
