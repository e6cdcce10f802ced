"""The gateway's cost: the same calls over HTTP/JSON through the gateway and directly over gRPC, same run.

Targets (issue): unary p50 latency ratio <= 1.5; throughput with 16 concurrent clients >= 0.6x;
first Server-Sent Event at most 10 ms later than the first message of the direct gRPC stream.

The gateway runs as its own process (`python -m matcha.gateway`), as deployed; the embedding
service and the latency clients share this process; the 16 throughput clients run in a process of
their own, on both sides, so that their work does not slow the service's event loop. The unary call
is Embed of one short text (the model runs on every call, as in production); GetCollection (one
indexed PostgreSQL read, no model) is measured too, as the worst case for a relative overhead, and
reported without a target.
"""

import asyncio
import json
import os
import signal
import statistics
import sys
import time

import httpx
import pytest

from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from tests.gateway.scripted_backends import GENERATION_SERVICE, WordStreamingGeneration, word_streaming_definition
from tests.support import free_port

pytestmark = pytest.mark.bench

WARMUP, SAMPLES, CLIENTS, CALLS_PER_CLIENT, STREAMS = 30, 300, 16, 40, 100


@pytest.fixture
async def generation_server(serve, embedding_settings):
    async with serve(word_streaming_definition(WordStreamingGeneration()), embedding_settings()) as server:
        yield server


@pytest.fixture
async def gateway_url(embedding_server, generation_server, state_dir):
    backends = {
        EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}",
        GENERATION_SERVICE: f"127.0.0.1:{generation_server.port}",
    }
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("MATCHA_", "OTEL_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "matcha.gateway",
        env={
            **environment,
            "MATCHA_STATE_DIR": str(state_dir),
            "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "MATCHA_GATEWAY_BACKENDS": json.dumps(backends),
            "MATCHA_LOG_LEVEL": "WARNING",
        },
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(300):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    yield url
    process.send_signal(signal.SIGTERM)
    await process.wait()


async def _timed(call) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _p50(call) -> float:
    for _ in range(WARMUP):
        await call()
    return statistics.median([await _timed(call) for _ in range(SAMPLES)])


async def _throughput(mode: str, target: str, method: str, token: str) -> float:
    """Calls per second of CLIENTS concurrent clients run in a process of their own (see load_clients)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.benchmarks.load_clients",
        mode,
        target,
        method,
        f"--token={token}",
        f"--clients={CLIENTS}",
        f"--calls={CALLS_PER_CLIENT}",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0, "load clients failed"
    return json.loads(stdout)["calls_per_second"]


async def test_gateway_overhead(gateway_url, connect, embedding_server, generation_server, issuer, tenant):
    token = issuer.mint(subject="bench", tenant=tenant, roles=["analyst", "author", "operator"])
    headers = {"authorization": f"Bearer {token}", "x-matcha-purpose": "campaign", "x-matcha-data-class": "INTERNAL"}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    grpc_stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await grpc_stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="bench"))
    figures = {}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, limits=limits, timeout=60) as http:

        async def http_embed():
            reply = await http.post("/v1/embeddings:embed", json={"texts": ["matcha latte with oat milk"]})
            assert reply.status_code == 200

        async def grpc_embed():
            await grpc_stub.Embed(embedding_pb2.EmbedRequest(texts=["matcha latte with oat milk"]))

        async def http_get():
            assert (await http.get("/v1/collections/bench")).status_code == 200

        async def grpc_get():
            await grpc_stub.GetCollection(embedding_pb2.GetCollectionRequest(name="bench"))

        direct_target = f"127.0.0.1:{embedding_server.port}"
        for name, through_gateway, direct in (("Embed", http_embed, grpc_embed), ("GetCollection", http_get, grpc_get)):
            # Alternate the order so neither side always runs on a warmer process.
            direct_p50, gateway_p50 = await _p50(direct), await _p50(through_gateway)
            gateway_rate = await _throughput("http", gateway_url, name, token)
            direct_rate = await _throughput("grpc", direct_target, name, token)
            figures[name] = (direct_p50, gateway_p50, direct_rate, gateway_rate)
            print(
                f"\n{name}: p50 direct {direct_p50 * 1000:.2f} ms, gateway {gateway_p50 * 1000:.2f} ms "
                f"(ratio {gateway_p50 / direct_p50:.2f}); {CLIENTS} clients: direct {direct_rate:.0f}/s, "
                f"gateway {gateway_rate:.0f}/s ({gateway_rate / direct_rate:.2f}x)"
            )

        generation_stub = generation_pb2_grpc.GenerationServiceStub(connect(generation_server, tenant))
        first_event_delays = await _first_event_delays(http, generation_stub)

    delay_p50 = statistics.median(first_event_delays)
    print(f"SSE first event: {delay_p50 * 1000:.2f} ms later than the direct stream's first message (median)")
    direct_p50, gateway_p50, direct_rate, gateway_rate = figures["Embed"]
    assert gateway_p50 / direct_p50 <= 1.5
    assert gateway_rate / direct_rate >= 0.6
    assert delay_p50 <= 0.010


async def _first_event_delays(http, stub) -> list[float]:
    """Per round: time to the first SSE event through the gateway minus time to the first gRPC message."""
    request = generation_pb2.GenerateStreamRequest(prompt="fresh matcha every morning")

    async def grpc_first() -> float:
        started = time.perf_counter()
        call = stub.GenerateStream(request)
        await call.read()
        elapsed = time.perf_counter() - started
        call.cancel()
        return elapsed

    async def sse_first() -> float:
        started = time.perf_counter()
        async with http.stream("POST", "/v1/generations:stream", json={"prompt": request.prompt}) as reply:
            async for line in reply.aiter_lines():
                if line.startswith("data: "):
                    return time.perf_counter() - started
        raise AssertionError("no event")

    for _ in range(10):
        await grpc_first()
        await sse_first()
    return [await sse_first() - await grpc_first() for _ in range(STREAMS)]
