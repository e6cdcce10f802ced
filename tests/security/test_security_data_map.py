"""The data map of one data subject (an access request) covers every store and nothing else: GetDataMap returns
what each capability service and the conductor hold about the subject, content included, never a record of
another subject nor of the same subject id in another tenant, never a record above the class the caller
declared, and only to an auditor or an admin."""

import asyncio
import json

import grpc
from click.testing import CliRunner
from google.protobuf import json_format

from matcha.classification.v1 import classification_pb2
from matcha.cli.main import cli
from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2
from matcha.embedding.v1 import embedding_pb2
from matcha.generation.v1 import generation_pb2
from matcha.review.v1 import review_pb2
from matcha.runtime.governance import DataClass
from matcha.segmentation.v1 import segmentation_pb2
from tests.conductor.support import start, wait_for_run
from tests.conductor.test_erasure_and_tracing import INGEST_PLAN
from tests.security.subject_stores import (
    CLASSIFICATION,
    CONDUCTOR,
    EMBEDDING,
    GENERATION,
    REVIEW,
    SEGMENTATION,
    seed_subject,
)
from tests.support import refused

AUDITOR = {"roles": ("auditor",), "purpose": "data-map", "data_class": DataClass.PERSONAL}
DESCRIBE_REQUESTS = {
    EMBEDDING: embedding_pb2.DescribeSubjectRequest,
    CLASSIFICATION: classification_pb2.DescribeSubjectRequest,
    GENERATION: generation_pb2.DescribeSubjectRequest,
    SEGMENTATION: segmentation_pb2.DescribeSubjectRequest,
    REVIEW: review_pb2.DescribeSubjectRequest,
}
EXPECTED_KINDS = {
    EMBEDDING: {("documents", "crm")},
    CLASSIFICATION: {("classifier-examples", "")},
    GENERATION: {("voice-sources", ""), ("voice-exemplars", "")},
    SEGMENTATION: {("customers", ""), ("transactions", ""), ("idempotency-replies", "")},
    REVIEW: {
        ("drafts", ""),
        ("decisions", ""),
        ("review-events", ""),
        ("publications", ""),
        ("outbox", ""),
        ("published-files", ""),
    },
    CONDUCTOR: {("runs", "")},
}


def holdings_by_store(reply: conductor_pb2.GetDataMapResponse) -> dict[str, dict[tuple[str, str], object]]:
    return {
        store.store: {(holding.kind, holding.scope): holding for holding in store.holdings} for store in reply.stores
    }


def records_of(holding) -> list[dict]:
    return [json_format.MessageToDict(record) for record in holding.records]


async def test_the_data_map_holds_the_subject_from_every_store_and_nothing_else(mesh, tenant, issuer):
    other_tenant = f"{tenant}-other"
    await seed_subject(mesh, tenant, "c-42", "saffron")
    await seed_subject(mesh, tenant, "c-7", "cobalt")
    await seed_subject(mesh, other_tenant, "c-42", "vermilion")
    operator = mesh.stub(CONDUCTOR, tenant, data_class=DataClass.PERSONAL)
    await operator.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=INGEST_PLAN))
    run = await wait_for_run(
        operator, (await start(operator, "ingest-customer-note", customer="c-42", note="ochre")).id
    )
    assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error

    call = mesh.stub(CONDUCTOR, tenant, **AUDITOR).GetDataMap(conductor_pb2.GetDataMapRequest(subject_id="c-42"))
    reply = await call
    assert reply.complete, [(store.store, store.status.message) for store in reply.stores]
    # The reply states the class of what it returns, as every reply with records does.
    assert dict(await call.trailing_metadata())["x-matcha-derived-class"] == "PERSONAL"
    assert reply.subject_id == "c-42" and [store.store for store in reply.stores][-1] == CONDUCTOR
    found = holdings_by_store(reply)
    assert {store: set(holdings) for store, holdings in found.items()} == EXPECTED_KINDS
    for store, holdings in found.items():
        for (kind, _), holding in holdings.items():
            # Everything is exported: the caller declared PERSONAL and nothing reaches the limits.
            assert len(holding.records) == holding.count and not holding.withheld and not holding.truncated, kind
            assert holding.highest_data_class == common_pb2.DATA_CLASS_PERSONAL, (store, kind)

    documents = found[EMBEDDING][("documents", "crm")]
    assert {record["id"] for record in records_of(documents)} == {"note-42", "c-42-note"}
    assert {"saffron", "ochre"} <= {word for record in records_of(documents) for word in record["text"].split()}
    assert list(documents.purposes) == ["campaign"]
    examples = records_of(found[CLASSIFICATION][("classifier-examples", "")])
    assert {(record["example_id"], record["classifier"]) for record in examples} == {
        ("c-42-1", "intent-42"),
        ("c-42-2", "intent-42"),
    }
    exemplars = records_of(found[GENERATION][("voice-exemplars", "")])
    assert exemplars and all("saffron" in record["text"] for record in exemplars)
    customers = records_of(found[SEGMENTATION][("customers", "")])
    assert [(record["id"], record["attributes"]) for record in customers] == [("cust-42", {"nickname": "saffron"})]
    drafts = records_of(found[REVIEW][("drafts", "")])
    assert [version["content"] for version in drafts[0]["versions"]] == [
        "Dear saffron, your linen shirts are back in stock.\n"
    ]
    files = records_of(found[REVIEW][("published-files", "")])
    assert "saffron" in files[0]["document"]["content"]
    runs = records_of(found[CONDUCTOR][("runs", "")])
    assert [(record["id"], record["inputs"]) for record in runs] == [(run.id, {"customer": "c-42", "note": "ochre"})]

    # Who received the subject's data, from the accesses ledger: the run's ingestion and every store's answer to
    # this very map (each written before its reply left), all by principal and purpose.
    received = {(access.method, access.purpose) for access in reply.accesses}
    assert ("matcha.embedding.v1.EmbeddingService/Upsert", "campaign") in received
    assert {(f"{store}/DescribeSubject", "data-map") for store in found if store != CONDUCTOR} <= received

    # Nothing of another subject, nor of the same subject id in another tenant.
    everything = json_format.MessageToJson(reply)
    for foreign in ("cobalt", "cust-7", "intent-7", "vermilion"):
        assert foreign not in everything, foreign

    # The command line prints the table, and the export with --json.
    token = issuer.mint(subject="auditor-1", tenant=tenant, roles=["auditor"])
    connection = ["--target", f"127.0.0.1:{mesh.servers[CONDUCTOR].port}", "--token", token]
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["data-map", "c-42", *connection])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["store", "kind", "scope", "count", "class", "purposes", "exported"]
    assert ["EmbeddingService", "documents", "crm", "2", "PERSONAL", "campaign", "2"] in [
        line.split() for line in lines
    ]
    assert "saffron" not in result.stdout  # the table counts; the records come with --json
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["data-map", "c-42", "--json", *connection])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert exported["complete"] and "saffron" in result.stdout and "cobalt" not in result.stdout


async def test_the_data_map_is_for_auditors_and_withholds_what_is_above_the_declared_class(mesh, tenant):
    await seed_subject(mesh, tenant, "c-42", "saffron")
    member = {"roles": ("analyst", "author", "operator", "reviewer", "publisher"), "data_class": DataClass.PERSONAL}
    details = await refused(
        mesh.stub(CONDUCTOR, tenant, **member).GetDataMap(conductor_pb2.GetDataMapRequest(subject_id="c-42")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert (details.reason, details.metadata["role"]) == ("MISSING_ROLE", "auditor")
    for service, request in DESCRIBE_REQUESTS.items():
        details = await refused(
            mesh.stub(service, tenant, **member).DescribeSubject(request(subject_id="c-42")),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert (details.reason, details.metadata["role"]) == ("MISSING_ROLE", "auditor"), service

    # Declaring INTERNAL gets the map of PERSONAL records (counts, classes, purposes) but none of them.
    internal = {**AUDITOR, "data_class": DataClass.INTERNAL}
    reply = await mesh.stub(CONDUCTOR, tenant, **internal).GetDataMap(
        conductor_pb2.GetDataMapRequest(subject_id="c-42")
    )
    assert reply.complete
    personal = [
        holding
        for store in reply.stores
        for holding in store.holdings
        if holding.highest_data_class == common_pb2.DATA_CLASS_PERSONAL
    ]
    assert len(personal) >= 10
    for holding in personal:
        assert holding.count > 0 and holding.withheld == holding.count and not holding.records, holding.kind
    assert "saffron" not in json_format.MessageToJson(reply)

    # An admin asking a store directly gets the same answer as the conductor gathers.
    admin = {"roles": ("admin",), "data_class": DataClass.PERSONAL}
    direct = await mesh.stub(REVIEW, tenant, **admin).DescribeSubject(
        review_pb2.DescribeSubjectRequest(subject_id="c-42")
    )
    assert {holding.kind for holding in direct.holdings} == {kind for kind, _ in EXPECTED_KINDS[REVIEW]}
    details = await refused(mesh.stub(REVIEW, tenant, **admin).DescribeSubject(review_pb2.DescribeSubjectRequest()))
    assert "subject_id" in details.field_violations
