"""A conductor never makes up a secret its replicas do not share, and never runs state it cannot trust."""

import secrets

import asyncpg
import grpc
import pytest

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from tests.conductor.support import start, wait_for_run
from tests.support import refused

AWAIT_PLAN = """
name: hold
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: wait
    await: {}
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    depends_on: [wait]
    request: {texts: ["${inputs.text}"]}
"""


def test_with_an_external_database_a_missing_secret_stops_the_conductor(conductor_settings, tmp_path):
    settings = conductor_settings(
        database_url="postgresql://matcha@db.internal.example:5432/matcha",
        conductor_secret_file=tmp_path / "secret.key",
    )
    with pytest.raises(SystemExit, match="MATCHA_CONDUCTOR_SECRET_FILE"):
        build_conductor_service(settings)
    assert not (tmp_path / "secret.key").exists()


async def _conductor(conductor_settings, serve, database_url, secret_path):
    settings = conductor_settings(database_url=database_url, conductor_secret_file=secret_path)
    return serve(build_conductor_service(settings), settings)


async def test_a_run_sealed_under_another_secret_fails_with_that_reason(
    conductor_settings, serve, connect, tenant, isolated_database, tmp_path
):
    """Two replicas that each made up a secret: the second cannot read the first's runs. The run fails once,
    naming why, instead of being claimed again at every lease for ever."""
    for name in ("first.key", "second.key"):
        (tmp_path / name).write_text(secrets.token_hex(32))
    async with await _conductor(conductor_settings, serve, isolated_database, tmp_path / "first.key") as first:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(first, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=AWAIT_PLAN))
        run = await start(stub, "hold", text="sealed")
        await wait_for_run(stub, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
    async with await _conductor(conductor_settings, serve, isolated_database, tmp_path / "second.key") as second:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(second, tenant))
        await stub.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="wait"))
        failed = await wait_for_run(stub, run.id)
    assert failed.state == conductor_pb2.RUN_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "another conductor secret" in failed.error.message


async def test_a_stored_plan_altered_behind_the_conductor_does_not_run(
    conductor_settings, serve, connect, tenant, isolated_database, tmp_path
):
    """Someone with database access edits a registered plan: the run fails on the digest, nothing is called."""
    (tmp_path / "secret.key").write_text(secrets.token_hex(32))
    async with await _conductor(conductor_settings, serve, isolated_database, tmp_path / "secret.key") as server:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=AWAIT_PLAN))
        run = await start(stub, "hold", text="original")
        await wait_for_run(stub, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
        database = await asyncpg.connect(isolated_database)
        try:
            await database.execute(
                """UPDATE conductor_plans SET spec = jsonb_set(spec, '{steps,1,request,texts,0}', '"exfiltrate"')
                   WHERE tenant = $1 AND name = 'hold'""",
                tenant,
            )
        finally:
            await database.close()
        refusal = await refused(
            stub.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="wait")), grpc.StatusCode.FAILED_PRECONDITION
        )
        assert refusal.reason == "PLAN_DIGEST_MISMATCH"
        # A replica claiming the run (lease expired, say) fails it on the digest too.
        database = await asyncpg.connect(isolated_database)
        try:
            await database.execute("UPDATE conductor_runs SET state = 'RUNNING' WHERE id = $1", run.id)
        finally:
            await database.close()
        failed = await wait_for_run(stub, run.id)
    assert failed.state == conductor_pb2.RUN_STATE_FAILED
    assert "does not match its registered SHA-256" in failed.error.message
    assert not [step for step in failed.steps if step.step_id == "embed" and step.attempts]
