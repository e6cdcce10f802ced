"""Attacks on listening's outbound calls: a watch author tries to make the classification service fetch or POST
inside the cluster (loopback, link-local metadata, a name that resolves inside, a redirect from an allowed
feed host into the cluster). Here 127.0.0.2 stands for the public feed host the operator allows, and
127.0.0.1 for the inside: the assertions are on what the inside server received (nothing)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from aiohttp import web
from google.protobuf import duration_pb2

from matcha.classification.app import build_classification_service
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.runtime.egress import EgressPolicy, EgressRefused, guarded_client
from tests.support import refused

SECRET_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>inside</title>
<item><guid>secret-1</guid><title>Internal admin token rotated</title><description>token=s3cr3t</description></item>
</channel></rss>"""


class Host:
    """A local HTTP server on `address`; records every request that reached it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.routes: dict[str, object] = {}
        self.requests: list[str] = []
        self.base = ""

    async def __aenter__(self) -> "Host":
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests.append(request.path)
            return await self.routes[request.path](request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://{self.address}:{self.port}"
        return self

    async def __aexit__(self, *_exc) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def inside() -> AsyncIterator[Host]:
    async with Host("127.0.0.1") as host:
        host.routes["/feed"] = _reply(SECRET_FEED)
        host.routes["/hook"] = _reply("ok", "text/plain")
        yield host


@pytest.fixture
async def outside() -> AsyncIterator[Host]:
    async with Host("127.0.0.2") as host:
        yield host


@pytest.fixture(scope="module")
async def egress_server(classification_settings, serve, local_encoder):
    # Only the stand-in for the public feed host is allowed besides public addresses.
    settings = classification_settings(classification_egress_allowed_networks="127.0.0.2")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
def listening(egress_server, connect, tenant) -> classification_pb2_grpc.ClassificationServiceStub:
    return classification_pb2_grpc.ClassificationServiceStub(connect(egress_server, tenant, purpose="listening"))


def _reply(text: str, content_type: str = "application/rss+xml"):
    async def handler(_request):
        return web.Response(text=text, content_type=content_type)

    return handler


def _every_second() -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=1))
    return message


def _watch(name: str, *sources: pb.WatchSource, webhook_url: str = "") -> pb.Watch:
    window = duration_pb2.Duration()
    window.FromTimedelta(timedelta(seconds=2))
    return pb.Watch(
        name=name,
        sources=list(sources) or [pb.WatchSource(name="api", push=pb.PushSource())],
        window=window,
        look_back_windows=4,
        webhook_url=webhook_url,
    )


async def test_a_watch_naming_an_inside_address_is_refused_and_nothing_is_called(listening, inside):
    bad = _watch(
        "probe",
        pb.WatchSource(name="loopback", feed=pb.FeedSource(url=f"{inside.base}/feed")),
        pb.WatchSource(name="metadata", feed=pb.FeedSource(url="http://169.254.169.254/latest/meta-data/")),
        pb.WatchSource(name="by-name", feed=pb.FeedSource(url=f"http://localhost:{inside.port}/feed")),
        pb.WatchSource(name="mapped", feed=pb.FeedSource(url=f"http://[::ffff:127.0.0.1]:{inside.port}/feed")),
        webhook_url=f"{inside.base}/hook",
    )
    details = await refused(listening.CreateWatch(pb.CreateWatchRequest(watch=bad)))
    assert set(details.field_violations) == {
        "watch.sources[0].feed.url",
        "watch.sources[1].feed.url",
        "watch.sources[2].feed.url",
        "watch.sources[3].feed.url",
        "watch.webhook_url",
    }
    assert "EGRESS_ALLOWED_NETWORKS" in details.field_violations["watch.webhook_url"]
    listed = await listening.ListWatches(pb.ListWatchesRequest())
    assert [w.name for w in listed.watches if w.name == "probe"] == []
    await asyncio.sleep(1.5)
    assert inside.requests == []


async def test_a_feed_redirecting_inside_is_not_followed(listening, inside, outside):
    outside.routes["/feed"] = lambda _request: _redirect(f"{inside.base}/feed")
    created = _watch(
        "redirected",
        pb.WatchSource(name="news", feed=pb.FeedSource(url=f"{outside.base}/feed", poll_interval=_every_second())),
    )
    await listening.CreateWatch(pb.CreateWatchRequest(watch=created))
    async with asyncio.timeout(30):
        while True:
            got = (await listening.GetWatch(pb.GetWatchRequest(name="redirected"))).watch
            status = {s.source: s for s in got.source_statuses}.get("news")
            if status is not None and status.state == pb.SOURCE_STATE_FAILING:
                break
            await asyncio.sleep(0.3)
    assert "egress" in status.last_error
    assert status.accepted_posts == 0
    assert outside.requests, "the allowed host was asked"
    assert inside.requests == [], "the redirect into the cluster was followed"
    await listening.DeleteWatch(pb.DeleteWatchRequest(name="redirected"))


async def _redirect(location: str) -> web.StreamResponse:
    raise web.HTTPFound(location)


async def test_a_name_resolving_inside_is_refused_before_connecting(inside):
    async with guarded_client(EgressPolicy(), timeout_seconds=5) as client:
        with pytest.raises(EgressRefused):
            await client.post(f"http://localhost:{inside.port}/hook", json={"alert": 1})
        with pytest.raises(EgressRefused):
            await client.get(f"{inside.base}/feed")
    assert inside.requests == []


async def test_an_allowed_network_is_reached_by_name_with_the_name_kept_for_the_host_header(inside):
    seen: list[str] = []

    async def echo_host(request: web.Request) -> web.Response:
        seen.append(request.headers["Host"])
        return web.Response(text="ok")

    inside.routes["/ping"] = echo_host
    async with guarded_client(EgressPolicy.parse("127.0.0.1/32"), timeout_seconds=5) as client:
        response = await client.get(f"http://localhost:{inside.port}/ping")
    assert response.status_code == 200
    assert seen == [f"localhost:{inside.port}"]
    with pytest.raises(ValueError):
        EgressPolicy.parse("10.0.0.0/33")
    assert isinstance(EgressRefused("x"), httpx.HTTPError)
