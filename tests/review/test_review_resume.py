"""A conductor run parks on review and resumes with the decision, delivered through the outbox.

Real conductor, real review service, real PostgreSQL: the run's plan submits its draft to the
review service, the run waits, a reviewer decides, the dispatcher signals the run.
"""

import grpc
from google.protobuf import json_format, struct_pb2

from matcha.conductor.app import build_conductor_service
from matcha.conductor.keys import ConductorKeys, load_or_create_secret
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.review.v1 import review_pb2
from matcha.runtime.governance import ResumeCapability
from tests.review.conftest import REVIEWER, draft, eventually, write_service_token
from tests.support import free_port, refused

REVIEW_SERVICE = "matcha.review.v1.ReviewService"

REVIEWED_COPY_PLAN = """
name: reviewed-copy
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: submit
    call: matcha.review.v1.ReviewService/Submit
    request:
      title: "Spring"
      content: "${inputs.text}"
      channel: CHANNEL_EMAIL
      four_eyes: true
      resume: {run_id: "${run.id}", signal_key: "approval"}
    output: "response.item.id"
  - id: approval
    depends_on: [submit]
    await: {roles: [review-service]}
outputs:
  item: "steps.submit.output"
  status: "steps.approval.output.status"
  content: "steps.approval.output.content"
  reviewer: "steps.approval.output.reviewer_subject"
"""

AWAIT_ONLY_PLAN = """
name: await-review
steps:
  - id: approval
    await: {roles: [review-service]}
outputs:
  status: "steps.approval.output.status"
  content: "steps.approval.output.content"
"""


FINISHED = (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_CANCELLED)


async def wait_for_run(stub, run_id: str, states=FINISHED) -> conductor_pb2.Run:
    async def reached():
        reply = await stub.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))
        return reply.run if reply.run.state in states else None

    return await eventually(reached, within_seconds=30)


def conductor_settings(postgres_url: str, state_dir, *, port: int = 0, review_port: int) -> ConductorSettings:
    return ConductorSettings(
        database_url=postgres_url,
        state_dir=state_dir,
        listen_address=f"127.0.0.1:{port}",
        conductor_endpoints={REVIEW_SERVICE: f"127.0.0.1:{review_port}"},
        conductor_lease_seconds=2.0,
        conductor_poll_seconds=0.5,
    )


def resume_for(settings: ConductorSettings, tenant: str, run_id: str, key: str = "approval") -> review_pb2.RunResume:
    """The resume a run's submit step would carry, issued with that conductor's secret."""
    keys = ConductorKeys(load_or_create_secret(settings.secret_path))
    capability = ResumeCapability(tenant, run_id, "submit", key).issue(keys.resume_key)
    return review_pb2.RunResume(run_id=run_id, signal_key=key, capability=capability)


async def start_run(conductor, plan: str, **inputs) -> conductor_pb2.Run:
    await conductor.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=plan))
    values = struct_pb2.Struct()
    values.update(inputs)
    name = "reviewed-copy" if "text" in inputs else "await-review"
    return (await conductor.StartRun(conductor_pb2.StartRunRequest(plan_name=name, inputs=values))).run


async def parked_run(serve, connect, settings: ConductorSettings, tenant: str) -> conductor_pb2.Run:
    """A run of AWAIT_ONLY_PLAN left WAITING in the database, its conductor stopped."""
    async with serve(build_conductor_service(settings), settings) as conductor_server:
        analyst = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant))
        run = await start_run(analyst, AWAIT_ONLY_PLAN)
        await wait_for_run(analyst, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
    return run


async def test_a_run_waits_for_review_and_resumes_with_the_approved_text(
    serve, connect, review_for, issuer, isolated_database, state_dir, review_settings, start_review, tenant
):
    review_port = free_port()
    settings = conductor_settings(isolated_database, state_dir, review_port=review_port)
    async with serve(build_conductor_service(settings), settings) as conductor_server:
        review_config = review_settings(
            database_url=isolated_database,
            listen_address=f"127.0.0.1:{review_port}",
            review_conductor_address=f"127.0.0.1:{conductor_server.port}",
        )
        write_service_token(issuer, review_config.tokens_dir, tenant)
        async with start_review(review_config) as (review_server, _):
            analyst = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, subject="ana"))
            run = await start_run(analyst, REVIEWED_COPY_PLAN, text="Our walking shoes are here.")
            waiting = await wait_for_run(analyst, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
            item_id = json_format.MessageToDict(waiting.steps[0].output)

            rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
            item = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item
            assert item.submitter_subject == "ana" and item.four_eyes
            assert (item.resume.run_id, item.resume.signal_key) == (run.id, "approval")
            assert not item.HasField("resume_delivery")  # nothing decided, nothing to deliver

            # Four-eyes holds for plans too: the run's principal may not approve its own draft.
            ana = review_for(tenant, server=review_server, roles=REVIEWER, subject="ana")
            details = await refused(ana.Decide(approve(item)), grpc.StatusCode.PERMISSION_DENIED)
            assert details.reason == "FOUR_EYES"

            # Rita's edit is a version of her own: under four-eyes another reviewer approves it.
            edited = "Our walking shoes are here, in every store."
            proposed = await rita.Decide(approve(item, edit=review_pb2.ContentEdit(title="Spring", content=edited)))
            sam = review_for(tenant, server=review_server, roles=REVIEWER, subject="sam")
            await sam.Decide(approve(proposed.item))

            finished = await wait_for_run(analyst, run.id)
            assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
            assert json_format.MessageToDict(finished.outputs) == {
                "item": item_id,
                "status": "REVIEW_STATUS_APPROVED",
                "content": edited,
                "reviewer": "sam",
            }
            got = await eventually(lambda: signalled(rita, item_id))
            assert got.item.resume_delivery.attempts == 1
            assert got.item.resume_delivery.deliver_time.seconds > 0


async def test_signals_wait_out_a_conductor_outage_and_a_review_restart(
    serve, connect, review_for, issuer, isolated_database, state_dir, review_settings, start_review, tenant
):
    conductor_port, review_port = free_port(), free_port()
    settings = conductor_settings(isolated_database, state_dir, port=conductor_port, review_port=review_port)
    run = await parked_run(serve, connect, settings, tenant)
    # The conductor is down now; its run stays WAITING in the database.

    review_config = review_settings(
        database_url=isolated_database,
        listen_address=f"127.0.0.1:{review_port}",
        review_conductor_address=f"127.0.0.1:{conductor_port}",
    )
    write_service_token(issuer, review_config.tokens_dir, tenant)
    async with start_review(review_config) as (review_server, _):
        writer = review_for(tenant, server=review_server)
        item = (await writer.Submit(draft(resume=resume_for(settings, tenant, run.id)))).item
        rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
        decided = await rita.Decide(approve(item))
        # The decision does not wait for the conductor.
        assert decided.item.status == review_pb2.REVIEW_STATUS_APPROVED

        async def retried():
            got = await rita.Get(review_pb2.GetRequest(item_id=item.id))
            return got if got.item.resume_delivery.attempts >= 2 else None

        pending = (await eventually(retried)).item.resume_delivery
        assert pending.state == review_pb2.DELIVERY_STATE_PENDING
        assert pending.last_error.code == grpc.StatusCode.UNAVAILABLE.value[0]

    # Both come back: the review service restarted on its database, the conductor on its port.
    async with (
        serve(build_conductor_service(settings), settings) as conductor_server,
        start_review(review_config) as (review_server, _),
    ):
        rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
        got = await eventually(lambda: signalled(rita, item.id))
        assert got.item.status == review_pb2.REVIEW_STATUS_APPROVED
        assert got.item.approved_sha256 == item.content_sha256
        assert [d.reviewer_subject for d in got.item.decisions] == ["rita"]
        assert got.item.resume_delivery.attempts > 2

        analyst = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant))
        finished = await wait_for_run(analyst, run.id)
        assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
        assert json_format.MessageToDict(finished.outputs) == {
            "status": "REVIEW_STATUS_APPROVED",
            "content": item.content,
        }


async def test_a_refused_signal_is_not_retried(
    serve, connect, review_for, issuer, isolated_database, state_dir, review_settings, start_review, tenant
):
    """The conductor refuses a signal for a run it does not know: the delivery fails at once, visibly."""
    settings = conductor_settings(isolated_database, state_dir, review_port=free_port())
    async with serve(build_conductor_service(settings), settings) as conductor_server:
        review_config = review_settings(
            database_url=isolated_database, review_conductor_address=f"127.0.0.1:{conductor_server.port}"
        )
        write_service_token(issuer, review_config.tokens_dir, tenant)
        async with start_review(review_config) as (review_server, _):
            writer = review_for(tenant, server=review_server)
            unknown_run = "00000000-0000-0000-0000-000000000000"
            item = (await writer.Submit(draft(resume=resume_for(settings, tenant, unknown_run)))).item
            rita = review_for(tenant, server=review_server, roles=REVIEWER)
            await rita.Decide(
                review_pb2.DecideRequest(
                    item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_REJECT, comment="no"
                )
            )

            async def failed():
                got = await rita.Get(review_pb2.GetRequest(item_id=item.id))
                delivery = got.item.resume_delivery
                return delivery if delivery.state == review_pb2.DELIVERY_STATE_FAILED else None

            delivery = await eventually(failed)
            assert delivery.attempts == 1 and delivery.last_error.code == grpc.StatusCode.NOT_FOUND.value[0]


def approve(item, **kwargs) -> review_pb2.DecideRequest:
    return review_pb2.DecideRequest(
        item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE, **kwargs
    )


async def signalled(stub, item_id: str):
    # Waits for the connection: right after a restart on the same port, gRPC's shared subchannel may still be
    # backing off from the refusals it met while the server was down.
    got = await stub.Get(review_pb2.GetRequest(item_id=item_id), wait_for_ready=True)
    delivered = got.item.resume_delivery.state == review_pb2.DELIVERY_STATE_DELIVERED
    return got if delivered and got.history[-1].type == review_pb2.REVIEW_EVENT_TYPE_RUN_SIGNALLED else None
