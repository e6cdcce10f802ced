"""A plan edited in the database behind the conductor is neither run nor shown as the plan."""

import asyncpg
import grpc

from matcha.conductor.v1 import conductor_pb2
from tests.support import refused, struct

PLAN = """
name: tamper-target
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["${inputs.text}"]}
"""


async def _alter_stored_spec(postgres_url: str, tenant: str) -> None:
    database = await asyncpg.connect(postgres_url)
    try:
        altered = await database.execute(
            """UPDATE conductor_plans SET spec = jsonb_set(spec, '{steps,0,request,texts,0}', '"exfiltrate"')
               WHERE tenant = $1 AND name = 'tamper-target'""",
            tenant,
        )
    finally:
        await database.close()
    assert altered == "UPDATE 1"


async def test_a_run_of_a_plan_altered_in_the_database_does_not_start(conductor_for, postgres_url, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=PLAN))
    await _alter_stored_spec(postgres_url, tenant)

    start = stub.StartRun(conductor_pb2.StartRunRequest(plan_name="tamper-target", inputs=struct({"text": "hi"})))
    refusal = await refused(start, grpc.StatusCode.FAILED_PRECONDITION)
    assert refusal.reason == "PLAN_DIGEST_MISMATCH"
    assert refusal.metadata == {"name": "tamper-target", "version": "1"}
    runs = await stub.ListRuns(conductor_pb2.ListRunsRequest(plan_name="tamper-target"))
    assert not runs.runs

    shown = await refused(
        stub.GetPlan(conductor_pb2.GetPlanRequest(name="tamper-target")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert shown.reason == "PLAN_DIGEST_MISMATCH"


async def test_registering_the_plan_again_after_an_alteration_stores_a_new_version(conductor_for, postgres_url, tenant):
    """The altered row does not pass for the document it claims to be: the honest plan gets a version of its own."""
    stub = conductor_for(tenant)
    first = await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=PLAN))
    await _alter_stored_spec(postgres_url, tenant)

    again = await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=PLAN))
    assert again.created and again.plan.version == first.plan.version + 1
    run = await stub.StartRun(conductor_pb2.StartRunRequest(plan_name="tamper-target", inputs=struct({"text": "hi"})))
    assert run.run.plan_version == again.plan.version
