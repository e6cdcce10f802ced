"""Attacks on the clearance the conductor sends by: each capability reports its own (RuntimeService/Describe), the
operator's MATCHA_CONDUCTOR_TARGETS can only lower it, and a target that has not reported gets public data only.
Every test reads what the capability actually received, through a recording proxy in front of it."""

import asyncio
import contextlib

import grpc
import pytest
from google.rpc import error_details_pb2

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2
from matcha.runtime.governance import DataClass
from matcha.runtime.server import RUNTIME_SERVICE
from matcha.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from tests.conductor.support import EMBEDDING_SERVICE, RecordingProxy, start, wait_for_run
from tests.support import free_port

EMAIL = "camille.martin@example.fr"
NOTE = f"Camille asked to be written to at {EMAIL} about her refund."
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


class SilentProxy(RecordingProxy):
    """Forwards every call but does not describe itself, as a server that is not a Matcha server would."""

    def service(self, handler_call_details):
        if handler_call_details.method.startswith(f"/{RUNTIME_SERVICE}/"):
            return None  # UNIMPLEMENTED
        return super().service(handler_call_details)


@pytest.fixture
async def mesh(embedding_settings, local_encoder, conductor_settings, serve, connect, isolated_database, tenant):
    """`await mesh(clearance=..., targets=...)`: an embedding service cleared by its own settings, a recording proxy
    in front of it, a conductor reaching it through the proxy; returns (run, proxy): `run(data_class)` runs the
    embed-note plan as a caller declaring `data_class` and returns the finished run."""
    async with contextlib.AsyncExitStack() as stack:

        async def deploy(
            clearance="PERSONAL",
            trust_boundary="inside",
            targets=None,
            proxy_type=RecordingProxy,
            upstream=None,
            **more,
        ):
            if upstream is None:
                settings = embedding_settings(clearance=clearance, trust_boundary=trust_boundary)
                embedding = await stack.enter_async_context(
                    serve(build_embedding_service(settings, encoder=local_encoder), settings)
                )
                upstream = f"127.0.0.1:{embedding.port}"
            proxy = proxy_type(upstream)
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            orchestration = conductor_settings(
                database_url=isolated_database,
                conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{proxy.port}"},
                conductor_targets=targets or {},
                **more,
            )
            conductor = await stack.enter_async_context(serve(build_conductor_service(orchestration), orchestration))
            registered = False

            async def run(data_class: DataClass) -> conductor_pb2.Run:
                nonlocal registered
                stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant, data_class=data_class))
                if not registered:
                    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=EMBED_PLAN))
                    registered = True
                return await wait_for_run(stub, (await start(stub, "embed-note", note=NOTE)).id)

            return run, proxy

        yield deploy


def assert_denied(run: conductor_pb2.Run, rule: str) -> None:
    assert run.state == conductor_pb2.RUN_STATE_FAILED, run
    assert run.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    [detail] = [item for item in run.error.details if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    assert (info.reason, info.metadata["rule"]) == ("POLICY_DENIED", rule)


@pytest.mark.parametrize(
    "targets",
    [
        None,
        # The override claims more than the service accepts: it cannot raise the service's word.
        {EMBEDDING_SERVICE: {"clearance": "PERSONAL", "trust_boundary": "inside"}},
    ],
    ids=["reported", "override-raising"],
)
async def test_a_service_reporting_internal_receives_no_personal_data(mesh, targets):
    run, proxy = await mesh(clearance="INTERNAL", targets=targets)
    finished = await run(DataClass.PERSONAL)
    assert_denied(finished, "clearance.exceeded")
    assert proxy.received("/Describe"), "the conductor asked the service"
    assert not proxy.received("/Embed"), "nothing left the conductor"


async def test_a_service_reporting_confidential_gets_personal_data_pseudonymised_with_no_target_set(mesh):
    run, proxy = await mesh(clearance="CONFIDENTIAL")
    finished = await run(DataClass.PERSONAL)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    [(metadata, request)] = proxy.received("/Embed")
    assert metadata["x-matcha-data-class"] == "CONFIDENTIAL"
    sent = embedding_pb2.EmbedRequest.FromString(request).texts[0]
    assert EMAIL not in sent and "[EMAIL_" in sent


async def test_an_override_lowers_what_a_service_reports(mesh):
    run, proxy = await mesh(clearance="PERSONAL", targets={EMBEDDING_SERVICE: {"clearance": "CONFIDENTIAL"}})
    finished = await run(DataClass.PERSONAL)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    [(metadata, request)] = proxy.received("/Embed")
    assert metadata["x-matcha-data-class"] == "CONFIDENTIAL"
    assert EMAIL not in embedding_pb2.EmbedRequest.FromString(request).texts[0]


async def test_a_target_that_does_not_report_gets_public_data_only(mesh):
    """Fail closed: the server behind the endpoint would take PERSONAL data, but it does not say so."""
    run, proxy = await mesh(clearance="PERSONAL", proxy_type=SilentProxy)
    assert_denied(await run(DataClass.INTERNAL), "clearance.outside_boundary")
    assert not proxy.received("/Embed")
    public = await run(DataClass.PUBLIC)
    assert public.state == conductor_pb2.RUN_STATE_SUCCEEDED, public.error
    [(metadata, _)] = proxy.received("/Embed")
    assert metadata["x-matcha-data-class"] == "PUBLIC"


async def test_an_endpoint_serving_another_service_lends_it_no_clearance(mesh, conductor_server):
    """The embedding endpoint points at a conductor (a Matcha server cleared for PERSONAL): what it reports is
    about the conductor's service, not about the embedding service it is configured for."""
    run, proxy = await mesh(upstream=f"127.0.0.1:{conductor_server.port}")
    assert_denied(await run(DataClass.INTERNAL), "clearance.outside_boundary")
    assert proxy.received("/Describe") and not proxy.received("/Embed")


async def test_a_clearance_lowered_on_restart_is_read_again(mesh, embedding_settings, local_encoder, serve):
    """The service comes back cleared for INTERNAL where it took PERSONAL: once the report is older than the refresh
    period, the conductor asks again and stops sending it personal data."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    before = embedding_settings(listen_address=address)
    embedding = serve(build_embedding_service(before, encoder=local_encoder), before)
    await embedding.__aenter__()
    try:
        run, proxy = await mesh(upstream=address, conductor_clearance_refresh_seconds=0.5)
        first = await run(DataClass.PERSONAL)
        assert first.state == conductor_pb2.RUN_STATE_SUCCEEDED, first.error
        [(_, request)] = proxy.received("/Embed")
        assert EMAIL in embedding_pb2.EmbedRequest.FromString(request).texts[0]  # PERSONAL was cleared
    finally:
        await embedding.__aexit__(None, None, None)
    after = embedding_settings(listen_address=address, clearance="INTERNAL")
    async with serve(build_embedding_service(after, encoder=local_encoder), after):
        await reachable_through(proxy)
        await asyncio.sleep(1.0)  # the report is stale, and the conductor may ask again
        second = await run(DataClass.PERSONAL)
        assert_denied(second, "clearance.exceeded")
        assert len(proxy.received("/Embed")) == 1, "the restarted service received nothing"


async def reachable_through(proxy: RecordingProxy) -> None:
    """Until the proxy's channel has reconnected to the restarted service (its reconnect backoff aside, the
    conductor would find the service unreachable and keep its last report)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
        for _ in range(100):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await runtime_pb2_grpc.RuntimeServiceStub(channel).Describe(runtime_pb2.DescribeRequest(), timeout=1)
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the restarted service stayed unreachable")
