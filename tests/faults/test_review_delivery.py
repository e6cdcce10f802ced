"""The conductor goes away while a reviewer's decision is on its way to the waiting run: the review
service keeps delivering with backoff, the conductor that comes back resumes the run once, and the
ledger verifies."""

from google.protobuf import json_format

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, eventually, write_service_token
from tests.review.test_review_resume import (
    REVIEWED_COPY_PLAN,
    approve,
    conductor_settings,
    signalled,
    start_run,
    wait_for_run,
)
from tests.support import free_port


async def test_a_decision_delivered_while_the_conductor_is_down_resumes_the_run_once(
    serve, connect, review_for, issuer, isolated_database, state_dir, review_settings, start_review, tenant
):
    review_port, conductor_port = free_port(), free_port()
    settings = conductor_settings(isolated_database, state_dir, port=conductor_port, review_port=review_port)
    review_config = review_settings(
        database_url=isolated_database,
        listen_address=f"127.0.0.1:{review_port}",
        review_conductor_address=f"127.0.0.1:{conductor_port}",
    )
    write_service_token(issuer, review_config.tokens_dir, tenant)
    async with start_review(review_config) as (review_server, _):
        async with serve(build_conductor_service(settings), settings) as first:
            analyst = conductor_pb2_grpc.ConductorServiceStub(connect(first, tenant, subject="ana"))
            run = await start_run(analyst, REVIEWED_COPY_PLAN, text="Our walking shoes are here.")
            waiting = await wait_for_run(analyst, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
            item_id = json_format.MessageToDict(waiting.steps[0].output)
        # The conductor is gone: the decision is recorded and its delivery fails, then retries.
        rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
        item = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item
        await rita.Decide(approve(item))

        async def failed_at_least_once():
            got = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item
            return got if got.resume_delivery.attempts >= 2 and got.resume_delivery.last_error.code else None

        await eventually(failed_at_least_once, within_seconds=30)

        async with serve(build_conductor_service(settings), settings) as second:
            analyst = conductor_pb2_grpc.ConductorServiceStub(connect(second, tenant, subject="ana"))
            finished = await wait_for_run(analyst, run.id)
            assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
            outputs = json_format.MessageToDict(finished.outputs)
            assert (outputs["status"], outputs["reviewer"]) == ("REVIEW_STATUS_APPROVED", "rita")
            delivered = await eventually(lambda: signalled(rita, item_id), within_seconds=30)
            assert delivered.item.resume_delivery.state == review_pb2.DELIVERY_STATE_DELIVERED
            events = [reply.event async for reply in analyst.WatchRun(conductor_pb2.WatchRunRequest(run_id=run.id))]
            resumed = [event for event in events if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_RESUMED]
            assert len(resumed) == 1
            auditor = conductor_pb2_grpc.ConductorServiceStub(connect(second, tenant, roles=("auditor",)))
            verified = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())
            assert verified.intact and verified.records_checked > 0, verified
