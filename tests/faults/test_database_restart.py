"""PostgreSQL restarted in the middle of a run: the run completes from its checkpoints, no call is repeated
but the one in flight (sent again under its idempotency key), the ledger verifies, and notifications resume."""

import asyncio

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from tests.conductor.support import EMBEDDING_SERVICE, events_of, start, wait_for_run
from tests.conductor.test_durability import FAN_OUT_PLAN, ITEMS, TEXTS, assert_each_item_ran_once, progress_reached


async def test_a_run_survives_a_postgresql_restart(
    restartable_postgres, conductor_settings, serve, connect, embedding_proxy, tenant
):
    settings = conductor_settings(
        database_url=restartable_postgres.url,
        conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{embedding_proxy.port}"},
        # Polling is a slow fallback here, so that the last check below tells notifications from polls.
        conductor_poll_seconds=30.0,
    )
    async with serve(build_conductor_service(settings), settings) as conductor:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_PLAN))
        run = await start(stub, "embed-many", texts=TEXTS)
        await progress_reached(stub, run.id, 3)

        await asyncio.to_thread(restartable_postgres.restart)  # every connection of the conductor is cut

        finished = await wait_for_run(stub, run.id, within_seconds=120)
        assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
        assert finished.outputs["count"] == ITEMS
        events = await events_of(stub, run.id)
        assert [event.sequence for event in events] == list(range(1, len(events) + 1))
        auditor = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant, roles=("auditor",)))
        await assert_each_item_ran_once(auditor, run.id, embedding_proxy)
        verified = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())
        assert verified.intact and verified.records_checked > 0, verified

        # Notifications flow again: a run started now wakes the conductor at once, not at its next poll.
        again = await start(stub, "embed-many", texts=TEXTS[:2])
        assert (await wait_for_run(stub, again.id, within_seconds=20)).state == conductor_pb2.RUN_STATE_SUCCEEDED
