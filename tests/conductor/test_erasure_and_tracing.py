"""Erasure across the stores, the capability list, and one trace per run."""

import grpc
from google.protobuf import json_format
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import DataClass
from tests.conductor.support import EMBEDDING_SERVICE, start, wait_for_run
from tests.support import refused

INGEST_PLAN = """
name: ingest-customer-note
inputs:
  - {name: customer, type: string, required: true}
  - {name: note, type: string, required: true}
steps:
  - id: store
    call: matcha.embedding.v1.EmbeddingService/Upsert
    request:
      collection: crm
      documents:
        - id: "${inputs.customer + '-note'}"
          text: "${inputs.note}"
          policy: {data_class: DATA_CLASS_PERSONAL, consented_purposes: [campaign], subject_id: "${inputs.customer}"}
    output: "response.inserted"
  - id: confirm
    call: matcha.embedding.v1.EmbeddingService/Search
    depends_on: [store]
    request: {collection: crm, text: "${inputs.note}", top_k: 1}
    output: "response.results.size()"
"""


async def test_erase_subject_reaches_the_capabilities_and_the_conductor(
    conductor_for, connect, embedding_server, tenant
):
    # Notes about customers are personal data: the runs say so, and the conductor forwards it.
    analyst = conductor_for(tenant, data_class=DataClass.PERSONAL)
    embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="crm"))
    await analyst.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=INGEST_PLAN))
    kept = await wait_for_run(analyst, (await start(analyst, "ingest-customer-note", customer="c-2", note="keeps")).id)
    erased = await wait_for_run(
        analyst, (await start(analyst, "ingest-customer-note", customer="c-1", note="prefers linen")).id
    )
    assert erased.state == kept.state == conductor_pb2.RUN_STATE_SUCCEEDED, erased.error

    details = await refused(
        analyst.EraseSubject(conductor_pb2.EraseSubjectRequest(subject_id="c-1")), grpc.StatusCode.PERMISSION_DENIED
    )
    assert details.reason == "MISSING_ROLE"
    admin = conductor_for(tenant, roles=("admin",))
    await refused(admin.EraseSubject(conductor_pb2.EraseSubjectRequest()))

    reply = await admin.EraseSubject(conductor_pb2.EraseSubjectRequest(subject_id="c-1"))
    assert reply.complete
    stores = {store.store: store for store in reply.stores}
    assert set(stores) == {EMBEDDING_SERVICE, "matcha.conductor.v1.ConductorService"}
    assert stores[EMBEDDING_SERVICE].erased_records == 1
    assert stores["matcha.conductor.v1.ConductorService"].erased_records == 1

    collection = await embedding.GetCollection(embedding_pb2.GetCollectionRequest(name="crm"))
    assert collection.collection.document_count == 1
    full = conductor_pb2.RUN_VIEW_FULL
    scrubbed = (await analyst.GetRun(conductor_pb2.GetRunRequest(run_id=erased.id, view=full))).run
    assert json_format.MessageToDict(scrubbed.inputs) == {}
    untouched = (await analyst.GetRun(conductor_pb2.GetRunRequest(run_id=kept.id, view=full))).run
    assert json_format.MessageToDict(untouched.inputs) == {"customer": "c-2", "note": "keeps"}
    again = await admin.EraseSubject(conductor_pb2.EraseSubjectRequest(subject_id="c-1"))
    assert again.complete and all(store.erased_records == 0 for store in again.stores)


async def test_capabilities_list_methods_clearance_and_health(conductor_for, tenant):
    reply = await conductor_for(tenant).ListCapabilities(conductor_pb2.ListCapabilitiesRequest())
    capabilities = {capability.service: capability for capability in reply.capabilities}
    embedding = capabilities[EMBEDDING_SERVICE]
    assert embedding.serving and embedding.inside_trust_boundary
    assert {"Embed", "Search", "Upsert", "EraseSubject"} <= set(embedding.methods)
    generation = capabilities["matcha.generation.v1.GenerationService"]
    assert not generation.serving and "GenerateStream" not in generation.methods


async def test_a_run_is_one_trace_with_a_span_per_step_and_hop(
    conductor_settings, serve, connect, embedding_server, tenant, isolated_database
):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = conductor_settings(database_url=isolated_database)
    embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="crm"))
    async with serve(build_conductor_service(settings, provider), settings, provider) as server:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant, data_class=DataClass.PERSONAL))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=INGEST_PLAN))
        # The caller's trace (the gateway's HTTP request, say) carries on through the run.
        caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        started = await start(
            stub,
            "ingest-customer-note",
            metadata=(("traceparent", f"00-{caller_trace}-{caller_span}-01"),),
            customer="c-9",
            note="n",
        )
        run = await wait_for_run(stub, started.id)
    assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED
    assert run.trace_id == caller_trace
    spans = [span for span in exporter.get_finished_spans() if format(span.context.trace_id, "032x") == run.trace_id]
    start_span = next(span for span in spans if span.name.endswith("/StartRun"))
    assert start_span.parent.span_id == int(caller_span, 16)
    steps = {span.attributes["matcha.step"]: span for span in spans if span.name.startswith("step ")}
    assert all(span.parent.span_id == start_span.context.span_id for span in steps.values())
    assert set(steps) == {"store", "confirm"}
    assert steps["store"].attributes["matcha.run_id"] == run.id
    assert steps["store"].attributes["matcha.target"] == f"{EMBEDDING_SERVICE}/Upsert"
    assert steps["store"].attributes["matcha.policy.decision"] == "ALLOW"
    hops = [span for span in spans if span.name == f"/{EMBEDDING_SERVICE}/Upsert"]
    assert len(hops) == 1 and hops[0].parent.span_id == steps["store"].context.span_id
    # Governance attributes only: the note's content never reaches a span.
    assert all(value != "n" for span in spans for value in span.attributes.values())
