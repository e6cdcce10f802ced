"""Bounded work: a plan cannot freeze a conductor replica with a costly expression or an unbounded fan-out."""

import asyncio

import grpc

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from tests.conductor.support import start, step, wait_for_run

BOMB_PLAN = """
name: bomb
inputs:
  - {name: xs, type: list, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    when: "inputs.xs.map(a, inputs.xs.map(b, inputs.xs.map(c, a + b + c))).size() > 0"
    request: {texts: ["never sent"]}
"""

FAN_OUT_PLAN = """
name: wide
inputs:
  - {name: texts, type: list, required: true}
steps:
  - id: embed_all
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "inputs.texts", concurrency: 2}
    request: {texts: ["${item}"]}
"""


async def longest_stall(until: asyncio.Task, tick: float = 0.05) -> float:
    """The longest the event loop was away between two ticks while `until` runs."""
    loop, longest = asyncio.get_running_loop(), 0.0
    while not until.done():
        before = loop.time()
        await asyncio.sleep(tick)
        longest = max(longest, loop.time() - before - tick)
    return longest


async def test_a_costly_expression_is_stopped_at_its_time_limit_without_freezing_the_replica(conductor_for, tenant):
    """Three nested comprehensions over 200 items (8,000,000 elements) took minutes on the event loop: the
    replica stopped renewing its leases. It now runs in a worker process stopped at the time limit."""
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=BOMB_PLAN))
    run = await start(stub, "bomb", xs=list(range(200)))
    finished = asyncio.create_task(wait_for_run(stub, run.id, within_seconds=60))
    stall = await longest_stall(finished)
    run = await finished
    assert run.state == conductor_pb2.RUN_STATE_FAILED
    error = step(run, "embed").error
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and "stopped after 2 s" in error.message
    assert stall < 1.5, f"the event loop stalled {stall:.2f} s"
    # The replica still runs plans, the evaluator's worker included.
    small = await start(stub, "bomb", xs=[1, 2])
    assert (await wait_for_run(stub, small.id)).state == conductor_pb2.RUN_STATE_SUCCEEDED


async def test_an_expression_over_its_cost_ceiling_is_refused_unrun(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=BOMB_PLAN))
    run = await wait_for_run(stub, (await start(stub, "bomb", xs=list(range(1000)))).id)
    error = step(run, "embed").error
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "estimated cost 1000000000 elements is above the budget" in error.message


async def test_a_fan_out_above_its_item_limit_fails_the_step(
    conductor_settings, serve, connect, tenant, isolated_database
):
    settings = conductor_settings(database_url=isolated_database, conductor_max_fan_out_items=3)
    async with serve(build_conductor_service(settings), settings) as conductor:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_PLAN))
        wide = await wait_for_run(stub, (await start(stub, "wide", texts=["a", "b", "c", "d"])).id)
        assert wide.state == conductor_pb2.RUN_STATE_FAILED
        error = step(wide, "embed_all").error
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and "4 items, at most 3" in error.message
        assert not step(wide, "embed_all").progress.completed
        within = await wait_for_run(stub, (await start(stub, "wide", texts=["a", "b", "c"])).id)
        assert within.state == conductor_pb2.RUN_STATE_SUCCEEDED
