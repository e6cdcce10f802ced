"""Durable runs: a second conductor finishes what a stopped or killed one started, without re-running
checkpointed work; a capability restarted mid-run is waited out through retries."""

import asyncio
import collections
import json
import os
import signal
import sys
from types import SimpleNamespace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from tests.conductor.support import EMBEDDING_SERVICE, events_of, start, wait_for_run
from tests.support import free_port

ITEMS = 12
FAN_OUT_PLAN = """
name: embed-many
inputs:
  - {name: texts, type: list, required: true}
steps:
  - id: prepare
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["prepare"]}
    output: "response.dimension"
  - id: embed_all
    call: matcha.embedding.v1.EmbeddingService/Embed
    depends_on: [prepare]
    for_each: {items: "inputs.texts", concurrency: 1}
    request: {texts: ["${item}"]}
    output: "response.dimension"
    # About 17 s of retries: a capability restart on a loaded machine can take several seconds.
    retry: {max_attempts: 10, initial_backoff: 0.1s, max_backoff: 4s}
  - id: finish
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["done ${string(steps.embed_all.output.size())}"]}
    output: "response.dimension"
outputs:
  count: "steps.embed_all.output.size()"
"""
TEXTS = [f"customer review number {index}: the delivery was on time and the fit is perfect" for index in range(ITEMS)]


async def progress_reached(stub, run_id: str, items: int, within_seconds: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_seconds
    while asyncio.get_running_loop().time() < deadline:
        run = (await stub.GetRun(conductor_pb2.GetRunRequest(run_id=run_id))).run
        fan_out = next(step for step in run.steps if step.step_id == "embed_all")
        if fan_out.progress.completed >= items:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fan-out did not reach {items} items")


async def assert_each_item_ran_once(auditor, run_id: str, proxy) -> None:
    """One ledger row per checkpointed call; the capability saw each idempotency key once, except at
    most the one call in flight when the first conductor went away (sent again under the same key)."""
    ledger = (await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run_id, page_size=1000))).records
    hops = collections.Counter((row.step_id, row.item_index if row.HasField("item_index") else None) for row in ledger)
    assert hops == collections.Counter(
        [("prepare", None), ("finish", None), *(("embed_all", index) for index in range(ITEMS))]
    )
    keys = collections.Counter(metadata["x-matcha-idempotency-key"] for metadata, _ in proxy.received("/Embed"))
    assert set(keys) == {f"{run_id}/prepare/0", f"{run_id}/finish/0"} | {
        f"{run_id}/embed_all/{index}" for index in range(ITEMS)
    }
    assert sum(count - 1 for count in keys.values()) <= 1, keys


async def test_a_run_moves_to_another_conductor_when_its_conductor_stops(
    conductor_via_proxy, embedding_proxy, connect, tenant
):
    first = await conductor_via_proxy()
    stub = conductor_pb2_grpc.ConductorServiceStub(connect(first, tenant))
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_PLAN))
    run = await start(stub, "embed-many", texts=TEXTS)
    await progress_reached(stub, run.id, 4)

    second = await conductor_via_proxy()
    await first.stop()  # its leases are released: the second process takes over at once
    second_stub = conductor_pb2_grpc.ConductorServiceStub(connect(second, tenant))
    finished = await wait_for_run(second_stub, run.id, within_seconds=90)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    assert finished.outputs["count"] == ITEMS
    types = [event.type for event in await events_of(second_stub, run.id)]
    assert types.count(conductor_pb2.RUN_EVENT_TYPE_RUN_RECOVERED) == 1
    assert types.count(conductor_pb2.RUN_EVENT_TYPE_STEP_PROGRESS) == ITEMS
    auditor = conductor_pb2_grpc.ConductorServiceStub(connect(second, tenant, roles=("auditor",)))
    await assert_each_item_ran_once(auditor, run.id, embedding_proxy)


async def wait_until_serving(address: str, process: asyncio.subprocess.Process) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            assert process.returncode is None, "conductor process exited"
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("conductor process never served")


async def test_a_killed_conductor_process_is_taken_over_at_its_last_checkpoint(
    conductor_via_proxy, embedding_proxy, connect, tenant, isolated_database, state_dir, key_paths
):
    port = free_port()
    environment = {
        **os.environ,
        "MATCHA_DATABASE_URL": isolated_database,
        "MATCHA_STATE_DIR": str(state_dir),
        "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MATCHA_AUTH_PUBLIC_KEY_FILE": str(key_paths.public),
        "MATCHA_CONDUCTOR_ENDPOINTS": json.dumps({EMBEDDING_SERVICE: f"127.0.0.1:{embedding_proxy.port}"}),
        "MATCHA_CONDUCTOR_LEASE_SECONDS": "2",
        "MATCHA_CONDUCTOR_POLL_SECONDS": "0.5",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "matcha.conductor",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_until_serving(f"127.0.0.1:{port}", process)
        doomed = conductor_pb2_grpc.ConductorServiceStub(connect(SimpleNamespace(port=port), tenant))
        await doomed.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_PLAN))
        run = await start(doomed, "embed-many", texts=TEXTS)
        await progress_reached(doomed, run.id, 4)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    survivor = await conductor_via_proxy()
    stub = conductor_pb2_grpc.ConductorServiceStub(connect(survivor, tenant))
    finished = await wait_for_run(stub, run.id, within_seconds=90)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    events = await events_of(stub, run.id)
    assert [event.type for event in events].count(conductor_pb2.RUN_EVENT_TYPE_RUN_RECOVERED) == 1
    auditor = conductor_pb2_grpc.ConductorServiceStub(connect(survivor, tenant, roles=("auditor",)))
    await assert_each_item_ran_once(auditor, run.id, embedding_proxy)


async def test_a_capability_restarted_mid_run_is_waited_out_by_retries(
    conductor_settings, embedding_settings, serve, connect, local_encoder, tenant, isolated_database
):
    # A real embedding server on a fixed port, so that it can come back where the conductor expects it.
    port = free_port()
    settings = embedding_settings(listen_address=f"127.0.0.1:{port}")
    capability = serve(build_embedding_service(settings, encoder=local_encoder), settings)
    await capability.__aenter__()
    orchestration = conductor_settings(
        database_url=isolated_database, conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{port}"}
    )
    async with serve(build_conductor_service(orchestration), orchestration) as conductor:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_PLAN))
        run = await start(stub, "embed-many", texts=TEXTS)
        await progress_reached(stub, run.id, 3)
        await capability.__aexit__(None, None, None)
        await asyncio.sleep(1.0)
        capability = serve(build_embedding_service(settings, encoder=local_encoder), settings)
        await capability.__aenter__()
        try:
            finished = await wait_for_run(stub, run.id, within_seconds=90)
        finally:
            await capability.__aexit__(None, None, None)
        assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
        retries = [
            event for event in await events_of(stub, run.id) if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_RETRYING
        ]
        assert retries and all(event.error.code == grpc.StatusCode.UNAVAILABLE.value[0] for event in retries)
        auditor = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant, roles=("auditor",)))
        ledger = (await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run.id, page_size=1000))).records
        failed_attempts = [row for row in ledger if row.status_code == grpc.StatusCode.UNAVAILABLE.value[0]]
        assert len(failed_attempts) == len(retries)
