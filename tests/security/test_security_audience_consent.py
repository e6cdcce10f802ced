"""Attacks on audiences at publication, on the real review and segmentation services, judged by what the file sink
actually received: a publisher naming customers who withdrew their consent or opted out of the channel, declaring
another purpose to widen the audience, naming another tenant's segment, or racing two publications past the
frequency cap."""

import asyncio
import json

import grpc
import pytest

from matcha.review.v1 import review_pb2_grpc
from tests.review.conftest import eventually
from tests.review.test_review_audiences import (
    CUSTOMERS,
    PUBLISHER,
    approved,
    customer_base,
    customers,
    publish,
    segment,
)
from tests.segmentation.conftest import segmentation_server, segmentation_settings  # noqa: F401
from tests.support import refused

# After `customer_base`: c-00 and c-01 consent to listening only, c-02 opted out of e-mail.
WITHOUT_CONSENT = ["c-00", "c-01"]
OPTED_OUT_OF_EMAIL = ["c-02"]


@pytest.fixture
async def publishing(review_settings, start_review, segmentation_server, isolated_database, tmp_path):  # noqa: F811
    """`async with publishing(**settings) as (server, publish_dir)`: a review service resolving audiences."""

    def start(**overrides):
        settings = review_settings(
            database_url=isolated_database,
            review_segmentation_address=f"127.0.0.1:{segmentation_server.port}",
            review_publish_dir=tmp_path / "published",
            **overrides,
        )
        return start_review(settings)

    return start, segmentation_server, tmp_path / "published"


@pytest.fixture
def review_for(connect):
    """`review_for(tenant, server=..., roles=..., subject=...)`: a ReviewService stub for that principal."""

    def make(tenant, server, **kwargs) -> review_pb2_grpc.ReviewServiceStub:
        kwargs.setdefault("subject", "user-1")
        return review_pb2_grpc.ReviewServiceStub(connect(server, tenant, **kwargs))

    return make


async def received(publish_dir, tenant: str, item_id: str) -> list[str]:
    path = publish_dir / tenant / f"{item_id}.json"

    async def written():
        return path.exists()

    await eventually(written)
    return json.loads(path.read_text())["audience_members"]


async def test_customers_without_consent_or_opted_out_never_reach_the_sink(publishing, review_for, connect, tenant):
    start, segmentation, publish_dir = publishing
    await customer_base(connect, segmentation, tenant)
    async with start() as (server, _):
        publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
        # Named one by one, next to customers who may be reached.
        item = await approved(review_for, server, tenant)
        named = [*WITHOUT_CONSENT, *OPTED_OUT_OF_EMAIL, "c-05", "c-06"]
        reply = await publisher.Publish(publish(item, customers(named)))
        assert await received(publish_dir, tenant, item.id) == ["c-05", "c-06"]
        assert (reply.audience.excluded_without_consent, reply.audience.excluded_opted_out) == (2, 1)

        # The whole segment: the same customers are left out.
        item = await approved(review_for, server, tenant)
        await publisher.Publish(publish(item, segment()))
        members = await received(publish_dir, tenant, item.id)
        assert not set(members) & {*WITHOUT_CONSENT, *OPTED_OUT_OF_EMAIL}
        assert len(members) == len(CUSTOMERS) - 3

        # Declaring the purpose they did consent to changes nothing: the item was submitted for `campaign`, and a
        # publication serves the item's purpose, not the one its publisher declares.
        item = await approved(review_for, server, tenant)
        widening = review_for(tenant, server=server, roles=PUBLISHER, subject="pat", purpose="listening")
        error = await refused(
            widening.Publish(publish(item, customers(WITHOUT_CONSENT))), grpc.StatusCode.FAILED_PRECONDITION
        )
        assert error.reason == "EMPTY_AUDIENCE"
        assert not (publish_dir / tenant / f"{item.id}.json").exists()


async def test_another_tenants_segment_and_customers_are_unknown(publishing, review_for, connect, tenant):
    start, segmentation, _ = publishing
    await customer_base(connect, segmentation, tenant)
    intruder = f"{tenant}-intruder"
    async with start() as (server, _):
        item = await approved(review_for, server, intruder)
        publisher = review_for(intruder, server=server, roles=PUBLISHER, subject="mallory")
        await refused(publisher.Publish(publish(item, segment())), grpc.StatusCode.NOT_FOUND)
        error = await refused(publisher.Publish(publish(item, customers(["c-05"]))))
        assert error.reason == "UNKNOWN_CUSTOMERS"


async def test_concurrent_publications_cannot_race_past_the_frequency_cap(publishing, review_for, connect, tenant):
    start, segmentation, publish_dir = publishing
    await customer_base(connect, segmentation, tenant)
    async with start(review_frequency_cap_messages=1) as (server, _):
        publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
        items = [await approved(review_for, server, tenant) for _ in range(4)]
        target = customers(["c-05", "c-06", "c-07"])
        outcomes = await asyncio.gather(
            *(publisher.Publish(publish(item, target)) for item in items), return_exceptions=True
        )
        published = [
            (item, outcome) for item, outcome in zip(items, outcomes, strict=True) if not isinstance(outcome, Exception)
        ]
        assert len(published) == 1
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                assert outcome.code() == grpc.StatusCode.FAILED_PRECONDITION
        reached = [member for item, _ in published for member in await received(publish_dir, tenant, item.id)]
        assert sorted(reached) == ["c-05", "c-06", "c-07"]
