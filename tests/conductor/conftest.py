"""Conductor fixtures: conductors on the shared embedded PostgreSQL, calling the real embedding service."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.runtime.server import MatchaServer

EMBEDDING_SERVICE = "matcha.embedding.v1.EmbeddingService"
TERMINAL = (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_CANCELLED)


@pytest.fixture(scope="session")
def conductor_settings(postgres_url, state_dir, embedding_server) -> Callable[..., ConductorSettings]:
    def make(**overrides) -> ConductorSettings:
        values = {
            "database_url": postgres_url,
            "state_dir": state_dir,
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


async def wait_for_run(stub, run_id: str, states=TERMINAL, within_seconds: float = 30.0) -> conductor_pb2.Run:
    """Polls GetRun (full view) until the run reaches one of `states`."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        reply = await stub.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))
        if reply.run.state in states:
            return reply.run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run stayed {conductor_pb2.RunState.Name(reply.run.state)}")
        await asyncio.sleep(0.05)


async def refused(call, code=grpc.StatusCode.INVALID_ARGUMENT):
    from matcha.runtime.client import error_details

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    assert "Traceback" not in (caught.value.details() or "")
    return error_details(caught.value)


FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate")


class RecordingProxy(grpc.GenericRpcHandler):
    """A byte-level gRPC proxy in front of a real service, recording what each call carried.

    Tests read what the capability actually received (request bytes and metadata), and can
    stop and restart the proxy to cut the capability off mid-run.
    """

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self._channel: grpc.aio.Channel | None = None
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    def service(self, handler_call_details):
        method = handler_call_details.method

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            self.calls.append((method, metadata, request))
            outgoing = [
                (key, value) for key, value in metadata.items() if key.startswith("x-") or key in FORWARDED_HEADERS
            ]
            try:
                return await self._channel.unary_unary(method)(
                    request, metadata=outgoing, timeout=context.time_remaining()
                )
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "", error.trailing_metadata())

        return grpc.unary_unary_rpc_method_handler(forward)

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((self,))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(0)
        await self._channel.close()

    def received(self, method_suffix: str) -> list[tuple[dict[str, str], bytes]]:
        return [(metadata, request) for method, metadata, request in self.calls if method.endswith(method_suffix)]


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


@pytest.fixture
async def isolated_database(postgres_url) -> str:
    """A fresh database on the shared server: conductors started on it claim only its runs."""
    import asyncpg

    name = f"conductor_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
