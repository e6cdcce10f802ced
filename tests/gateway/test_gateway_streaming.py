"""Server streaming through the gateway: Server-Sent Events, NDJSON, errors, and client disconnects.

The backend is the scripted GenerationService of `scripted_backends` (no streaming capability
service exists yet), served by the real MatchaServer.
"""

import asyncio
import json

import httpx
import pytest

from tests.gateway.scripted_backends import (
    FAIL,
    GENERATION_SERVICE,
    WAIT,
    WordStreamingGeneration,
    word_streaming_definition,
)


@pytest.fixture
async def streaming(serve, embedding_settings, start_gateway, issuer, tenant):
    servicer = WordStreamingGeneration()
    definition = word_streaming_definition(servicer)
    token = issuer.mint(subject="writer", tenant=tenant, roles=["analyst", "author", "operator"])
    headers = {"authorization": f"Bearer {token}", "x-matcha-purpose": "campaign"}
    async with (
        serve(definition, embedding_settings()) as server,
        start_gateway({GENERATION_SERVICE: f"127.0.0.1:{server.port}"}) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client,
    ):
        yield client, servicer


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


async def test_server_stream_as_server_sent_events(streaming, tenant):
    client, _ = streaming
    reply = await client.post("/v1/generations:stream", json={"prompt": "fresh matcha daily"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(reply.text)
    assert [data.get("textDelta") for _, data in events[:-1]] == [f"[{tenant} campaign]", "fresh", "matcha", "daily"]
    assert events[-1] == ("message", {"textDelta": "", "result": events[-1][1]["result"]})
    assert events[-1][1]["result"]["text"] == "fresh matcha daily"
    assert events[-1][1]["result"]["finishReason"] == "FINISH_REASON_END_OF_TEXT"


async def test_server_stream_as_ndjson_when_asked(streaming):
    client, _ = streaming
    reply = await client.post(
        "/v1/generations:stream", json={"prompt": "two words"}, headers={"accept": "application/x-ndjson"}
    )
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [line["result"]["textDelta"] for line in lines[1:3]] == ["two", "words"]
    assert lines[-1]["result"]["result"]["text"] == "two words"


async def test_refusal_before_the_first_message_keeps_its_http_status(streaming):
    client, _ = streaming
    reply = await client.post("/v1/generations:stream", json={"prompt": ""})
    assert reply.status_code == 400
    violations = reply.json()["details"][0]["fieldViolations"]
    assert violations[0]["field"] == "prompt"


async def test_failure_mid_stream_is_an_error_event(streaming):
    client, _ = streaming
    sse = await client.post("/v1/generations:stream", json={"prompt": f"one {FAIL}"})
    events = _sse_events(sse.text)
    assert events[1] == ("message", {"textDelta": "one"})
    kind, status = events[-1]
    assert kind == "error" and status["code"] == 14
    assert status["details"][0]["reason"] == "MODEL_BACKEND_DOWN"

    ndjson = await client.post(
        "/v1/generations:stream", json={"prompt": f"one {FAIL}"}, headers={"accept": "application/x-ndjson"}
    )
    assert json.loads(ndjson.text.splitlines()[-1])["error"]["code"] == 14


async def test_client_disconnect_cancels_the_grpc_call(streaming):
    client, servicer = streaming
    async with client.stream("POST", "/v1/generations:stream", json={"prompt": f"start {WAIT}"}) as reply:
        lines = reply.aiter_lines()
        while "start" not in await anext(lines):
            pass
    await asyncio.wait_for(servicer.cancelled.wait(), timeout=10)
