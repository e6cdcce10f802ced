"""Runs against the real embedding service: DAG, fan-out, conditions, outputs, waits, cancellation, resume."""

import grpc
from google.protobuf import duration_pb2, json_format

from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from tests.conductor.support import EMBEDDING_SERVICE, events_of, start, step, wait_for_run
from tests.support import refused, struct

LISTENING_PLAN = """
name: listen
inputs:
  - {name: collection, type: string, required: true}
  - {name: reviews, type: list, required: true}
  - {name: theme, type: string, default_value: "late delivery"}
  - {name: notify, type: boolean, default_value: false}
steps:
  - id: collection
    call: matcha.embedding.v1.EmbeddingService/CreateCollection
    request: {name: "${inputs.collection}", description: "reviews of ${inputs.collection}"}
  - id: ingest
    call: matcha.embedding.v1.EmbeddingService/Upsert
    depends_on: [collection]
    request:
      collection: "${inputs.collection}"
      documents: "${inputs.reviews.map(r, {'id': r.id, 'text': r.text})}"
    output: "response.inserted"
  - id: search
    call: matcha.embedding.v1.EmbeddingService/Search
    depends_on: [ingest]
    request: {collection: "${inputs.collection}", text: "${inputs.theme}", top_k: 3}
    output: "response.results.map(r, r.id)"
  - id: embed_hits
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "steps.search.output", concurrency: 2}
    when: "item != 'r3'"
    request: {texts: ["${item}"]}
    output: "response.dimension"
  - id: model
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["independent of the others"]}
    output: "response.model.id"
  - id: notify
    call: matcha.embedding.v1.EmbeddingService/Embed
    when: "inputs.notify"
    request: {texts: ["notify"]}
outputs:
  inserted: "steps.ingest.output"
  hits: "steps.search.output"
  dimensions: "steps.embed_hits.output"
  model: "steps.model.output"
"""

REVIEWS = [
    {"id": "r1", "text": "Parcel arrived two weeks late, the courier lost it twice."},
    {"id": "r2", "text": "Delivery was slow and the box was crushed."},
    {"id": "r3", "text": "Shipping took ages, I nearly cancelled my order."},
    {"id": "r4", "text": "Lovely fabric and the colour is exactly as pictured."},
]

WAIT_PLAN = """
name: approve
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: draft
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["${inputs.text}"]}
    output: "response.dimension"
  - id: approval
    depends_on: [draft]
    await: {roles: [reviewer]}
    output: "response.decision"
  - id: legal
    depends_on: [draft]
    await: {key: "'legal/' + run.id"}
  - id: publish
    call: matcha.embedding.v1.EmbeddingService/Embed
    when: "steps.approval.output == 'APPROVED'"
    request: {texts: ["published ${inputs.text}"]}
    output: "response.dimension"
outputs:
  decision: "steps.approval.output"
  legal: "steps.legal.output.ok"
"""


async def test_plan_runs_its_dag_with_fan_out_conditions_and_outputs(conductor_for, connect, embedding_server, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=LISTENING_PLAN))
    run = await start(stub, "listen", collection="shoes", reviews=REVIEWS)
    assert run.state in (conductor_pb2.RUN_STATE_PENDING, conductor_pb2.RUN_STATE_RUNNING)
    run = await wait_for_run(stub, run.id)
    assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error

    outputs = json_format.MessageToDict(run.outputs)
    assert outputs["inserted"] == 4
    hits = outputs["hits"]
    assert len(hits) == 3 and "r4" not in hits  # the review about fabric is not about delivery
    # The fan-out keeps input order; the `when` condition skipped r3's item.
    assert outputs["dimensions"] == [None if hit == "r3" else 384 for hit in hits]
    assert outputs["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert step(run, "notify").state == conductor_pb2.STEP_STATE_SKIPPED
    assert step(run, "embed_hits").progress.completed == 3 and step(run, "embed_hits").progress.total == 3

    events = await events_of(stub, run.id)
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    assert events[0].type == conductor_pb2.RUN_EVENT_TYPE_RUN_STARTED
    assert events[-1].type == conductor_pb2.RUN_EVENT_TYPE_RUN_SUCCEEDED
    progress = [event for event in events if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_PROGRESS]
    assert sorted(event.item_index for event in progress) == [0, 1, 2]
    assert sorted(event.progress.completed for event in progress) == [1, 2, 3]

    # The real service holds what the plan wrote, under the caller's tenant.
    embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    collection = await embedding.GetCollection(embedding_pb2.GetCollectionRequest(name="shoes"))
    assert collection.collection.document_count == 4


async def test_a_run_keeps_the_plan_version_it_started_with(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    run = await start(stub, "approve", text="spring sale")
    await stub.RegisterPlan(
        conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN.replace("published ${inputs.text}", "v2 ${inputs.text}"))
    )
    await wait_for_run(stub, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
    reviewer = conductor_for(tenant, roles=("reviewer",))
    await reviewer.Signal(
        conductor_pb2.SignalRequest(run_id=run.id, key="approval", payload=struct({"decision": "APPROVED"}))
    )
    await stub.Signal(conductor_pb2.SignalRequest(run_id=run.id, key=f"legal/{run.id}", payload=struct({"ok": True})))
    finished = await wait_for_run(stub, run.id)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED and finished.plan_version == 1
    newer = await start(stub, "approve", text="summer sale")
    assert newer.plan_version == 2


async def test_await_parks_the_run_until_signals_arrive(conductor_for, tenant):
    stub = conductor_for(tenant)
    reviewer = conductor_for(tenant, roles=("reviewer",), subject="reviewer-1")
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    run = await start(stub, "approve", text="new collection")

    # A signal for a step not reached yet is stored and consumed later.
    stored = await stub.Signal(
        conductor_pb2.SignalRequest(run_id=run.id, key=f"legal/{run.id}", payload=struct({"ok": True}))
    )
    assert stored.disposition == conductor_pb2.SIGNAL_DISPOSITION_STORED

    waiting = await wait_for_run(stub, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
    assert step(waiting, "approval").state == conductor_pb2.STEP_STATE_WAITING
    assert list(step(waiting, "approval").awaited_keys) == ["approval"]

    details = await refused(
        stub.Signal(
            conductor_pb2.SignalRequest(run_id=run.id, key="approval", payload=struct({"decision": "APPROVED"}))
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert details.reason == "MISSING_ROLE"

    resumed = await reviewer.Signal(
        conductor_pb2.SignalRequest(run_id=run.id, key="approval", payload=struct({"decision": "APPROVED"}))
    )
    assert resumed.disposition == conductor_pb2.SIGNAL_DISPOSITION_RESUMED
    duplicate = await reviewer.Signal(
        conductor_pb2.SignalRequest(run_id=run.id, key="approval", payload=struct({"decision": "APPROVED"}))
    )
    assert duplicate.disposition == conductor_pb2.SIGNAL_DISPOSITION_DUPLICATE
    conflict = await refused(
        reviewer.Signal(
            conductor_pb2.SignalRequest(run_id=run.id, key="approval", payload=struct({"decision": "REJECTED"}))
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert conflict.reason == "SIGNAL_CONFLICT"

    finished = await wait_for_run(stub, run.id)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    assert json_format.MessageToDict(finished.outputs) == {"decision": "APPROVED", "legal": True}
    assert step(finished, "publish").state == conductor_pb2.STEP_STATE_SUCCEEDED

    types = [event.type for event in await events_of(stub, run.id)]
    assert conductor_pb2.RUN_EVENT_TYPE_STEP_WAITING in types and conductor_pb2.RUN_EVENT_TYPE_STEP_RESUMED in types
    late = await refused(
        reviewer.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="other", payload=struct({}))),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert late.reason == "RUN_FINISHED"


async def test_cancel_stops_a_waiting_run(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    run = await start(stub, "approve", text="flash sale")
    await wait_for_run(stub, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
    cancelled = (await stub.CancelRun(conductor_pb2.CancelRunRequest(run_id=run.id, reason="campaign dropped"))).run
    assert cancelled.state == conductor_pb2.RUN_STATE_CANCELLED
    assert cancelled.error.message == "campaign dropped"
    assert step(cancelled, "approval").state == conductor_pb2.STEP_STATE_CANCELLED
    assert step(cancelled, "draft").state == conductor_pb2.STEP_STATE_SUCCEEDED
    again = (await stub.CancelRun(conductor_pb2.CancelRunRequest(run_id=run.id))).run
    assert again.state == conductor_pb2.RUN_STATE_CANCELLED
    events = await events_of(stub, run.id)
    assert events[-1].type == conductor_pb2.RUN_EVENT_TYPE_RUN_CANCELLED
    assert conductor_pb2.RUN_EVENT_TYPE_STEP_CANCELLED in [event.type for event in events]


async def test_failed_run_is_resumed_from_its_checkpoints(conductor_for, connect, embedding_server, tenant):
    stub = conductor_for(tenant)
    auditor = conductor_for(tenant, roles=("auditor",))
    document = LISTENING_PLAN.replace(
        'request: {name: "${inputs.collection}", description: "reviews of ${inputs.collection}"}',
        "request: {name: \"${inputs.collection + '-typo'}\"}",
    )
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=document))
    failed = await wait_for_run(stub, (await start(stub, "listen", collection="bags", reviews=REVIEWS)).id)
    assert failed.state == conductor_pb2.RUN_STATE_FAILED
    assert step(failed, "collection").state == conductor_pb2.STEP_STATE_SUCCEEDED
    assert step(failed, "ingest").state == conductor_pb2.STEP_STATE_FAILED
    assert step(failed, "ingest").error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert step(failed, "search").state == conductor_pb2.STEP_STATE_CANCELLED
    assert "ingest" in failed.error.message

    # Fix what was missing, then resume: the completed step is not called again.
    embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="bags"))
    resumed = (await stub.StartRun(conductor_pb2.StartRunRequest(plan_name="listen", resume_from_run_id=failed.id))).run
    finished = await wait_for_run(stub, resumed.id)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    assert finished.resumed_from_run_id == failed.id
    ledger = await auditor.ListAudit(conductor_pb2.ListAuditRequest())
    collection_hops = [record for record in ledger.records if record.step_id == "collection"]
    assert len(collection_hops) == 1 and collection_hops[0].run_id == failed.id
    ingest_hops = [record for record in ledger.records if record.step_id == "ingest"]
    assert [record.run_id for record in ingest_hops] == [failed.id, finished.id]

    again = await refused(
        stub.StartRun(conductor_pb2.StartRunRequest(plan_name="listen", resume_from_run_id=finished.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert again.reason == "RUN_NOT_RESUMABLE"


async def test_start_run_is_idempotent_on_its_key(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    key = (("x-matcha-idempotency-key", "campaign-42"),)
    first = await start(stub, "approve", metadata=key, text="once")
    second = await start(stub, "approve", metadata=key, text="once")
    assert first.id == second.id
    runs = await stub.ListRuns(conductor_pb2.ListRunsRequest(plan_name="approve"))
    assert [run.id for run in runs.runs] == [first.id]
    await stub.CancelRun(conductor_pb2.CancelRunRequest(run_id=first.id))


async def test_list_runs_filters_and_pages(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    ids = []
    for index in range(3):
        reply = await stub.StartRun(
            conductor_pb2.StartRunRequest(
                plan_name="approve",
                inputs=struct({"text": f"t{index}"}),
                labels={"campaign": "spring" if index else "fall"},
            )
        )
        ids.append(reply.run.id)
    spring = await stub.ListRuns(conductor_pb2.ListRunsRequest(labels={"campaign": "spring"}))
    assert [run.id for run in spring.runs] == [ids[2], ids[1]]
    page = await stub.ListRuns(conductor_pb2.ListRunsRequest(page_size=2))
    rest = await stub.ListRuns(conductor_pb2.ListRunsRequest(page_size=2, page_token=page.next_page_token))
    assert [run.id for run in [*page.runs, *rest.runs]] == ids[::-1] and not rest.next_page_token
    # The token belongs to the unfiltered listing: under a filter it would skip runs, so it is refused.
    other_listing = stub.ListRuns(
        conductor_pb2.ListRunsRequest(page_size=2, page_token=page.next_page_token, labels={"campaign": "spring"})
    )
    assert "page_token" in (await refused(other_listing)).field_violations
    for run_id in ids:
        await stub.CancelRun(conductor_pb2.CancelRunRequest(run_id=run_id))
    cancelled = await stub.ListRuns(conductor_pb2.ListRunsRequest(states=[conductor_pb2.RUN_STATE_CANCELLED]))
    assert len(cancelled.runs) == 3


async def test_bad_run_requests_are_refused(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=LISTENING_PLAN))
    details = await refused(
        stub.StartRun(
            conductor_pb2.StartRunRequest(plan_name="listen", inputs=struct({"reviews": "not a list", "colour": "red"}))
        )
    )
    assert set(details.field_violations) == {"inputs.collection", "inputs.reviews", "inputs.colour"}
    assert "required" in details.field_violations["inputs.collection"]
    assert "LIST" in details.field_violations["inputs.reviews"]

    missing = await refused(stub.StartRun(conductor_pb2.StartRunRequest(plan_name="nope")), grpc.StatusCode.NOT_FOUND)
    assert missing.reason == "PLAN_NOT_FOUND"
    unknown = await refused(
        stub.GetRun(conductor_pb2.GetRunRequest(run_id="3b6f1d4e-0000-4000-8000-000000000000")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert unknown.reason == "RUN_NOT_FOUND"
    await refused(stub.GetRun(conductor_pb2.GetRunRequest(run_id="not-a-uuid")), grpc.StatusCode.NOT_FOUND)
    assert not (await stub.ListRuns(conductor_pb2.ListRunsRequest())).runs


async def test_plan_purposes_are_enforced(conductor_for, tenant):
    document = WAIT_PLAN.replace("outputs:", "purposes: [campaign]\noutputs:")
    await conductor_for(tenant).RegisterPlan(conductor_pb2.RegisterPlanRequest(document=document))
    listening = conductor_for(tenant, purpose="listening")
    details = await refused(
        listening.StartRun(conductor_pb2.StartRunRequest(plan_name="approve", inputs=struct({"text": "x"}))),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert details.reason == "PURPOSE_NOT_ALLOWED" and details.metadata["purpose"] == "listening"


async def test_runs_are_scoped_to_the_tenant(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    run = await start(stub, "approve", text="private")
    stranger = conductor_for(f"{tenant}-x")
    await refused(stranger.GetRun(conductor_pb2.GetRunRequest(run_id=run.id)), grpc.StatusCode.NOT_FOUND)
    await refused(stranger.CancelRun(conductor_pb2.CancelRunRequest(run_id=run.id)), grpc.StatusCode.NOT_FOUND)
    await refused(
        stranger.Signal(conductor_pb2.SignalRequest(run_id=run.id, key="approval")), grpc.StatusCode.NOT_FOUND
    )
    await stub.CancelRun(conductor_pb2.CancelRunRequest(run_id=run.id))


async def test_run_ids_that_are_not_uuids_are_not_found(conductor_for, tenant):
    stub = conductor_for(tenant)
    for run_id in ("fuzzer", "0", "not-a-uuid"):
        await refused(stub.GetRun(conductor_pb2.GetRunRequest(run_id=run_id)), grpc.StatusCode.NOT_FOUND)
        await refused(stub.CancelRun(conductor_pb2.CancelRunRequest(run_id=run_id)), grpc.StatusCode.NOT_FOUND)
        await refused(
            stub.Signal(conductor_pb2.SignalRequest(run_id=run_id, key="approval")), grpc.StatusCode.NOT_FOUND
        )


async def test_enum_values_the_contract_does_not_define_are_field_violations(conductor_for, tenant):
    """Found by fuzzing through the gateway: JSON clients can send any number for an enum (was INTERNAL)."""
    stub = conductor_for(tenant)
    states = await refused(
        stub.ListRuns(conductor_pb2.ListRunsRequest(states=[conductor_pb2.RUN_STATE_RUNNING, 375735])),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(states.field_violations) == {"states[1]"}
    auditor = conductor_for(tenant, roles=("auditor",))
    decision = await refused(
        auditor.ListAudit(conductor_pb2.ListAuditRequest(decision=99)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert set(decision.field_violations) == {"decision"}


async def test_step_timeouts_are_retried_then_fail_the_run(conductor_for, tenant):
    stub = conductor_for(tenant)
    document = EMBED_ONCE.replace(
        "    output:", "    timeout: 0.001s\n    retry: {max_attempts: 2, initial_backoff: 0.01s}\n    output:"
    )
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=document))
    run = await wait_for_run(stub, (await start(stub, "embed-once")).id)
    assert run.state == conductor_pb2.RUN_STATE_FAILED
    assert step(run, "embed").error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    events = await events_of(stub, run.id)
    retrying = [event for event in events if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_RETRYING]
    assert [event.attempt for event in retrying] == [1]


async def test_a_parked_run_past_its_deadline_fails(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=WAIT_PLAN))
    reply = await stub.StartRun(
        conductor_pb2.StartRunRequest(
            plan_name="approve", inputs=struct({"text": "soon"}), deadline=duration_pb2.Duration(seconds=5)
        )
    )
    run = await wait_for_run(stub, reply.run.id)
    assert run.state == conductor_pb2.RUN_STATE_FAILED
    types = [event.type for event in await events_of(stub, run.id)]
    assert types.index(conductor_pb2.RUN_EVENT_TYPE_STEP_WAITING) < types.index(conductor_pb2.RUN_EVENT_TYPE_RUN_FAILED)
    assert run.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert step(run, "approval").state == conductor_pb2.STEP_STATE_CANCELLED


EMBED_ONCE = """
name: embed-once
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["a hat"]}
    output: "response.dimension"
"""


FAN_OUT_WITH_A_BAD_ITEM = """
name: embed-each
inputs:
  - {name: texts, type: list, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "inputs.texts", concurrency: 2}
    request: {texts: ["${item}"]}
    output: "response.dimension"
"""


async def test_a_refused_fan_out_item_fails_the_step_and_the_run(conductor_for, tenant):
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_WITH_A_BAD_ITEM))
    run = await start(stub, "embed-each", texts=["fine", "   ", "also fine"])
    failed = await wait_for_run(stub, run.id)
    assert failed.state == conductor_pb2.RUN_STATE_FAILED
    assert step(failed, "embed").state == conductor_pb2.STEP_STATE_FAILED
    assert step(failed, "embed").error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


EMBED_TWICE = """
name: embed-twice
steps:
  - id: first
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["a hat"]}
    output: "response.dimension"
  - id: second
    depends_on: [first]
    call: matcha.embedding.v1.EmbeddingService/Embed
    request: {texts: ["a scarf"]}
    retry: {max_attempts: 3, initial_backoff: 0.01s, max_backoff: 0.01s}
    output: "response.dimension"
"""


async def test_a_retry_waits_as_long_as_the_service_asks(
    conductor_settings, embedding_settings, serve, local_encoder, connect, isolated_database, tenant
):
    """A tenant limit answers RESOURCE_EXHAUSTED with RetryInfo (about a second at one call a second): the step's
    own backoff (10 ms) would spend its three attempts at once; the conductor waits what the service asked."""
    limited = embedding_settings(tenant_calls_per_second=1.0, tenant_burst=1)
    async with serve(build_embedding_service(limited, encoder=local_encoder), limited) as embedding:
        settings = conductor_settings(
            database_url=isolated_database, conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{embedding.port}"}
        )
        async with serve(build_conductor_service(settings), settings) as conductor:
            stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
            await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=EMBED_TWICE))
            run = await wait_for_run(stub, (await start(stub, "embed-twice")).id)
            assert run.state == conductor_pb2.RUN_STATE_SUCCEEDED, run.error
            events = await events_of(stub, run.id)
            retrying = [event for event in events if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_RETRYING]
            assert len(retrying) <= 1


FAN_OUT_WITH_A_FAILING_OUTPUT = """
name: embed-each-badly
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "['a hat', 'a scarf']"}
    request: {texts: ["${item}"]}
    output: "response.dimension + '!'"
"""


async def test_an_item_whose_output_expression_fails_fails_the_step(conductor_for, tenant):
    """Found with a shipped plan: the error of one item's output expression escaped as an exception group, and the
    run stayed RUNNING (then was taken over, and hung again) instead of failing."""
    stub = conductor_for(tenant)
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=FAN_OUT_WITH_A_FAILING_OUTPUT))
    run = await wait_for_run(stub, (await start(stub, "embed-each-badly")).id)
    assert run.state == conductor_pb2.RUN_STATE_FAILED
    failed = step(run, "embed")
    assert failed.state == conductor_pb2.STEP_STATE_FAILED
    assert failed.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
