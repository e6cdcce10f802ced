"""Attack: reach customer data directly (gateway, gRPC) rather than through a run, so nothing is on the record.
Every service writes each call it serves to the access ledger before its reply leaves; the ledger answers "who
accessed this subject's data, for what purpose", holds no content, and its chain exposes tampering."""

import asyncio

import asyncpg
import grpc
import httpx
import pytest

from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2
from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.governance import DataClass
from tests.support import refused

ACCESSES = conductor_pb2.AUDIT_LEDGER_ACCESSES


def customer_note(doc_id: str, subject: str, text: str) -> embedding_pb2.Document:
    policy = common_pb2.RecordPolicy(
        data_class=common_pb2.DATA_CLASS_CONFIDENTIAL, consented_purposes=["campaign"], subject_id=subject
    )
    return embedding_pb2.Document(id=doc_id, text=text, policy=policy)


async def seed_notes(stub) -> None:
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="crm-notes"))
    await stub.Upsert(
        embedding_pb2.UpsertRequest(
            collection="crm-notes",
            documents=[
                customer_note("n1", "customer-17", "Asked for a refund on the espresso machine."),
                customer_note("n2", "customer-42", "Loves the Ethiopian roast, orders every month."),
            ],
        )
    )


async def accesses_of(auditor, **filters) -> list[conductor_pb2.AccessRecord]:
    reply = await auditor.ListAudit(conductor_pb2.ListAuditRequest(ledger=ACCESSES, page_size=1000, **filters))
    return list(reply.accesses)


async def test_a_direct_search_through_the_gateway_is_on_the_record_for_the_subjects_it_returned(
    embedding_server, conductor_server, connect, conductor_for, start_gateway, issuer, tenant
):
    writer = connect(embedding_server, tenant, roles=("operator",), data_class=DataClass.CONFIDENTIAL)
    await seed_notes(embedding_pb2_grpc.EmbeddingServiceStub(writer))
    token = issuer.mint(subject="curious-analyst", tenant=tenant, roles=["analyst"])
    headers = {
        "authorization": f"Bearer {token}",
        "x-matcha-purpose": "campaign",
        "x-matcha-data-class": "CONFIDENTIAL",
        "content-type": "application/json",
    }
    async with (
        start_gateway({EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"}) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http,
    ):
        reply = await http.post(
            "/v1/collections/crm-notes/documents:search", json={"text": "refund espresso machine", "topK": 1}
        )
    assert reply.status_code == 200
    returned = reply.json()["results"]
    assert [result["policy"]["subjectId"] for result in returned] == ["customer-17"]

    auditor = conductor_for(tenant, roles=("auditor",))
    rows = await accesses_of(auditor, subject_id="customer-17")
    searches = [row for row in rows if row.method == "matcha.embedding.v1.EmbeddingService/Search"]
    assert len(searches) == 1
    search = searches[0]
    assert search.principal.subject == "curious-analyst" and search.principal.roles == ["analyst"]
    assert search.purpose == "campaign"
    assert search.resources == ["collection:crm-notes"]
    assert search.records == 1 and search.subjects == 1
    assert search.data_class_declared == common_pb2.DATA_CLASS_CONFIDENTIAL
    assert search.data_class_derived == common_pb2.DATA_CLASS_CONFIDENTIAL
    assert search.decision == conductor_pb2.POLICY_DECISION_ALLOW and len(search.response_sha256) == 64
    # The ingestion that wrote the subject's note is on the record too; the search is not on the other subject's.
    assert "matcha.embedding.v1.EmbeddingService/Upsert" in {row.method for row in rows}
    other = await accesses_of(auditor, subject_id="customer-42")
    assert "matcha.embedding.v1.EmbeddingService/Search" not in {row.method for row in other}
    by_collection = await accesses_of(auditor, collection="crm-notes", principal="curious-analyst")
    assert [row.method for row in by_collection] == ["matcha.embedding.v1.EmbeddingService/Search"]


async def test_the_ledger_holds_no_content_and_its_chain_exposes_tampering(
    embedding_server, conductor_server, connect, conductor_for, postgres_url, tenant
):
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, data_class=DataClass.CONFIDENTIAL))
    await seed_notes(stub)
    await stub.Search(embedding_pb2.SearchRequest(collection="crm-notes", text="refund", top_k=2))
    auditor = conductor_for(tenant, roles=("auditor",))
    verified = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest(ledger=ACCESSES))
    assert verified.intact and verified.records_checked == 3  # CreateCollection, Upsert, Search

    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch("SELECT * FROM access_ledger WHERE tenant = $1", tenant)
        stored = " ".join(str(row) for row in rows)
        for secret in ("customer-17", "customer-42", "espresso", "refund"):
            assert secret not in stored
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("DELETE FROM access_ledger WHERE tenant = $1", tenant)
        # An operator with database access rewrites who made the search.
        async with connection.transaction():
            await connection.execute("ALTER TABLE access_ledger DISABLE TRIGGER access_ledger_append_only")
            changed = await connection.execute(
                "UPDATE access_ledger SET principal = 'someone-else' WHERE tenant = $1 AND method LIKE '%/Search'",
                tenant,
            )
            await connection.execute("ALTER TABLE access_ledger ENABLE TRIGGER access_ledger_append_only")
        assert changed == "UPDATE 1"
    finally:
        await connection.close()
    tampered = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest(ledger=ACCESSES))
    assert not tampered.intact and tampered.break_kind == conductor_pb2.CHAIN_BREAK_ALTERED


async def test_refused_calls_are_on_the_record_with_their_reason(
    embedding_server, conductor_server, connect, conductor_for, tenant
):
    outsider = embedding_pb2_grpc.EmbeddingServiceStub(
        connect(embedding_server, tenant, roles=("analyst",), subject="no-admin")
    )
    denial = await refused(
        outsider.DeleteCollection(embedding_pb2.DeleteCollectionRequest(name="crm-notes")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert denial.reason == "MISSING_ROLE"
    rows = await accesses_of(conductor_for(tenant, roles=("auditor",)), principal="no-admin")
    assert [(row.method, row.decision, row.reason, row.status_code) for row in rows] == [
        (
            "matcha.embedding.v1.EmbeddingService/DeleteCollection",
            conductor_pb2.POLICY_DECISION_DENY,
            "MISSING_ROLE",
            grpc.StatusCode.PERMISSION_DENIED.value[0],
        )
    ]


async def test_no_reply_leaves_when_its_access_cannot_be_recorded(
    embedding_settings, serve, local_encoder, connect, isolated_database, tenant
):
    settings = embedding_settings(database_url=isolated_database)
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as server:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(server, tenant, data_class=DataClass.CONFIDENTIAL))
        await seed_notes(stub)
        connection = await asyncpg.connect(isolated_database)
        try:
            await connection.execute(
                """CREATE FUNCTION ledger_down() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN RAISE EXCEPTION 'ledger unavailable'; END $$;
                   CREATE TRIGGER ledger_down BEFORE INSERT ON access_ledger
                   FOR EACH ROW EXECUTE FUNCTION ledger_down();"""
            )
            withheld = await refused(
                stub.Search(embedding_pb2.SearchRequest(collection="crm-notes", text="refund", top_k=2)),
                grpc.StatusCode.UNAVAILABLE,
            )
            assert withheld.retry_after_seconds > 0
            await connection.execute("DROP TRIGGER ledger_down ON access_ledger")
        finally:
            await connection.close()
        # The service keeps serving once the ledger is back.
        reply = await stub.Search(embedding_pb2.SearchRequest(collection="crm-notes", text="refund", top_k=2))
        assert len(reply.results) == 2


async def test_a_stream_the_client_closes_is_on_the_record_too(
    review_server, conductor_server, connect, conductor_for, tenant
):
    author = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=("author",)))
    reviews = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, subject="watcher"))
    watch = reviews.WatchEvents(review_pb2.WatchEventsRequest())
    first_event = asyncio.ensure_future(anext(aiter(watch)))
    while not first_event.done():  # until the live stream has sent something: the server is serving it
        offer = review_pb2.SubmitRequest(title="Offer", content="Ten percent off.", channel=review_pb2.CHANNEL_SMS)
        await author.Submit(offer)
        await asyncio.wait({first_event}, timeout=0.5)
    watch.cancel()
    auditor = conductor_for(tenant, roles=("auditor",))
    for _ in range(300):
        rows = await accesses_of(auditor, principal="watcher")
        if rows:
            break
        await asyncio.sleep(0.1)
    assert [(row.method, row.status_code) for row in rows] == [
        ("matcha.review.v1.ReviewService/WatchEvents", grpc.StatusCode.CANCELLED.value[0])
    ]
