"""Runs act through the conductor's workload tokens: they outlive the starter's token, are bound to their tenant,
purpose and a few minutes, cannot be forged with a user key, and stop when the starter is revoked."""

import asyncio
import secrets
import time
import uuid

import grpc
import jwt
import pytest

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime import auth
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass
from tests.conductor.support import start, wait_for_run
from tests.conductor.test_governance import error_info
from tests.support import refused

HOLD_THEN_EMBED = """
name: hold-then-embed
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: approval
    await: {}
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    depends_on: [approval]
    request: {texts: ["${inputs.text}"]}
"""
LIST = embedding_pb2.ListCollectionsRequest()
ACCESSES = conductor_pb2.AUDIT_LEDGER_ACCESSES


@pytest.fixture
def workload_issuer(workload_key_paths):
    """The conductor's key, as a stolen hop token would have been signed with it."""

    def make(ttl_seconds: float = 60) -> auth.WorkloadTokenIssuer:
        return auth.WorkloadTokenIssuer.from_file(workload_key_paths.private, ttl_seconds=ttl_seconds)

    return make


async def _waiting_run(conductor_server, connect, tenant, starter: conductor_pb2_grpc.ConductorServiceStub, text):
    author = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, subject="plan-author"))
    await author.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=HOLD_THEN_EMBED))
    run = await start(starter, "hold-then-embed", text=text)
    await wait_for_run(author, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
    return run, author


async def test_a_run_approved_after_its_starters_token_expired_completes(conductor_server, connect, issuer, tenant):
    """Today's reviews take days and tokens hours: the hop after the approval is made with a fresh workload token
    naming the starter and the run, and the ledger of the service it reached says so."""
    starter = f"operator-{uuid.uuid4().hex[:6]}"
    expires = time.time() + 5
    short_lived = issuer.mint(subject=starter, tenant=tenant, roles=["operator"], ttl_seconds=5)
    channel = open_channel(
        f"127.0.0.1:{conductor_server.port}", token=short_lived, purpose="campaign", data_class=DataClass.INTERNAL
    )
    async with channel:
        run, author = await _waiting_run(
            conductor_server, connect, tenant, conductor_pb2_grpc.ConductorServiceStub(channel), "late approval"
        )
        await asyncio.sleep(max(0.0, expires - time.time()) + 1.0)
        expired = await refused(
            conductor_pb2_grpc.ConductorServiceStub(channel).GetRun(conductor_pb2.GetRunRequest(run_id=run.id)),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        assert expired.reason == "TOKEN_EXPIRED"
    reviewer = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, subject="reviewer-1"))
    await reviewer.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="approval"))
    finished = await wait_for_run(author, run.id)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error.message

    auditor = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, roles=["auditor"]))
    accesses = await auditor.ListAudit(conductor_pb2.ListAuditRequest(ledger=ACCESSES, principal=starter))
    embeds = [row for row in accesses.accesses if row.method.endswith("EmbeddingService/Embed")]
    assert len(embeds) == 1
    assert embeds[0].principal.subject == starter and list(embeds[0].principal.roles) == ["operator"]
    assert embeds[0].run_id == run.id
    assert embeds[0].decision == conductor_pb2.POLICY_DECISION_ALLOW
    verified = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest(ledger=ACCESSES))
    assert verified.intact


async def _list_collections(server, token: str, *, purpose="campaign", tenant_header: str = ""):
    metadata = [("authorization", f"Bearer {token}"), ("x-matcha-purpose", purpose)]
    if tenant_header:
        metadata.append(("x-matcha-tenant", tenant_header))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        return await embedding_pb2_grpc.EmbeddingServiceStub(channel).ListCollections(LIST, metadata=metadata)


async def test_a_stolen_workload_token_serves_neither_another_tenant_another_purpose_nor_after_expiry(
    embedding_server, workload_issuer, tenant
):
    token = workload_issuer(ttl_seconds=3).mint(
        subject="operator-1", tenant=tenant, roles=["operator"], run_id=str(uuid.uuid4()), purpose="campaign"
    )
    await _list_collections(embedding_server, token)  # what the hop it was minted for may do

    other_tenant = await refused(
        _list_collections(embedding_server, token, tenant_header="tenant-elsewhere"), grpc.StatusCode.PERMISSION_DENIED
    )
    assert other_tenant.reason == "TENANT_MISMATCH"
    other_purpose = await refused(
        _list_collections(embedding_server, token, purpose="listening"), grpc.StatusCode.PERMISSION_DENIED
    )
    assert other_purpose.reason == "WORKLOAD_PURPOSE_MISMATCH"

    await asyncio.sleep(4.0)
    expired = await refused(_list_collections(embedding_server, token), grpc.StatusCode.UNAUTHENTICATED)
    assert expired.reason == "TOKEN_EXPIRED"

    long_lived = workload_issuer(ttl_seconds=24 * 3600).mint(
        subject="operator-1", tenant=tenant, roles=["operator"], run_id=str(uuid.uuid4()), purpose="campaign"
    )
    too_long = await refused(_list_collections(embedding_server, long_lived), grpc.StatusCode.UNAUTHENTICATED)
    assert too_long.reason == "TOKEN_LIFETIME_EXCEEDED"


@pytest.mark.parametrize("issuer_claim", [auth.WORKLOAD_ISSUER, auth.ISSUER])
async def test_a_user_key_cannot_forge_a_token_acting_through_a_run(embedding_server, key_paths, tenant, issuer_claim):
    """Whoever holds the user-token key (an identity provider, the launcher) still cannot mint hop tokens."""
    now = int(time.time())
    claims = {
        "iss": issuer_claim,
        "aud": auth.AUDIENCE,
        "sub": "mallory",
        "tenant": tenant,
        "roles": ["admin"],
        "purpose": "campaign",
        auth.ACTOR_CLAIM: {"sub": auth.WORKLOAD_ISSUER, "run": str(uuid.uuid4())},
        "iat": now,
        "exp": now + 60,
    }
    user_key = auth.load_private_key(key_paths.private)
    forged = jwt.encode(claims, user_key, algorithm=auth.ALGORITHM, headers={"kid": auth.key_id(user_key.public_key())})
    refusal = await refused(_list_collections(embedding_server, forged), grpc.StatusCode.UNAUTHENTICATED)
    assert refusal.reason == "TOKEN_INVALID"


async def test_a_workload_key_token_must_name_its_run(embedding_server, workload_key_paths, tenant):
    """The conductor's key signs hop tokens only: a plain user-shaped token under it is refused."""
    plain = auth.TokenIssuer.from_file(workload_key_paths.private).mint(
        subject="conductor", tenant=tenant, roles=["admin"], ttl_seconds=60
    )
    refusal = await refused(_list_collections(embedding_server, plain), grpc.StatusCode.UNAUTHENTICATED)
    assert refusal.reason == "TOKEN_INVALID"


async def test_a_revoked_principals_waiting_run_fails_at_its_next_hop(conductor_server, connect, tenant):
    starter = f"operator-{uuid.uuid4().hex[:6]}"
    starter_stub = conductor_pb2_grpc.ConductorServiceStub(
        connect(conductor_server, tenant, subject=starter, roles=["operator"])
    )
    run, author = await _waiting_run(conductor_server, connect, tenant, starter_stub, "revoked meanwhile")

    not_admin = await refused(
        author.RevokePrincipal(conductor_pb2.RevokePrincipalRequest(subject=starter)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert not_admin.reason == "MISSING_ROLE"
    admin = conductor_pb2_grpc.ConductorServiceStub(
        connect(conductor_server, tenant, subject="admin-1", roles=["admin"])
    )
    revoked = await admin.RevokePrincipal(conductor_pb2.RevokePrincipalRequest(subject=starter, reason="left"))
    assert (revoked.revocation.revoked_by, revoked.active_runs) == ("admin-1", 1)

    reviewer = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, subject="reviewer-1"))
    await reviewer.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="approval"))
    failed = await wait_for_run(author, run.id)
    assert failed.state == conductor_pb2.RUN_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    info = error_info(failed.error)
    assert info.reason == "PRINCIPAL_REVOKED" and info.metadata["subject"] == starter

    auditor = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, roles=["auditor"]))
    hops = await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run.id))
    assert [(row.decision, row.policy_rule) for row in hops.records] == [
        (conductor_pb2.POLICY_DECISION_DENY, "principal.revoked")
    ]
    accesses = await auditor.ListAudit(conductor_pb2.ListAuditRequest(ledger=ACCESSES, principal=starter))
    assert not [row for row in accesses.accesses if row.method.endswith("EmbeddingService/Embed")]

    no_new_run = await refused(
        starter_stub.StartRun(conductor_pb2.StartRunRequest(plan_name="hold-then-embed")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert no_new_run.reason == "PRINCIPAL_REVOKED"
    reinstated = await admin.ReinstatePrincipal(conductor_pb2.ReinstatePrincipalRequest(subject=starter))
    assert reinstated.reinstated
    again = await start(starter_stub, "hold-then-embed", text="back")
    assert again.id


def test_with_an_external_database_a_missing_workload_key_stops_the_conductor(conductor_settings, tmp_path):
    """Replicas that each made up a key would sign hops no service trusts: the operator must give them one."""
    (tmp_path / "secret.key").write_text(secrets.token_hex(32))
    settings = conductor_settings(
        database_url="postgresql://matcha@db.internal.example:5432/matcha",
        conductor_secret_file=tmp_path / "secret.key",
        conductor_workload_key_file=tmp_path / "workload.key",
    )
    with pytest.raises(SystemExit, match="MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE"):
        build_conductor_service(settings)
    assert not (tmp_path / "workload.key").exists()
