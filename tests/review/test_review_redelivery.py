"""Recovery without a human: deliveries retry until their maximum age, not a count of attempts, and a FAILED one
is queued again by hand (Redeliver), after which the run it resumes completes."""

import asyncio

import grpc
import pytest
from pydantic import ValidationError

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft, eventually, write_service_token
from tests.review.test_review_cli import invoke
from tests.review.test_review_resume import (
    approve,
    conductor_settings,
    parked_run,
    resume_for,
    signalled,
    wait_for_run,
)
from tests.support import free_port, refused

# Deliveries in these tests give up after this long (the default is a week).
SHORT_MAX_AGE_SECONDS = 1.5


async def _delivery(stub, item_id: str) -> review_pb2.Delivery:
    return (await stub.Get(review_pb2.GetRequest(item_id=item_id))).item.resume_delivery


async def test_a_signal_failed_for_good_is_redelivered_and_the_waiting_run_completes(
    serve, connect, review_for, issuer, isolated_database, state_dir, review_settings, start_review, tenant
):
    conductor_port = free_port()
    settings = conductor_settings(isolated_database, state_dir, port=conductor_port, review_port=free_port())
    run = await parked_run(serve, connect, settings, tenant)
    # The conductor is away for longer than a delivery's maximum age.

    review_config = review_settings(
        database_url=isolated_database,
        review_conductor_address=f"127.0.0.1:{conductor_port}",
        review_delivery_max_age_hours=SHORT_MAX_AGE_SECONDS / 3600,
    )
    write_service_token(issuer, review_config.tokens_dir, tenant)
    async with start_review(review_config) as (review_server, _):
        operator = review_for(tenant, server=review_server)
        item = (await operator.Submit(draft(resume=resume_for(settings, tenant, run.id)))).item
        rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
        await rita.Decide(approve(item))

        async def failed():
            delivery = await _delivery(rita, item.id)
            return delivery if delivery.state == review_pb2.DELIVERY_STATE_FAILED else None

        given_up = await eventually(failed)
        assert given_up.attempts > 1 and given_up.last_error.code == grpc.StatusCode.UNAVAILABLE.value[0]

        async with serve(build_conductor_service(settings), settings) as conductor_server:
            # The conductor is back, but a FAILED delivery is not attempted again by itself.
            await asyncio.sleep(1.0)
            assert (await _delivery(rita, item.id)).state == review_pb2.DELIVERY_STATE_FAILED
            # Reviewers decide; they do not operate deliveries.
            await refused(
                rita.Redeliver(review_pb2.RedeliverRequest(item_id=item.id)), grpc.StatusCode.PERMISSION_DENIED
            )
            # By hand, from the CLI, as an operator.
            token = issuer.mint(subject="olga", tenant=tenant, roles=["operator"])
            connection = ["--target", f"127.0.0.1:{review_server.port}", "--token", token]
            code, out, _ = await invoke("redeliver", item.id, *connection)
            assert code == 0 and out.strip() == f"{item.id}  1 failed delivery queued again"
            got = await eventually(lambda: signalled(rita, item.id))
            assert got.item.resume_delivery.attempts > given_up.attempts

            analyst = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant))
            finished = await wait_for_run(analyst, run.id)
            assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error

            code, _, err = await invoke("redeliver", item.id, *connection)
            assert code == 1 and "FAILED_PRECONDITION" in err and "no FAILED delivery" in err


async def test_a_failing_signal_keeps_retrying_past_the_old_attempt_limit(
    serve, connect, review_for, issuer, isolated_database, state_dir, review_settings, start_review, tenant
):
    """Twenty attempts used to end a delivery: now only its maximum age (or a refusal for good) does."""
    conductor_port = free_port()
    settings = conductor_settings(isolated_database, state_dir, port=conductor_port, review_port=free_port())
    run = await parked_run(serve, connect, settings, tenant)

    review_config = review_settings(
        database_url=isolated_database,
        review_conductor_address=f"127.0.0.1:{conductor_port}",
        review_delivery_max_backoff_seconds=0.05,
    )
    write_service_token(issuer, review_config.tokens_dir, tenant)
    async with start_review(review_config) as (review_server, _):
        writer = review_for(tenant, server=review_server)
        item = (await writer.Submit(draft(resume=resume_for(settings, tenant, run.id)))).item
        rita = review_for(tenant, server=review_server, roles=REVIEWER, subject="rita")
        await rita.Decide(approve(item))

        async def many_attempts():
            delivery = await _delivery(rita, item.id)
            return delivery if delivery.attempts > 25 else None

        delivery = await eventually(many_attempts, within_seconds=30)
        assert delivery.state == review_pb2.DELIVERY_STATE_PENDING


async def test_redeliver_names_what_is_missing(review_for, tenant):
    operator = review_for(tenant)
    unknown = await refused(
        operator.Redeliver(review_pb2.RedeliverRequest(item_id="00000000-0000-0000-0000-000000000000")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert unknown.reason == "ITEM_NOT_FOUND"
    # An item of another tenant is not found either.
    theirs = (await review_for(f"{tenant}-other").Submit(draft())).item
    await refused(operator.Redeliver(review_pb2.RedeliverRequest(item_id=theirs.id)), grpc.StatusCode.NOT_FOUND)
    # Nothing decided, nothing delivered: nothing to queue again.
    item = (await operator.Submit(draft())).item
    nothing = await refused(
        operator.Redeliver(review_pb2.RedeliverRequest(item_id=item.id)), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert nothing.reason == "NOTHING_TO_REDELIVER" and nothing.metadata == {"item_id": item.id}


def test_a_delivery_lease_shorter_than_an_attempt_is_refused_at_start(review_settings):
    assert review_settings(review_delivery_lease_seconds=30).review_delivery_lease_seconds == 30
    with pytest.raises(ValidationError, match="MATCHA_REVIEW_DELIVERY_LEASE_SECONDS"):
        review_settings(review_delivery_lease_seconds=5, review_delivery_timeout_seconds=10)
    with pytest.raises(ValidationError, match="longest delivery attempt"):
        review_settings(review_delivery_lease_seconds=20, review_webhook_timeout_seconds=30)


async def test_a_publication_whose_sink_failed_for_good_is_redelivered(
    review_for, review_settings, start_review, isolated_database, tenant, tmp_path
):
    """The file sink cannot write (a file stands where the tenant's folder goes) past the maximum age: FAILED.
    Once the obstacle is gone, Redeliver writes the publication."""
    settings = review_settings(
        database_url=isolated_database,
        review_publish_dir=tmp_path,
        review_delivery_max_age_hours=SHORT_MAX_AGE_SECONDS / 3600,
    )
    (tmp_path / tenant).write_text("not a folder")
    async with start_review(settings) as (server, _):
        item = (await review_for(tenant, server=server, subject="planner").Submit(draft())).item
        reviewer = review_for(tenant, server=server, roles=REVIEWER, subject="rita")
        approved = (await reviewer.Decide(approve(item))).item
        publisher = review_for(tenant, server=server, roles=("publisher",), subject="pat")
        await publisher.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256=approved.approved_sha256))

        async def sink_delivery(state):
            got = await publisher.Get(review_pb2.GetRequest(item_id=item.id))
            delivery = got.item.publication.sinks[0].delivery
            return delivery if delivery.state == state else None

        given_up = await eventually(lambda: sink_delivery(review_pb2.DELIVERY_STATE_FAILED))
        assert given_up.attempts > 1 and given_up.last_error.code == grpc.StatusCode.UNAVAILABLE.value[0]

        (tmp_path / tenant).unlink()
        operator = review_for(tenant, server=server)
        assert (await operator.Redeliver(review_pb2.RedeliverRequest(item_id=item.id))).requeued == 1
        await eventually(lambda: sink_delivery(review_pb2.DELIVERY_STATE_DELIVERED))
        assert (tmp_path / tenant / f"{item.id}.json").exists()
