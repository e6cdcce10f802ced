"""Gateway fixtures: the real gateway on a free port, in front of the real embedding service (and, for the
OpenAPI fuzzing, in front of every capability service at once)."""

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider

from matcha.classification.app import SERVICE_NAME as CLASSIFICATION_SERVICE
from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.conductor.app import SERVICE_NAME as CONDUCTOR_SERVICE
from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.gateway.app import build_gateway
from matcha.gateway.settings import GatewaySettings
from matcha.generation.app import SERVICE_NAME as GENERATION_SERVICE
from matcha.generation.app import build_generation_service
from matcha.generation.settings import GenerationSettings
from matcha.review.app import SERVICE_NAME as REVIEW_SERVICE
from matcha.review.app import build_review_service
from matcha.review.settings import ReviewSettings
from matcha.segmentation.app import SERVICE_NAME as SEGMENTATION_SERVICE
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings


@asynccontextmanager
async def running_gateway(app) -> AsyncIterator[str]:
    """Serves `app` with uvicorn on a free port of the running loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, http="httptools", loop="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@pytest.fixture(scope="session")
def gateway_settings(state_dir) -> Callable[..., GatewaySettings]:
    def make(backends: dict[str, str], **overrides) -> GatewaySettings:
        return GatewaySettings(state_dir=state_dir, gateway_backends=backends, **overrides)

    return make


@pytest.fixture(scope="session")
def start_gateway(gateway_settings, verifier):
    """`async with start_gateway(backends, **settings) as base_url`: a real gateway on a free port."""

    def start(backends: dict[str, str], tracer_provider: TracerProvider | None = None, **overrides):
        settings = gateway_settings(backends, **overrides)
        return running_gateway(build_gateway(settings, tracer_provider or TracerProvider(), verifier))

    return start


@pytest.fixture(scope="session")
async def gateway_url(start_gateway, embedding_server) -> AsyncIterator[str]:
    async with start_gateway({EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"}) as base_url:
        yield base_url


@pytest.fixture
async def http_as(issuer, gateway_url) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """HTTP clients of the gateway acting as a principal of `tenant`."""
    clients: list[httpx.AsyncClient] = []

    def make(
        tenant: str,
        *,
        roles=("analyst", "author", "operator"),
        purpose="campaign",
        data_class="INTERNAL",
        subject="user-1",
    ):
        token = issuer.mint(subject=subject, tenant=tenant, roles=list(roles))
        headers = {"authorization": f"Bearer {token}", "x-matcha-purpose": purpose, "x-matcha-data-class": data_class}
        client = httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def http(http_as, tenant) -> httpx.AsyncClient:
    return http_as(tenant)


@pytest.fixture(scope="session")
async def mesh_gateway_url(
    start_gateway, serve, embedding_server, local_encoder, postgres_url, state_dir, tmp_path_factory
) -> AsyncIterator[str]:
    """One gateway in front of the real embedding, classification, conductor, generation, review and segmentation
    services. Generation runs the real local model with a small token cap, so fuzzed requests stay quick."""
    common = {"database_url": postgres_url, "state_dir": state_dir, "listen_address": "127.0.0.1:0"}
    embedding_address = f"127.0.0.1:{embedding_server.port}"
    async with AsyncExitStack() as stack:
        classification = ClassificationSettings(**common)
        conductor = ConductorSettings(**common, conductor_endpoints={EMBEDDING_SERVICE: embedding_address})
        review = ReviewSettings(
            **common,
            review_publish_dir=tmp_path_factory.mktemp("mesh-published"),
            review_service_tokens_dir=tmp_path_factory.mktemp("mesh-tokens"),
        )
        segmentation = SegmentationSettings(**common)
        generation = GenerationSettings(
            **common,
            generation_local_max_new_tokens=16,
            generation_local_context_length=1024,
            generation_local_threads=1,
        )
        servers = {
            CLASSIFICATION_SERVICE: await stack.enter_async_context(
                serve(build_classification_service(classification, encoder=local_encoder), classification)
            ),
            CONDUCTOR_SERVICE: await stack.enter_async_context(serve(build_conductor_service(conductor), conductor)),
            GENERATION_SERVICE: await stack.enter_async_context(
                serve(build_generation_service(generation, encoder=local_encoder), generation)
            ),
            REVIEW_SERVICE: await stack.enter_async_context(serve(build_review_service(review), review)),
            SEGMENTATION_SERVICE: await stack.enter_async_context(
                serve(build_segmentation_service(segmentation), segmentation)
            ),
        }
        backends = {EMBEDDING_SERVICE: embedding_address}
        backends |= {name: f"127.0.0.1:{server.port}" for name, server in servers.items()}
        base_url = await stack.enter_async_context(start_gateway(backends))
        yield base_url
