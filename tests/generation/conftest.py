"""Generation fixtures: the real SmolLM2 loaded once, TGI and OpenAI protocol servers backed by it, one service."""

from collections.abc import AsyncIterator, Callable

import pytest

from matcha.generation.app import build_generation_service
from matcha.generation.local import LocalBackend
from matcha.generation.settings import BackendSettings, GenerationSettings
from matcha.generation.v1 import generation_pb2_grpc
from matcha.runtime.governance import Clearance, DataClass
from matcha.runtime.server import MatchaServer
from tests.fakes.generation_servers import OpenAIProtocolServer, TgiProtocolServer, serving


@pytest.fixture(scope="session")
async def local_model() -> AsyncIterator[LocalBackend]:
    model = LocalBackend(
        "local",
        clearance=Clearance(DataClass.PERSONAL, inside_trust_boundary=True),
        context_length=1024,
        threads=1,
        queue_size=2,
    )
    await model.load()
    yield model
    await model.close()


@pytest.fixture(scope="session")
async def tgi_server(local_model) -> AsyncIterator[tuple[str, TgiProtocolServer]]:
    server = TgiProtocolServer(local_model)
    async with serving(server.app) as url:
        yield url, server


@pytest.fixture(scope="session")
async def openai_server(local_model) -> AsyncIterator[tuple[str, OpenAIProtocolServer]]:
    server = OpenAIProtocolServer(local_model)
    async with serving(server.app) as url:
        yield url, server


@pytest.fixture(scope="session")
def generation_settings(postgres_url, state_dir) -> Callable[..., GenerationSettings]:
    def make(backends: list[BackendSettings] | None = None, **overrides) -> GenerationSettings:
        values = {"database_url": postgres_url, "state_dir": state_dir, "listen_address": "127.0.0.1:0", **overrides}
        if backends is not None:
            values["generation_backends"] = backends
        return GenerationSettings(**values)

    return make


@pytest.fixture(scope="session")
async def generation_server(
    generation_settings, serve, local_encoder, local_model, tgi_server, openai_server
) -> AsyncIterator[MatchaServer]:
    """Three models: the local one (default), TGI and an OpenAI-compatible server, the last two outside the boundary."""
    settings = generation_settings(
        [
            BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside"),
            BackendSettings(name="tgi", kind="tgi", url=tgi_server[0]),
            BackendSettings(name="vllm", kind="openai", url=openai_server[0]),
        ]
    )
    definition = build_generation_service(settings, encoder=local_encoder, shared_backends={"local": local_model})
    async with serve(definition, settings) as server:
        yield server


@pytest.fixture
def stub_for(generation_server, connect):
    def make(tenant, **kwargs):
        return generation_pb2_grpc.GenerationServiceStub(connect(generation_server, tenant, **kwargs))

    return make
