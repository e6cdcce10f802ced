"""Campaign outcomes flow on into segmentation: clicks and conversions ingested by the review service reach
segmentation as behaviour events (once each), so customers move between segments live; an event segmentation
refuses for good is kept aside with its reason without holding back the others."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from matcha.review.v1 import review_pb2
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.review.conftest import eventually, write_service_token
from tests.review.test_review_experiments import CONVERTED, OPENED, event, new_experiment
from tests.segmentation.conftest import POLICY, segmentation_server, segmentation_settings  # noqa: F401

CLICKED = review_pb2.OUTCOME_TYPE_CLICKED
UNSUBSCRIBED = review_pb2.OUTCOME_TYPE_UNSUBSCRIBED
CUSTOMERS = [f"c-{number}" for number in range(6)]


@pytest.fixture
async def fed_review(review_settings, start_review, segmentation_server, isolated_database, tmp_path):  # noqa: F811
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    settings = review_settings(
        database_url=isolated_database,
        review_service_tokens_dir=tokens,
        review_segmentation_address=f"127.0.0.1:{segmentation_server.port}",
        review_outcome_feed_poll_seconds=0.1,
    )
    async with start_review(settings) as (server, _):
        yield server, tokens, isolated_database, segmentation_server


async def _customer_base(segmentation) -> None:
    """Six customers with one purchase each, long ago; repeat buyers are those with two purchases or more."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    transactions = []
    for number, customer in enumerate(CUSTOMERS):
        transaction = seg_pb.Transaction(id=f"t-{number}", customer_id=customer, amount=20.0)
        transaction.time.FromDatetime(start + timedelta(days=number))
        transactions.append(transaction)
    await segmentation.IngestTransactions(
        seg_pb.IngestTransactionsRequest(transactions=transactions, default_policy=POLICY)
    )
    await segmentation.BuildSegmentation(
        seg_pb.BuildSegmentationRequest(
            name="loyalty",
            rules=seg_pb.RulesConfig(
                rules=[seg_pb.SegmentRule(id="repeat", name="Repeat", condition="frequency >= 2")]
            ),
        )
    )


async def test_clicks_and_conversions_move_customers_in_segmentation_once(
    fed_review,
    review_for,
    connect,
    issuer,
    tenant,
):
    server, tokens, database_url, segmentation_service = fed_review
    segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation_service, tenant))
    await _customer_base(segmentation)
    # The audience also holds a customer segmentation does not know: its events are refused there.
    reply, _ = await new_experiment(lambda t, **kw: review_for(t, server=server, **kw), tenant, [*CUSTOMERS, "ghost"])
    experiment_id = reply.experiment.id
    write_service_token(issuer, tokens, tenant)
    before = {c: (await segmentation.GetCustomer(seg_pb.GetCustomerRequest(customer_id=c))) for c in CUSTOMERS[:4]}
    assert all(customer.memberships[0].segment_id == "other" for customer in before.values())

    outcomes = [
        event("o-1", experiment_id, "c-1", CONVERTED, value=30.0),
        event("o-2", experiment_id, "c-1", CONVERTED, value=12.5),
        event("o-3", experiment_id, "c-2", CLICKED),
        event("o-4", experiment_id, "c-3", OPENED),
        event("o-5", experiment_id, "ghost", CONVERTED, value=5.0),
    ]
    operator = review_for(tenant, server=server, roles=("operator",), subject="ops")
    stored = await operator.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=outcomes))
    assert stored.accepted == 5
    # The same conversion again, under its id: a duplicate in review, so nothing more reaches segmentation.
    again = await operator.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=outcomes[:1]))
    assert again.duplicates == 1

    rows = await eventually(lambda: settled(database_url, tenant), within_seconds=30)
    # Only the ghost's conversion is left, refused with segmentation's reason; clicks and conversions of known
    # customers were acknowledged, opens were never fed.
    assert [(row["event_id"], "unknown customer" in row["refused"]) for row in rows] == [("o-5", True)]

    converted = await segmentation.GetCustomer(seg_pb.GetCustomerRequest(customer_id="c-1"))
    assert converted.features["frequency"] == 3  # the old purchase and the two conversions, once each
    assert converted.features["monetary"] == pytest.approx((20.0 + 30.0 + 12.5) / 3)
    assert converted.memberships[0].segment_id == "repeat"
    assert converted.history[0].cause_id.startswith("outcome:o-")
    clicked = await segmentation.GetCustomer(seg_pb.GetCustomerRequest(customer_id="c-2"))
    assert clicked.features["clicks_30d"] == 1 and clicked.features["frequency"] == 1
    opened = await segmentation.GetCustomer(seg_pb.GetCustomerRequest(customer_id="c-3"))
    # Reference time moved with the new events; what c-3 did did not.
    assert (opened.features["frequency"], opened.features["clicks_30d"]) == (1, 0)
    assert opened.memberships[0].segment_id == "other"


async def test_outcomes_wait_for_a_service_token_and_then_flow(
    fed_review,
    review_for,
    connect,
    issuer,
    tenant,
):
    server, tokens, _, segmentation_service = fed_review
    segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation_service, tenant))
    await _customer_base(segmentation)
    reply, _ = await new_experiment(lambda t, **kw: review_for(t, server=server, **kw), tenant, CUSTOMERS)
    operator = review_for(tenant, server=server, roles=("operator",), subject="ops")
    await operator.IngestOutcomes(
        review_pb2.IngestOutcomesRequest(events=[event("w-1", reply.experiment.id, "c-4", CONVERTED, value=9.0)])
    )

    async def frequency() -> float:
        customer = await segmentation.GetCustomer(seg_pb.GetCustomerRequest(customer_id="c-4"))
        return customer.features["frequency"]

    # No token for the tenant yet: the conversion waits, stored (the feed polls ten times a second).
    await asyncio.sleep(1)
    assert await frequency() == 1
    write_service_token(issuer, tokens, tenant)
    await eventually(lambda: _equals(frequency, 2), within_seconds=30)


async def settled(database_url: str, tenant: str):
    """The tenant's queued events once every one left is refused (the rest acknowledged), else None."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT event_id, refused FROM review_outcome_feed WHERE tenant = $1", tenant)
    finally:
        await connection.close()
    return rows if all(row["refused"] for row in rows) else None


async def _equals(probe, expected) -> bool:
    return await probe() == expected


async def test_unsubscriptions_reach_segmentation_and_later_publications_leave_them_out(
    fed_review,
    review_for,
    connect,
    issuer,
    tenant,
):
    server, tokens, database_url, segmentation_service = fed_review
    segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation_service, tenant))
    await _customer_base(segmentation)
    reply, _ = await new_experiment(lambda t, **kw: review_for(t, server=server, **kw), tenant, [*CUSTOMERS, "ghost"])
    write_service_token(issuer, tokens, tenant)
    operator = review_for(tenant, server=server, roles=("operator",), subject="ops")
    # Everyone leaves, those held out of the experiment too (they left through an earlier message).
    leaving = [event(f"u-{c}", reply.experiment.id, c, UNSUBSCRIBED) for c in [*CUSTOMERS, "ghost"]]
    await operator.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=leaving))

    # The ghost, unknown to segmentation, is kept aside with the reason; the others were acknowledged.
    rows = await eventually(lambda: settled(database_url, tenant), within_seconds=30)
    assert [(row["event_id"], "NOT_FOUND" in row["refused"]) for row in rows] == [("u-ghost", True)]
    for customer in CUSTOMERS:
        stored = (await segmentation.GetCustomer(seg_pb.GetCustomerRequest(customer_id=customer))).customer
        assert list(stored.unsubscribed_channels) == ["email"], customer  # the variants are e-mails

    async def reached(channel: str) -> list[str]:
        ids = []
        request = seg_pb.StreamSegmentMembersRequest(customer_ids=CUSTOMERS, channel=channel)
        async for message in segmentation.StreamSegmentMembers(request):
            ids += message.customer_ids
        return ids

    assert await reached("email") == []
    assert await reached("sms") == sorted(CUSTOMERS)
