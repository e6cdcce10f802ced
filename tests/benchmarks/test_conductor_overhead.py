"""Conductor overhead against the raw baseline, in the same run.

Per hop: a plan of 20 sequential steps calling EmbeddingService/Embed on one short text, with
durable checkpoints, events and an audit row per hop, against the same 20 calls made directly
by a client. Target ratio at most 2.0 (aim 1.5), median of interleaved rounds.

Throughput: 200 concurrent one-step runs; runs/s with tracing exported (batch processor into
memory) against tracing off, both with auditing on (the ledger row is written in the same
transaction as the checkpoint and cannot be switched off). Aim at least 0.85.
"""

import asyncio
import statistics
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from google.protobuf import struct_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc

pytestmark = pytest.mark.bench

STEPS, ROUNDS, CONCURRENT_RUNS = 20, 5, 200
EMBEDDING_SERVICE = "matcha.embedding.v1.EmbeddingService"
TEXT = "spring sale on linen dresses"


def chain_plan() -> str:
    lines = ["name: chain", "steps:"]
    for index in range(STEPS):
        lines += [f"  - id: s{index}", f"    call: {EMBEDDING_SERVICE}/Embed", f'    request: {{texts: ["{TEXT}"]}}']
        lines += ['    output: "response.dimension"']
        if index:
            lines.append(f"    depends_on: [s{index - 1}]")
    return "\n".join(lines) + "\n"


ONE_STEP_PLAN = f"""
name: one
inputs: [{{name: text, type: string, required: true}}]
steps:
  - id: embed
    call: {EMBEDDING_SERVICE}/Embed
    request: {{texts: ["${{inputs.text}}"]}}
    output: "response.dimension"
"""


async def fresh_database(postgres_url: str) -> str:
    """Its own database, so that no other conductor of the session claims these runs."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))


def conductor_settings(state_dir, embedding_server, database_url) -> ConductorSettings:
    return ConductorSettings(
        database_url=database_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"},
        conductor_poll_seconds=0.5,
    )


async def run_to_end(stub, request) -> float:
    started = time.perf_counter()
    run = (await stub.StartRun(request)).run
    async for reply in stub.WatchRun(conductor_pb2.WatchRunRequest(run_id=run.id)):
        if reply.event.type == conductor_pb2.RUN_EVENT_TYPE_RUN_SUCCEEDED:
            return time.perf_counter() - started
        assert reply.event.type not in (
            conductor_pb2.RUN_EVENT_TYPE_RUN_FAILED,
            conductor_pb2.RUN_EVENT_TYPE_RUN_CANCELLED,
        )
    raise AssertionError("run ended without a terminal event")


async def test_per_hop_overhead_of_a_durable_plan(postgres_url, state_dir, embedding_server, serve, connect, tenant):
    settings = conductor_settings(state_dir, embedding_server, await fresh_database(postgres_url))
    async with serve(build_conductor_service(settings), settings) as conductor:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
        embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=chain_plan()))
        request = conductor_pb2.StartRunRequest(plan_name="chain")

        async def direct() -> float:
            started = time.perf_counter()
            for _ in range(STEPS):
                reply = await embedding.Embed(embedding_pb2.EmbedRequest(texts=[TEXT]))
                assert reply.dimension == 384
            return time.perf_counter() - started

        await direct()
        await run_to_end(stub, request)  # warm both paths
        planned, raw = [], []
        for _ in range(ROUNDS):
            raw.append(await direct())
            planned.append(await run_to_end(stub, request))
    planned_ms, raw_ms = statistics.median(planned) * 1000, statistics.median(raw) * 1000
    ratio = planned_ms / raw_ms
    print(
        f"\nconductor per-hop: direct {raw_ms:.0f} ms, plan {planned_ms:.0f} ms for {STEPS} calls; "
        f"ratio {ratio:.2f}; overhead {(planned_ms - raw_ms) / STEPS:.1f} ms per hop"
    )
    assert ratio <= 2.0


async def throughput(postgres_url, state_dir, embedding_server, serve, connect, tenant, provider) -> float:
    settings = conductor_settings(state_dir, embedding_server, await fresh_database(postgres_url))
    async with serve(build_conductor_service(settings, provider), settings, provider) as conductor:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=ONE_STEP_PLAN))

        def request(index: int) -> conductor_pb2.StartRunRequest:
            inputs = struct_pb2.Struct()
            inputs.update({"text": f"{TEXT} {index}"})
            return conductor_pb2.StartRunRequest(plan_name="one", inputs=inputs)

        await run_to_end(stub, request(-1))
        started = time.perf_counter()
        await asyncio.gather(*(run_to_end(stub, request(index)) for index in range(CONCURRENT_RUNS)))
        return CONCURRENT_RUNS / (time.perf_counter() - started)


async def test_throughput_of_concurrent_runs_with_tracing(
    postgres_url, state_dir, embedding_server, serve, connect, tenant
):
    exporter = InMemorySpanExporter()
    traced = TracerProvider()
    traced.add_span_processor(BatchSpanProcessor(exporter))
    untraced = await throughput(postgres_url, state_dir, embedding_server, serve, connect, tenant, NoOpTracerProvider())
    with_tracing = await throughput(postgres_url, state_dir, embedding_server, serve, connect, tenant, traced)
    traced.shutdown()
    assert exporter.get_finished_spans()
    ratio = with_tracing / untraced
    print(
        f"\nconductor throughput: {CONCURRENT_RUNS} concurrent runs, {untraced:.1f} runs/s untraced, "
        f"{with_tracing:.1f} runs/s traced; ratio {ratio:.2f}"
    )
    assert ratio >= 0.7
