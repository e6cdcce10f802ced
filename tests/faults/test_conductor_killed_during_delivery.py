"""The conductor process is killed while a reviewer's decision is being delivered to its waiting run: it has
taken the signal, and its answer is lost with the connection. The review service delivers again; the conductor
that comes back on the same address acknowledges the repeat without a second resume, finishes the run, and the
approved draft is published once; both ledgers verify."""

import asyncio
import json

import grpc
from google.protobuf import json_format

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.review.v1 import review_pb2
from tests.conductor.support import events_of, wait_for_run
from tests.faults.conftest import CuttingProxy, assert_ledgers_verify, wait_until_serving
from tests.review.conftest import REVIEWER, eventually, write_service_token
from tests.review.test_review_resume import approve, resume_for
from tests.support import free_port, struct

REVIEW = "matcha.review.v1.ReviewService"
PUBLISHED_COPY_PLAN = f"""
name: published-copy
inputs:
  - {{name: text, type: string, required: true}}
steps:
  - id: submit
    call: {REVIEW}/Submit
    request:
      title: "Spring"
      content: "${{inputs.text}}"
      channel: CHANNEL_EMAIL
      four_eyes: true
      resume: {{run_id: "${{run.id}}", signal_key: "approval"}}
    output: "response.item.id"
  - id: approval
    depends_on: [submit]
    await: {{roles: [review-service]}}
  - id: publish
    call: {REVIEW}/Publish
    when: "steps.approval.output.status == 'REVIEW_STATUS_APPROVED'"
    request:
      item_id: "${{steps.approval.output.item_id}}"
      content_sha256: "${{steps.approval.output.content_sha256}}"
    output: "response.publication.id"
    retry: {{max_attempts: 10, initial_backoff: 0.2s, max_backoff: 4s}}
outputs:
  status: "steps.approval.output.status"
  reviewer: "steps.approval.output.reviewer_subject"
  publication: "steps.publish.output"
"""
MARKETER = ("analyst", "author", "operator", "publisher")


async def test_the_conductor_killed_while_a_decision_is_delivered_resumes_the_run_once(
    serve,
    connect,
    review_for,
    issuer,
    conductor_settings,
    review_settings,
    start_review,
    service_processes,
    process_environment,
    isolated_database,
    workload_key_paths,
    tmp_path,
    tenant,
):
    review_port, conductor_port = free_port(), free_port()
    conductor_address = f"127.0.0.1:{conductor_port}"
    # The review service reaches the conductor through the proxy, which loses the first Signal's answer.
    proxy = CuttingProxy(conductor_address, free_port())
    proxy.cut_after("Signal", 0)
    review_config = review_settings(
        database_url=isolated_database,
        listen_address=f"127.0.0.1:{review_port}",
        review_conductor_address=f"127.0.0.1:{proxy.port}",
        review_publish_dir=tmp_path / "published",
    )
    write_service_token(issuer, review_config.tokens_dir, tenant)
    endpoints = {REVIEW: f"127.0.0.1:{review_port}"}
    doomed = service_processes(
        "matcha.conductor",
        {
            **process_environment,
            "MATCHA_LISTEN_ADDRESS": conductor_address,
            "MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE": str(workload_key_paths.private),
            "MATCHA_CONDUCTOR_ENDPOINTS": json.dumps(endpoints),
            "MATCHA_CONDUCTOR_LEASE_SECONDS": "2",
            "MATCHA_CONDUCTOR_POLL_SECONDS": "0.3",
        },
        conductor_address,
    )
    async with start_review(review_config) as (review_server, _):
        await doomed.start()
        await proxy.start()
        try:
            ana = conductor_pb2_grpc.ConductorServiceStub(
                connect(type("Address", (), {"port": conductor_port}), tenant, roles=MARKETER, subject="ana")
            )
            await ana.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=PUBLISHED_COPY_PLAN))
            run = (
                await ana.StartRun(
                    conductor_pb2.StartRunRequest(
                        plan_name="published-copy", inputs=struct({"text": "Our walking shoes are here."})
                    )
                )
            ).run
            waiting = await wait_for_run(ana, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
            item_id = json_format.MessageToDict(waiting.steps[0].output)

            rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
            item = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item
            await rita.Decide(approve(item))
            await asyncio.wait_for(proxy.cut_reached.wait(), 30)  # the conductor took the signal...
            await doomed.kill()  # ...and dies before its answer leaves
            await proxy.stop()
        finally:
            await doomed.kill()

        settings = conductor_settings(
            database_url=isolated_database, listen_address=conductor_address, conductor_endpoints=endpoints
        )
        async with serve(build_conductor_service(settings), settings) as survivor:
            await wait_until_serving(conductor_address)
            await proxy.start()
            try:
                analyst = conductor_pb2_grpc.ConductorServiceStub(connect(survivor, tenant, subject="ana"))

                async def run_finished():
                    # The channel may still be in its reconnect backoff from the killed process (subchannels are
                    # shared between channels to the same address): UNAVAILABLE until it reconnects.
                    try:
                        return await wait_for_run(analyst, run.id, within_seconds=45)
                    except grpc.aio.AioRpcError as error:
                        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                        return None

                finished = await eventually(run_finished, within_seconds=45, every_seconds=0.2)
                assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
                outputs = json_format.MessageToDict(finished.outputs)
                assert (outputs["status"], outputs["reviewer"]) == ("REVIEW_STATUS_APPROVED", "rita")

                # The review service delivered again and was answered; the run was resumed once.
                async def delivered():
                    got = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item.resume_delivery
                    return got if got.state != review_pb2.DELIVERY_STATE_PENDING else None

                delivery = await eventually(delivered, within_seconds=30)
                assert delivery.state == review_pb2.DELIVERY_STATE_DELIVERED, delivery
                assert delivery.attempts >= 2, delivery
                assert sum(count for (method, _), count in proxy.answered.items() if method == "Signal") >= 2
                events = await events_of(analyst, run.id)
                resumed = [event for event in events if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_RESUMED]
                assert len(resumed) == 1, resumed

                # Published once: one publication event, one document in the sink.
                history = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).history
                published = [event for event in history if event.type == review_pb2.REVIEW_EVENT_TYPE_PUBLISHED]
                assert len(published) == 1, history

                async def written():
                    documents = list((tmp_path / "published" / tenant).glob("*.json"))
                    return documents or None

                documents = await eventually(written, within_seconds=30)
                assert [json.loads(path.read_text())["publication_id"] for path in documents] == [
                    outputs["publication"]
                ]
                await assert_ledgers_verify(connect(survivor, tenant, roles=("auditor",)))

                # A delivery repeated after the run finished (its answer lost again) is acknowledged, not refused:
                # the review service would otherwise record a delivered decision as failed for good.
                review_service = conductor_pb2_grpc.ConductorServiceStub(
                    connect(survivor, tenant, roles=("review-service",), subject="review-service")
                )
                approval = next(step for step in finished.steps if step.step_id == "approval")
                repeated = await review_service.Signal(
                    conductor_pb2.SignalRequest(
                        run_id=run.id,
                        key="approval",
                        payload=approval.output.struct_value,
                        capability=resume_for(settings, tenant, run.id).capability,
                    )
                )
                assert repeated.disposition == conductor_pb2.SIGNAL_DISPOSITION_DUPLICATE
                assert repeated.run_state == conductor_pb2.RUN_STATE_SUCCEEDED
            finally:
                await proxy.stop()
