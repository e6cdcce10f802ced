"""Review fixtures: review services on the shared embedded PostgreSQL, clients per role, refusal helpers."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from matcha.review.app import ReviewService, assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.server import MatchaServer

REVIEWER = ("reviewer",)
PUBLISHER = ("publisher",)


@pytest.fixture(scope="session")
def review_settings(postgres_url, state_dir, tmp_path_factory) -> Callable[..., ReviewSettings]:
    def make(**overrides) -> ReviewSettings:
        values = {
            "database_url": postgres_url,
            "state_dir": state_dir,
            "listen_address": "127.0.0.1:0",
            "review_publish_dir": tmp_path_factory.mktemp("published"),
            "review_service_tokens_dir": tmp_path_factory.mktemp("tokens"),
            "review_delivery_initial_backoff_seconds": 0.05,
            "review_delivery_max_backoff_seconds": 0.2,
            "review_delivery_poll_seconds": 0.2,
            **overrides,
        }
        return ReviewSettings(**values)

    return make


@pytest.fixture(scope="session")
def start_review(serve):
    """`async with start_review(settings) as (server, service)`: a review service on a port."""

    @asynccontextmanager
    async def start(settings: ReviewSettings) -> AsyncIterator[tuple[MatchaServer, ReviewService]]:
        service = assemble_review_service(settings)
        async with serve(service.definition, settings) as server:
            yield server, service

    return start


@pytest.fixture(scope="session")
async def review(review_settings, start_review) -> AsyncIterator[tuple[MatchaServer, ReviewService]]:
    """The shared review service (no conductor configured; file sink only)."""
    async with start_review(review_settings()) as running:
        yield running


@pytest.fixture(scope="session")
def review_server(review) -> MatchaServer:
    return review[0]


@pytest.fixture(scope="session")
def review_service(review) -> ReviewService:
    return review[1]


@pytest.fixture
def review_for(review_server, connect):
    """`review_for(tenant, roles=..., subject=...)`: a ReviewService stub for that principal."""

    def make(tenant, server=None, **kwargs) -> review_pb2_grpc.ReviewServiceStub:
        # Four-eyes holds by default: unless a test names them, the writer, the reviewer and the publisher
        # are three people.
        roles = kwargs.get("roles", ())
        default = "publisher-1" if PUBLISHER[0] in roles else "reviewer-1" if REVIEWER[0] in roles else "user-1"
        kwargs.setdefault("subject", default)
        return review_pb2_grpc.ReviewServiceStub(connect(server or review_server, tenant, **kwargs))

    return make


def draft(**overrides) -> review_pb2.SubmitRequest:
    values = {
        "title": "Spring into comfort",
        "content": "Our new walking shoes are here.\nTry them in store this weekend.\n",
        "channel": review_pb2.CHANNEL_EMAIL,
        "target": "newsletter-weekly",
        **overrides,
    }
    return review_pb2.SubmitRequest(**values)


async def eventually(probe, *, within_seconds: float = 15.0, every_seconds: float = 0.05):
    """Re-evaluates `probe` (an async callable) until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every_seconds)


def write_service_token(issuer, tokens_dir: Path, tenant: str, roles=("review-service",)) -> None:
    token = issuer.mint(subject="review-service", tenant=tenant, roles=list(roles))
    (tokens_dir / f"{tenant}.jwt").write_text(token)
