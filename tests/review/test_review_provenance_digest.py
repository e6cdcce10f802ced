"""An approval covers the provenance of the text as well as the text: its digest is recorded with the decision,
checked at publication, and carried with the provenance in the published document, so a publication leads back to
the data and models it came from and to the trace that published it."""

import hashlib
import json
import uuid

import asyncpg
import grpc
import pytest
from google.protobuf import json_format

from matcha.common.v1 import common_pb2
from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft, eventually
from tests.support import refused

PROVENANCE = common_pb2.Provenance(
    run_id="run-7",
    plan_name="segment-campaign",
    plan_version=2,
    step="submit",
    model=common_pb2.ModelRef(id="smollm2-135m-instruct", version="1"),
    voice_profile="grain-sauvage",
    voice_profile_version=1,
    source_record_ids=["ethiopia", "dripper"],
    trace_id="0af7651916cd43dd8448eb211c80319c",
)


def provenance_digest(provenance: common_pb2.Provenance) -> str:
    stored = json_format.MessageToDict(provenance, preserving_proto_field_name=True)
    return hashlib.sha256(
        json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


@pytest.fixture
async def review_with_sink(review_settings, start_review, isolated_database, tmp_path):
    settings = review_settings(database_url=isolated_database, review_publish_dir=tmp_path / "published")
    async with start_review(settings) as (server, _):
        yield server, settings.review_publish_dir, isolated_database


async def approve(review_for, server, tenant) -> review_pb2.ReviewItem:
    item = (await review_for(tenant, server=server, subject="planner").Submit(draft(provenance=PROVENANCE))).item
    decided = await review_for(tenant, server=server, roles=REVIEWER, subject="rita").Decide(
        review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )
    assert decided.decision.provenance_sha256 == decided.item.approved_provenance_sha256
    return decided.item


async def test_the_approved_provenance_is_what_is_published(review_with_sink, review_for, tenant):
    server, publish_dir, _ = review_with_sink
    item = await approve(review_for, server, tenant)
    assert item.approved_provenance_sha256 == provenance_digest(PROVENANCE)
    publisher = review_for(tenant, server=server, roles=("publisher",), subject="pat")

    error = await refused(
        publisher.Publish(
            review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256, provenance_sha256="0" * 64)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error.reason == "PROVENANCE_NOT_APPROVED"
    assert error.metadata["approved_provenance_sha256"] == item.approved_provenance_sha256

    reply = await publisher.Publish(
        review_pb2.PublishRequest(
            item_id=item.id, content_sha256=item.approved_sha256, provenance_sha256=item.approved_provenance_sha256
        )
    )
    path = publish_dir / tenant / f"{item.id}.json"

    async def written():
        return path.exists()

    await eventually(written)
    document = json.loads(path.read_text())
    assert document["provenance_sha256"] == item.approved_provenance_sha256
    assert document["provenance"]["source_record_ids"] == ["ethiopia", "dripper"]
    assert document["provenance"]["model"]["id"] == "smollm2-135m-instruct"
    # The digest can be checked from the document alone.
    canonical = json.dumps(document["provenance"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode()).hexdigest() == document["provenance_sha256"]
    # The publication names the trace of the call that published it.
    assert len(reply.publication.trace_id) == 32 and document["trace_id"] == reply.publication.trace_id
    got = await review_for(tenant, server=server).Get(review_pb2.GetRequest(item_id=item.id))
    assert got.item.publication.trace_id == reply.publication.trace_id


async def test_a_provenance_changed_after_approval_is_not_published(review_with_sink, review_for, tenant):
    server, publish_dir, database_url = review_with_sink
    item = await approve(review_for, server, tenant)
    # Someone with access to the database rewrites where the draft came from.
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """UPDATE review_versions SET provenance = jsonb_set(provenance, '{source_record_ids}', '["forged"]')
               WHERE item_id = $1""",
            uuid.UUID(item.id),
        )
    finally:
        await connection.close()
    publisher = review_for(tenant, server=server, roles=("publisher",), subject="pat")
    error = await refused(
        publisher.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error.reason == "PROVENANCE_NOT_APPROVED"
    got = (await review_for(tenant, server=server).Get(review_pb2.GetRequest(item_id=item.id))).item
    assert got.status == review_pb2.REVIEW_STATUS_APPROVED and not got.HasField("publication")
    assert not (publish_dir / tenant).exists()
