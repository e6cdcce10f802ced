"""Attacks on signals: a pre-stored signal from a principal without the await step's roles, and a review
submission that names someone else's run to resume (or break) it."""

import asyncio

import grpc
from google.protobuf import json_format

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.governance import ResumeCapability
from tests.conductor.support import start, wait_for_run
from tests.support import free_port, refused, struct

# `gate` holds the run before `approval` waits, so a signal for `approval` is stored, not refused at once.
GATED_PLAN = """
name: gated-approval
steps:
  - id: gate
    await: {}
  - id: approval
    depends_on: [gate]
    await: {key: "'go'", roles: [reviewer]}
outputs:
  decision: "steps.approval.output.decision"
"""

AWAIT_REVIEW_PLAN = """
name: victim-awaits-review
steps:
  - id: approval
    await: {roles: [review-service]}
outputs:
  status: "steps.approval.output.status"
"""


def step(run, step_id):
    return next(item for item in run.steps if item.step_id == step_id)


async def test_a_signal_stored_before_the_step_waits_is_held_to_its_roles(conductor_for, tenant):
    operator = conductor_for(tenant, roles=("author", "operator", "analyst"), subject="olga")
    attacker = conductor_for(tenant, roles=("analyst",), subject="mallory")
    reviewer = conductor_for(tenant, roles=("reviewer", "analyst"), subject="rita")
    await operator.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=GATED_PLAN))
    run = await start(operator, "gated-approval")
    await wait_for_run(operator, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))

    stored = await attacker.Signal(
        conductor_pb2.SignalRequest(run_id=run.id, key="go", payload=struct({"decision": "APPROVED"}))
    )
    assert stored.disposition == conductor_pb2.SIGNAL_DISPOSITION_STORED
    await operator.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="gate", payload=struct({})))

    # The run reaches the approval step and keeps waiting: the stored signal's sender lacks the role.
    async def approval_reached():
        reply = await operator.GetRun(conductor_pb2.GetRunRequest(run_id=run.id, view=conductor_pb2.RUN_VIEW_FULL))
        current = reply.run
        assert current.state != conductor_pb2.RUN_STATE_SUCCEEDED, "the stored signal resumed the run"
        parked = current.state == conductor_pb2.RUN_STATE_WAITING
        return current if parked and step(current, "approval").state == conductor_pb2.STEP_STATE_WAITING else None

    waited = await _eventually(approval_reached)
    assert list(step(waited, "approval").awaited_keys) == ["go"]

    # A reviewer's decision is what resumes it.
    resumed = await reviewer.Signal(
        conductor_pb2.SignalRequest(run_id=run.id, key="go", payload=struct({"decision": "REJECTED"}))
    )
    assert resumed.disposition == conductor_pb2.SIGNAL_DISPOSITION_RESUMED
    finished = await wait_for_run(operator, run.id)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    assert json_format.MessageToDict(finished.outputs) == {"decision": "REJECTED"}


async def test_a_foreign_submit_cannot_resume_or_break_another_run(
    serve, connect, issuer, isolated_database, state_dir, tmp_path, tenant
):
    review_port = free_port()
    conductor_settings = ConductorSettings(
        database_url=isolated_database,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        conductor_endpoints={"matcha.review.v1.ReviewService": f"127.0.0.1:{review_port}"},
        conductor_lease_seconds=2.0,
        conductor_poll_seconds=0.5,
    )
    async with serve(build_conductor_service(conductor_settings), conductor_settings) as conductor_server:
        review_settings = ReviewSettings(
            database_url=isolated_database,
            state_dir=state_dir,
            listen_address=f"127.0.0.1:{review_port}",
            review_publish_dir=tmp_path / "published",
            review_service_tokens_dir=tmp_path / "tokens",
            review_conductor_address=f"127.0.0.1:{conductor_server.port}",
            review_delivery_initial_backoff_seconds=0.05,
            review_delivery_poll_seconds=0.2,
        )
        review_settings.tokens_dir.mkdir(parents=True)
        (review_settings.tokens_dir / f"{tenant}.jwt").write_text(
            issuer.mint(subject="review-service", tenant=tenant, roles=["review-service"])
        )
        review = assemble_review_service(review_settings)
        async with serve(review.definition, review_settings) as review_server:
            victim = conductor_pb2_grpc.ConductorServiceStub(
                connect(conductor_server, tenant, roles=("author", "operator", "analyst"), subject="vic")
            )
            await victim.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=AWAIT_REVIEW_PLAN))
            run = await start(victim, "victim-awaits-review")
            await wait_for_run(victim, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))

            attacker = review_pb2_grpc.ReviewServiceStub(
                connect(review_server, tenant, roles=("author",), subject="mallory")
            )
            submission = dict(title="Mine", content="My own copy.", channel=review_pb2.CHANNEL_EMAIL)
            # Without a capability the submission cannot name the run...
            details = await refused(
                attacker.Submit(
                    review_pb2.SubmitRequest(
                        **submission, resume=review_pb2.RunResume(run_id=run.id, signal_key="approval")
                    )
                )
            )
            assert "resume.capability" in details.field_violations
            # ...and one the attacker made up resumes nothing when the item is decided.
            forged = ResumeCapability(tenant, run.id, "submit", "approval").issue(b"guessed key")
            item = (
                await attacker.Submit(
                    review_pb2.SubmitRequest(
                        **submission,
                        resume=review_pb2.RunResume(run_id=run.id, signal_key="approval", capability=forged),
                    )
                )
            ).item
            accomplice = review_pb2_grpc.ReviewServiceStub(
                connect(review_server, tenant, roles=("reviewer",), subject="trent")
            )
            await accomplice.Decide(
                review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
            )

            async def delivery_failed():
                got = (await accomplice.Get(review_pb2.GetRequest(item_id=item.id))).item
                return got.resume_delivery if got.resume_delivery.state == review_pb2.DELIVERY_STATE_FAILED else None

            delivery = await _eventually(delivery_failed)
            assert delivery.last_error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
            untouched = await wait_for_run(victim, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
            assert step(untouched, "approval").state == conductor_pb2.STEP_STATE_WAITING
            assert not (await victim.GetRun(conductor_pb2.GetRunRequest(run_id=run.id))).run.HasField("outputs")


async def _eventually(probe, within_seconds: float = 90.0):
    deadline = asyncio.get_running_loop().time() + within_seconds
    while (found := await probe()) is None:
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)
    return found
