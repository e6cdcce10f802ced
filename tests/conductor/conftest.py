"""Conductor fixtures: conductors on the shared embedded PostgreSQL, calling the real embedding service."""

from collections.abc import AsyncIterator, Callable

import pytest

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2_grpc
from matcha.runtime.server import MatchaServer
from tests.conductor.support import EMBEDDING_SERVICE, RecordingProxy


@pytest.fixture(scope="session")
def conductor_settings(
    postgres_url, state_dir, embedding_server, workload_key_paths
) -> Callable[..., ConductorSettings]:
    def make(**overrides) -> ConductorSettings:
        values = {
            "database_url": postgres_url,
            "state_dir": state_dir,
            # The key whose public half the session's verifier trusts for runs' hops.
            "conductor_workload_key_file": workload_key_paths.private,
            "listen_address": "127.0.0.1:0",
            "conductor_endpoints": {EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"},
            "conductor_lease_seconds": 2.0,
            "conductor_poll_seconds": 0.5,
            **overrides,
        }
        return ConductorSettings(**values)

    return make


@pytest.fixture(scope="session")
async def conductor_server(conductor_settings, serve) -> AsyncIterator[MatchaServer]:
    settings = conductor_settings()
    async with serve(build_conductor_service(settings), settings) as server:
        yield server


@pytest.fixture
def conductor_for(conductor_server, connect):
    """`conductor_for(tenant, roles=..., purpose=..., data_class=...)`: a ConductorService stub."""

    def make(tenant, server=None, **kwargs) -> conductor_pb2_grpc.ConductorServiceStub:
        return conductor_pb2_grpc.ConductorServiceStub(connect(server or conductor_server, tenant, **kwargs))

    return make


@pytest.fixture
async def embedding_proxy(embedding_server) -> AsyncIterator[RecordingProxy]:
    proxy = RecordingProxy(f"127.0.0.1:{embedding_server.port}")
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def conductor_via_proxy(conductor_settings, serve, embedding_proxy, isolated_database):
    """Conductors on their own database whose embedding calls go through `embedding_proxy`."""
    servers = []

    async def start(**overrides) -> MatchaServer:
        settings = conductor_settings(
            database_url=isolated_database,
            conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{embedding_proxy.port}"},
            **overrides,
        )
        context = serve(build_conductor_service(settings), settings)
        servers.append(context)
        return await context.__aenter__()

    yield start
    for context in reversed(servers):
        await context.__aexit__(None, None, None)
