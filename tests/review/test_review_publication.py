"""Publication: only the approved content, once, to the file sink and an HTTP webhook retried with backoff."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft, eventually
from tests.support import refused

PUBLISHER = ("publisher",)


class WebhookReceiver:
    """A real HTTP server on loopback that fails its first `failures` requests with 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/published"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook():
    with WebhookReceiver(failures=2) as receiver:
        yield receiver


async def approved_item(review_for, tenant, **draft_fields):
    item = (await review_for(tenant, subject="planner").Submit(draft(**draft_fields))).item
    reviewer = review_for(tenant, roles=REVIEWER, subject="rita")
    reply = await reviewer.Decide(
        review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )
    return reply.item


async def test_publish_writes_the_approved_content_once(
    review_for, review_settings, start_review, webhook, isolated_database, tenant
):
    settings = review_settings(review_webhook_url=webhook.url, database_url=isolated_database)
    async with start_review(settings) as (server, _):
        item = await approved_item(lambda *a, **k: review_for(*a, server=server, **k), tenant)
        publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
        reply = await publisher.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256))
        publication = reply.publication
        assert not reply.already_published
        assert (publication.version, publication.content_sha256) == (1, item.approved_sha256)
        assert publication.publisher_subject == "pat"
        assert sorted(sink.sink for sink in publication.sinks) == ["files", "webhook"]

        async def delivered():
            got = await publisher.Get(review_pb2.GetRequest(item_id=item.id))
            states = {sink.sink: sink.delivery for sink in got.item.publication.sinks}
            if all(d.state == review_pb2.DELIVERY_STATE_DELIVERED for d in states.values()):
                return states
            return None

        states = await eventually(delivered)
        # The webhook failed twice with 503, then took it.
        assert states["webhook"].attempts == 3 and states["files"].attempts == 1
        assert len(webhook.requests) == 3
        headers, body = webhook.requests[-1]
        assert headers["Idempotency-Key"] == publication.id
        assert (body["item_id"], body["content"], body["content_sha256"]) == (
            item.id,
            item.content,
            item.approved_sha256,
        )
        written = json.loads((settings.review_publish_dir / tenant / f"{item.id}.json").read_text())
        assert written == body

        again = await publisher.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256))
        assert again.already_published and again.publication.id == publication.id
        got = await publisher.Get(review_pb2.GetRequest(item_id=item.id))
        assert [event.type for event in got.history].count(review_pb2.REVIEW_EVENT_TYPE_PUBLISHED) == 1
        assert len(webhook.requests) == 3


async def test_publish_refuses_anything_but_the_approved_digest(review_for, tenant):
    writer = review_for(tenant)
    pending = (await writer.Submit(draft())).item
    publisher = review_for(tenant, roles=PUBLISHER)
    details = await refused(
        publisher.Publish(review_pb2.PublishRequest(item_id=pending.id, content_sha256=pending.content_sha256)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "PENDING" in details.message and details.metadata["status"] == "PENDING"

    item = await approved_item(review_for, tenant)
    details = await refused(
        publisher.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256="0" * 64)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert details.reason == "CONTENT_NOT_APPROVED" and details.metadata["approved_sha256"] == item.approved_sha256

    details = await refused(
        publisher.Publish(
            review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256, sinks=["files", "fax"])
        )
    )
    assert details.field_violations.keys() == {"sinks[1]"}
    details = await refused(publisher.Publish(review_pb2.PublishRequest(item_id=item.id)))
    assert details.field_violations.keys() == {"content_sha256"}

    analyst = review_for(tenant, roles=("analyst",))
    details = await refused(
        analyst.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert details.reason == "MISSING_ROLE"
    got = await publisher.Get(review_pb2.GetRequest(item_id=item.id))
    assert not got.item.HasField("publication")
