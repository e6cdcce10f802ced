"""Attack: a plan author narrows mandatory redaction with a step's own `redact`."""

from matcha.conductor.v1 import conductor_pb2
from matcha.embedding.v1 import embedding_pb2
from matcha.runtime.governance import DataClass
from tests.conductor.support import EMBEDDING_SERVICE, start, wait_for_run

EMAIL = "camille.martin@example.fr"
PHONE = "06 12 34 56 78"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
NOTE = f"Call Camille on {PHONE}, write to {EMAIL}, refund to {IBAN}."

# Scoped to a field that is not in the request and to a kind the note does not hold.
NARROWED_PLAN = """
name: narrowed-redaction
inputs:
  - {name: note, type: string, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    redact: {fields: [voice.name], kinds: [URL_TOKEN]}
    request: {texts: ["${inputs.note}"]}
    output: "response.dimension"
"""


async def test_a_step_redact_cannot_narrow_the_redaction_policy_requires(
    conductor_via_proxy, embedding_proxy, connect, tenant
):
    from matcha.conductor.v1 import conductor_pb2_grpc

    server = await conductor_via_proxy(conductor_targets={EMBEDDING_SERVICE: {"clearance": "CONFIDENTIAL"}})
    author = conductor_pb2_grpc.ConductorServiceStub(
        connect(server, tenant, roles=("author", "operator", "analyst"), data_class=DataClass.PERSONAL)
    )
    await author.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=NARROWED_PLAN))
    run = await wait_for_run(author, (await start(author, "narrowed-redaction", note=NOTE)).id)
    assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error

    # What the CONFIDENTIAL target received holds no personal data.
    [(metadata, request)] = embedding_proxy.received("/Embed")
    sent = embedding_pb2.EmbedRequest.FromString(request).texts[0]
    assert metadata["x-matcha-data-class"] == "CONFIDENTIAL"
    for value in (EMAIL, PHONE, IBAN):
        assert value not in sent
    assert "[PHONE_" in sent and "[EMAIL_" in sent and "[IBAN_" in sent

    # The ledger counts what left, per kind.
    auditor = conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant, roles=("auditor",)))
    [row] = (await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run.id))).records
    assert (row.decision, row.policy_rule) == (conductor_pb2.POLICY_DECISION_REDACT, "clearance.redact_personal")
    counted = {conductor_pb2.PiiKind.Name(item.kind): item.count for item in row.redactions}
    assert {kind: counted.get(kind) for kind in ("PII_KIND_EMAIL", "PII_KIND_PHONE", "PII_KIND_IBAN")} == {
        "PII_KIND_EMAIL": 1,
        "PII_KIND_PHONE": 1,
        "PII_KIND_IBAN": 1,
    }
    # Every placeholder that left is counted, whatever its kind.
    assert sum(counted.values()) == sent.count("[")
