"""An idempotency key is bound to the request it first came with: replaying a used key with another payload
must not pass for a repeat (the service's own dedupe would answer it with the first outcome) nor reach the
handler."""

import asyncio
import hashlib

import asyncpg
import grpc
import pytest

from matcha.review.v1 import review_pb2, review_pb2_grpc
from tests.review.conftest import draft
from tests.support import refused

KEY = "x-matcha-idempotency-key"


@pytest.fixture
def review_for(review_server, connect):
    def make(tenant):
        return review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant))

    return make


async def test_a_used_key_with_another_payload_is_refused_before_the_handler(review_for, tenant):
    stub = review_for(tenant)
    key = ((KEY, "campaign-7/submit/0"),)
    first = await stub.Submit(draft(content="The approved spring copy.\n"), metadata=key)
    assert first.created

    swapped = stub.Submit(draft(content="Something nobody asked for.\n", target="everyone"), metadata=key)
    refusal = await refused(swapped, grpc.StatusCode.FAILED_PRECONDITION)
    assert refusal.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refusal.metadata == {"method": "matcha.review.v1.ReviewService/Submit"}

    # Nothing was written: one item, the first one, unchanged.
    listed = await stub.List(review_pb2.ListRequest())
    assert [(item.id, item.content, item.target) for item in listed.items] == [
        (first.item.id, "The approved spring copy.\n", first.item.target)
    ]
    # The genuine repeat still gets the first outcome.
    repeat = await stub.Submit(draft(content="The approved spring copy.\n"), metadata=key)
    assert not repeat.created and repeat.item.id == first.item.id


async def test_racing_first_uses_of_a_key_let_one_payload_through(review_for, tenant):
    stub = review_for(tenant)
    key = ((KEY, "race-1"),)
    calls = [stub.Submit(draft(content=f"Variant {index}.\n"), metadata=key) for index in range(6)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    passed = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(passed) == 1
    assert all(error.code() == grpc.StatusCode.FAILED_PRECONDITION for error in refusals)
    listed = await stub.List(review_pb2.ListRequest())
    assert [item.id for item in listed.items] == [passed[0].item.id]


async def test_a_key_is_bound_per_tenant_and_method(review_for, tenant):
    """Another tenant, or another method, may use the same key string for its own request."""
    key = ((KEY, "shared-key"),)
    await review_for(tenant).Submit(draft(content="Ours.\n"), metadata=key)
    theirs = await review_for(f"{tenant}-other").Submit(draft(content="Theirs.\n"), metadata=key)
    assert theirs.created
    listed = await review_for(tenant).List(review_pb2.ListRequest(), metadata=key)
    assert len(listed.items) == 1


async def test_a_key_naming_a_subject_cannot_be_guessed_from_its_binding(review_for, postgres_url, tenant):
    """Keys may name a customer: the binding keeps a keyed digest, so hashing a guess finds nothing."""
    key = f"ingest/{tenant}/customer-42"
    await review_for(tenant).Submit(draft(), metadata=((KEY, key),))
    database = await asyncpg.connect(postgres_url)
    try:
        rows = await database.fetch("SELECT key_sha256 FROM idempotency_keys WHERE tenant = $1", tenant)
    finally:
        await database.close()
    assert len(rows) == 1
    assert rows[0]["key_sha256"] not in (hashlib.sha256(key.encode()).hexdigest(), key)
