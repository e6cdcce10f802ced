"""How the conductor reads the clearance each capability reports: the override only lowers it, a report is asked
once and kept, and ListCapabilities shows what hops are decided on."""

import itertools

from matcha.common.v1 import common_pb2
from matcha.conductor.app import build_conductor_service, capability_services
from matcha.conductor.capabilities import UNREPORTED, lowered, reported_clearance
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from matcha.mesh import CAPABILITIES, CONDUCTOR
from matcha.runtime.governance import Clearance, DataClass
from matcha.runtime.v1 import runtime_pb2
from tests.conductor.support import EMBEDDING_SERVICE, start, wait_for_run
from tests.support import free_port

CLEARANCES = [Clearance(data_class, inside) for data_class in DataClass for inside in (True, False)]


def test_an_override_never_widens_a_reported_clearance():
    for reported, override in itertools.product(CLEARANCES, [None, *CLEARANCES]):
        effective = lowered(reported, override)
        assert effective.max_data_class <= reported.max_data_class, (reported, override)
        assert effective.inside_trust_boundary <= reported.inside_trust_boundary, (reported, override)
        if override is None:
            assert effective == reported
        else:
            assert effective.max_data_class <= override.max_data_class, (reported, override)
            assert effective.inside_trust_boundary <= override.inside_trust_boundary, (reported, override)


def describe(**fields) -> runtime_pb2.DescribeResponse:
    return runtime_pb2.DescribeResponse(**{"name": "embedding", "services": [EMBEDDING_SERVICE], **fields})


def test_a_report_says_nothing_unless_it_names_the_service_and_a_class():
    confidential = describe(clearance=common_pb2.DATA_CLASS_CONFIDENTIAL, inside_trust_boundary=True)
    assert reported_clearance(confidential, EMBEDDING_SERVICE) == Clearance(DataClass.CONFIDENTIAL, True)
    assert reported_clearance(confidential, "matcha.review.v1.ReviewService") is None
    # Unset is not the widest class, as it is for a payload: it is no clearance at all.
    assert reported_clearance(describe(inside_trust_boundary=True), EMBEDDING_SERVICE) is None
    assert reported_clearance(describe(clearance=9, inside_trust_boundary=True), EMBEDDING_SERVICE) is None


def test_outside_the_trust_boundary_a_report_is_internal_at_most():
    claimed = describe(clearance=common_pb2.DATA_CLASS_PERSONAL, inside_trust_boundary=False)
    assert reported_clearance(claimed, EMBEDDING_SERVICE) == Clearance(DataClass.INTERNAL, False)


FAN_OUT_PLAN = """
name: embed-each
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "['a hat', 'a scarf', 'a coat', 'a glove', 'a boot', 'a sock']", concurrency: 6}
    request: {texts: ["${item}"]}
    output: "response.dimension"
"""


async def test_a_report_is_asked_once_and_kept(conductor_via_proxy, embedding_proxy, connect, tenant):
    server = await conductor_via_proxy()
    stub = conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant))
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_PLAN))
    for _ in range(2):
        run = await wait_for_run(stub, (await start(stub, "embed-each")).id)
        assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error
    assert len(embedding_proxy.received("/Embed")) == 12
    assert len(embedding_proxy.received("/Describe")) == 1


async def test_list_capabilities_shows_the_reported_clearance_lowered_by_the_override(
    conductor_via_proxy, connect, tenant
):
    server = await conductor_via_proxy(conductor_targets={EMBEDDING_SERVICE: {"clearance": "CONFIDENTIAL"}})
    stub = conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant))
    listed = {
        item.service: item
        for item in (await stub.ListCapabilities(conductor_pb2.ListCapabilitiesRequest())).capabilities
    }
    embedding = listed[EMBEDDING_SERVICE]
    assert (embedding.clearance, embedding.inside_trust_boundary) == (common_pb2.DATA_CLASS_CONFIDENTIAL, True)
    # No endpoint, so no report: cleared for public data only.
    generation = listed["matcha.generation.v1.GenerationService"]
    assert (
        (generation.clearance, generation.inside_trust_boundary)
        == (
            int(UNREPORTED.max_data_class),
            UNREPORTED.inside_trust_boundary,
        )
        == (common_pb2.DATA_CLASS_PUBLIC, False)
    )


def test_the_conductor_calls_every_capability_the_mesh_names_and_only_those():
    """Adding a service is one row in matcha.mesh: its contract becomes callable from plans with no other list."""
    assert [service.full_name for service in capability_services()] == [spec.grpc_service for spec in CAPABILITIES]
    assert CONDUCTOR not in CAPABILITIES and all(spec.grpc_service for spec in CAPABILITIES)


EMBED_PLAN = """
name: embed-one
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["a linen shirt"]}
    output: "response.dimension"
"""


async def test_a_capability_started_after_the_conductor_is_asked_before_the_first_hop(
    conductor_settings, embedding_settings, serve, connect, local_encoder, isolated_database, tenant
):
    """As `matcha up` or a rollout may order them: the conductor found nothing at start, and its channel to the
    capability may still be in its reconnect backoff when the first run comes."""
    address = f"127.0.0.1:{free_port()}"
    settings = conductor_settings(database_url=isolated_database, conductor_endpoints={EMBEDDING_SERVICE: address})
    async with serve(build_conductor_service(settings), settings) as conductor:
        capability = embedding_settings(listen_address=address)
        async with serve(build_embedding_service(capability, encoder=local_encoder), capability):
            stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant, data_class=DataClass.INTERNAL))
            await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=EMBED_PLAN))
            run = await wait_for_run(stub, (await start(stub, "embed-one")).id)
            assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error
