"""Governance on every hop: forwarded context, idempotency keys, policy decisions, redaction, the audit ledger."""

import asyncpg
import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import DataClass
from tests.conductor.support import EMBEDDING_SERVICE, start, wait_for_run
from tests.support import refused

EMAIL = "camille.martin@example.fr"
PHONE = "06 12 34 56 78"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
NOTE = f"Camille asked to be called back on {PHONE} or written to at {EMAIL}; refund to {IBAN}."

REDACT_PLAN = """
name: remember-note
inputs:
  - {name: note, type: string, required: true}
steps:
  - id: collection
    call: matcha.embedding.v1.EmbeddingService/CreateCollection
    request: {name: notes}
  - id: store
    call: matcha.embedding.v1.EmbeddingService/Upsert
    depends_on: [collection]
    redact: {fields: [documents.text]}
    request:
      collection: notes
      documents: [{id: n1, text: "${inputs.note}"}]
  - id: recall
    call: matcha.embedding.v1.EmbeddingService/Search
    depends_on: [store]
    redact: {rehydrate: true}
    request: {collection: notes, text: "customer asked for a refund", top_k: 1}
    output: "response.results[0].text"
outputs:
  recalled: "steps.recall.output"
"""

EMBED_PLAN = """
name: embed-note
inputs:
  - {name: note, type: string, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["${inputs.note}"]}
    output: "response.dimension"
"""


@pytest.fixture
def stubs(connect):
    def make(server, tenant, **kwargs):
        return conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant, **kwargs))

    return make


def error_info(status) -> error_details_pb2.ErrorInfo:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in the status")


async def test_hops_carry_context_idempotency_keys_and_redacted_payloads(
    conductor_via_proxy, embedding_proxy, stubs, connect, embedding_server, tenant
):
    server = await conductor_via_proxy()
    stub = stubs(server, tenant)
    auditor = stubs(server, tenant, roles=("auditor",))
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=REDACT_PLAN))
    run = await wait_for_run(stub, (await start(stub, "remember-note", note=NOTE)).id)
    assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error

    # The answer was re-hydrated on its way back...
    assert json_format.MessageToDict(run.outputs) == {"recalled": NOTE}
    # ...but the capability never saw the personal data: neither on the wire nor in its store.
    [(_, request)] = embedding_proxy.received("/Upsert")
    sent = embedding_pb2.UpsertRequest.FromString(request).documents[0].text
    assert EMAIL not in sent and PHONE not in sent and IBAN not in sent
    assert "[EMAIL_" in sent and "[PHONE_" in sent and "[IBAN_" in sent and "[PERSON_" in sent
    assert "Camille" not in sent and " asked to be called back on " in sent  # a bare `redact` covers names too
    direct = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    stored = await direct.Search(embedding_pb2.SearchRequest(collection="notes", text="refund", top_k=1))
    assert stored.results[0].text == sent

    # Every hop forwards the run's governance context and an attempt-independent idempotency key.
    for (hop_metadata, _), step_id in zip(
        [embedding_proxy.received(method)[0] for method in ("/CreateCollection", "/Upsert", "/Search")],
        ("collection", "store", "recall"),
        strict=True,
    ):
        assert hop_metadata["x-matcha-idempotency-key"] == f"{run.id}/{step_id}/0"
        assert hop_metadata["x-matcha-tenant"] == tenant
        assert hop_metadata["x-matcha-purpose"] == "campaign"
        assert hop_metadata["x-matcha-data-class"] == "INTERNAL"
        assert hop_metadata["authorization"].startswith("Bearer ")
        assert run.trace_id in hop_metadata["traceparent"]

    ledger = (await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run.id))).records
    assert [record.step_id for record in ledger] == ["collection", "store", "recall"]
    store_row = ledger[1]
    assert store_row.decision == conductor_pb2.POLICY_DECISION_REDACT and store_row.policy_rule == "step.redact"
    assert {conductor_pb2.PiiKind.Name(item.kind): item.count for item in store_row.redactions} == {
        "PII_KIND_EMAIL": 1,
        "PII_KIND_PHONE": 1,
        "PII_KIND_IBAN": 1,
        "PII_KIND_PERSON": 1,
    }
    assert store_row.models[0].id == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(store_row.request_sha256) == 64 and len(store_row.response_sha256) == 64
    assert store_row.trace_id == run.trace_id and store_row.principal.subject == "user-1"
    assert ledger[0].decision == conductor_pb2.POLICY_DECISION_ALLOW


async def test_personal_data_is_redacted_for_a_target_cleared_below_personal(
    conductor_via_proxy, embedding_proxy, stubs, tenant
):
    server = await conductor_via_proxy(conductor_targets={EMBEDDING_SERVICE: {"clearance": "CONFIDENTIAL"}})
    stub = stubs(server, tenant, data_class=DataClass.PERSONAL)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=EMBED_PLAN))
    run = await wait_for_run(stub, (await start(stub, "embed-note", note=NOTE)).id)
    assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error
    [(metadata, request)] = embedding_proxy.received("/Embed")
    assert metadata["x-matcha-data-class"] == "CONFIDENTIAL"
    assert EMAIL not in embedding_pb2.EmbedRequest.FromString(request).texts[0]
    auditor = stubs(server, tenant, roles=("auditor",))
    [row] = (await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run.id))).records
    assert (row.decision, row.policy_rule) == (conductor_pb2.POLICY_DECISION_REDACT, "clearance.redact_personal")
    assert (row.data_class_in, row.data_class_out) == (DataClass.PERSONAL, DataClass.CONFIDENTIAL)


@pytest.mark.parametrize(
    ("target", "data_class", "rule"),
    [
        ({"clearance": "INTERNAL"}, DataClass.PERSONAL, "clearance.exceeded"),
        ({"clearance": "INTERNAL", "trust_boundary": "outside"}, DataClass.CONFIDENTIAL, "clearance.outside_boundary"),
    ],
)
async def test_policy_denial_fails_the_step_and_is_recorded(
    conductor_via_proxy, embedding_proxy, stubs, tenant, target, data_class, rule
):
    server = await conductor_via_proxy(conductor_targets={EMBEDDING_SERVICE: target})
    stub = stubs(server, tenant, data_class=data_class)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=EMBED_PLAN))
    run = await wait_for_run(stub, (await start(stub, "embed-note", note=NOTE)).id)
    assert run.state == conductor_pb2.RUN_STATE_FAILED
    assert run.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    info = error_info(run.error)
    assert info.reason == "POLICY_DENIED" and info.metadata["rule"] == rule
    assert run.steps[0].state == conductor_pb2.STEP_STATE_FAILED
    assert not embedding_proxy.received("/Embed")  # nothing left the conductor

    auditor = stubs(server, tenant, roles=("auditor",))
    [row] = (
        await auditor.ListAudit(conductor_pb2.ListAuditRequest(decision=conductor_pb2.POLICY_DECISION_DENY))
    ).records
    assert row.run_id == run.id and row.policy_rule == rule
    assert row.status_code == grpc.StatusCode.PERMISSION_DENIED.value[0] and not row.response_sha256


async def ledger_with_rows(conductor_via_proxy, stubs, tenant, runs=2):
    server = await conductor_via_proxy()
    stub = stubs(server, tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=EMBED_PLAN))
    for index in range(runs):
        run = await wait_for_run(stub, (await start(stub, "embed-note", note=f"note {index}")).id)
        assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED
    return server, stubs(server, tenant, roles=("auditor",))


async def tamper(database_url: str, statement: str, *args) -> None:
    """What an operator with direct database access could do: bypass the append-only trigger."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute("ALTER TABLE conductor_audit DISABLE TRIGGER conductor_audit_append_only")
            await connection.execute(statement, *args)
            await connection.execute("ALTER TABLE conductor_audit ENABLE TRIGGER conductor_audit_append_only")
    finally:
        await connection.close()


async def test_ledger_verifies_and_is_append_only(conductor_via_proxy, stubs, tenant, isolated_database):
    _, auditor = await ledger_with_rows(conductor_via_proxy, stubs, tenant, runs=3)
    result = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())
    assert result.intact and result.records_checked == 3 and result.head_sequence == 3 and len(result.head_hash) == 64
    partial = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest(from_sequence=2))
    assert partial.intact and partial.records_checked == 2
    connection = await asyncpg.connect(isolated_database)
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("UPDATE conductor_audit SET decision = 'ALLOW' WHERE tenant = $1", tenant)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("DELETE FROM conductor_audit WHERE tenant = $1", tenant)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("statement", "broken", "kind"),
    [
        (
            "UPDATE conductor_audit SET entry = jsonb_set(entry, '{purpose}', '\"research\"') "
            "WHERE tenant = $1 AND sequence = 2",
            2,
            conductor_pb2.CHAIN_BREAK_ALTERED,
        ),
        ("DELETE FROM conductor_audit WHERE tenant = $1 AND sequence = 2", 3, conductor_pb2.CHAIN_BREAK_DELETED),
        (
            "UPDATE conductor_audit SET previous_hash = repeat('0', 64) WHERE tenant = $1 AND sequence = 3",
            3,
            conductor_pb2.CHAIN_BREAK_INSERTED,
        ),
    ],
    ids=["altered", "deleted", "forged-link"],
)
async def test_tampered_ledger_is_detected(
    conductor_via_proxy, stubs, tenant, isolated_database, statement, broken, kind
):
    _, auditor = await ledger_with_rows(conductor_via_proxy, stubs, tenant, runs=3)
    await tamper(isolated_database, statement, tenant)
    result = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())
    assert not result.intact
    assert (result.first_broken_sequence, result.break_kind) == (broken, kind)


async def test_truncated_ledger_is_detected_against_a_kept_head(conductor_via_proxy, stubs, tenant, isolated_database):
    _, auditor = await ledger_with_rows(conductor_via_proxy, stubs, tenant, runs=3)
    head = (await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())).head_hash
    await tamper(isolated_database, "DELETE FROM conductor_audit WHERE tenant = $1 AND sequence = 3", tenant)
    assert (await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())).intact  # the chain alone looks whole
    result = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest(expected_head_hash=head))
    assert not result.intact and result.break_kind == conductor_pb2.CHAIN_BREAK_TRUNCATED
    assert result.first_broken_sequence == 3


async def test_ledger_needs_the_auditor_role_and_filters(conductor_via_proxy, stubs, tenant):
    server, auditor = await ledger_with_rows(conductor_via_proxy, stubs, tenant, runs=2)
    analyst = stubs(server, tenant)
    for call in (
        analyst.ListAudit(conductor_pb2.ListAuditRequest()),
        analyst.VerifyAudit(conductor_pb2.VerifyAuditRequest()),
    ):
        details = await refused(call, grpc.StatusCode.PERMISSION_DENIED)
        assert details.reason == "MISSING_ROLE"
    by_service = await auditor.ListAudit(conductor_pb2.ListAuditRequest(target=EMBEDDING_SERVICE))
    assert len(by_service.records) == 2
    other = await auditor.ListAudit(conductor_pb2.ListAuditRequest(target="matcha.generation.v1.GenerationService"))
    assert not other.records
    first_page = await auditor.ListAudit(conductor_pb2.ListAuditRequest(page_size=1))
    second_page = await auditor.ListAudit(
        conductor_pb2.ListAuditRequest(page_size=1, page_token=first_page.next_page_token)
    )
    assert [first_page.records[0].sequence, second_page.records[0].sequence] == [1, 2]
    assert second_page.records[0].previous_hash == first_page.records[0].record_hash
    assert not (
        await stubs(server, f"{tenant}-x", roles=("auditor",)).ListAudit(conductor_pb2.ListAuditRequest())
    ).records
