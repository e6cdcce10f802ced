"""A plan run driven over HTTP: register, start, follow its events as Server-Sent Events, one trace throughout.

Real conductor, real embedding service, real PostgreSQL, the gateway in front of the conductor.
"""

import json

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2
from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.embedding.app import build_embedding_service

CONDUCTOR_SERVICE = conductor_pb2.DESCRIPTOR.services_by_name["ConductorService"].full_name
CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PLAN = """
name: tagline-check
inputs:
  - {name: lines, type: list, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "inputs.lines", concurrency: 2}
    request: {texts: ["${item}"]}
    output: "response.dimension"
outputs:
  dimensions: "steps.embed.output"
"""


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


async def test_plan_run_over_http_with_sse_progress_and_one_trace(
    embedding_settings, isolated_database, state_dir, serve, local_encoder, start_gateway, issuer, tenant
):
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    embedding = embedding_settings()
    token = issuer.mint(subject="analyst-1", tenant=tenant, roles=["analyst", "author", "operator"])
    headers = {"authorization": f"Bearer {token}", "x-matcha-purpose": "campaign", "x-matcha-data-class": "INTERNAL"}
    async with serve(
        build_embedding_service(embedding, encoder=local_encoder), embedding, tracer_provider
    ) as capability:
        # A database of its own: no other conductor of the session may claim (and trace) this run.
        conductor = ConductorSettings(
            database_url=isolated_database,
            state_dir=state_dir,
            listen_address="127.0.0.1:0",
            conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{capability.port}"},
            conductor_poll_seconds=0.5,
        )
        async with (
            serve(build_conductor_service(conductor, tracer_provider), conductor, tracer_provider) as server,
            start_gateway({CONDUCTOR_SERVICE: f"127.0.0.1:{server.port}"}, tracer_provider) as base_url,
            httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http,
        ):
            registered = await http.post("/v1/plans", json={"document": PLAN})
            assert registered.status_code == 200, registered.text
            started = await http.post(
                "/v1/runs",
                json={"planName": "tagline-check", "inputs": {"lines": ["Matcha, slowly.", "Green, on purpose."]}},
                headers={"traceparent": f"00-{CALLER_TRACE_ID}-b7ad6b7169203331-01"},
            )
            assert started.status_code == 200, started.text
            run_id = started.json()["run"]["id"]
            watched = await http.get(f"/v1/runs/{run_id}:watch")
            run = await http.get(f"/v1/runs/{run_id}", params={"view": "RUN_VIEW_FULL"})

    assert watched.status_code == 200 and watched.headers["content-type"].startswith("text/event-stream")
    events = [data["event"] for kind, data in _sse_events(watched.text) if kind == "message"]
    assert [int(event["sequence"]) for event in events] == list(range(1, len(events) + 1))  # int64 as strings
    assert events[0]["type"] == "RUN_EVENT_TYPE_RUN_STARTED"
    assert events[-1]["type"] == "RUN_EVENT_TYPE_RUN_SUCCEEDED"
    assert run.json()["run"]["outputs"] == {"dimensions": [384, 384]}

    spans = exporter.get_finished_spans()
    start_span = next(span for span in spans if span.name == "POST /v1/runs")
    assert format(start_span.context.trace_id, "032x") == CALLER_TRACE_ID
    traced = {span.name for span in spans if format(span.context.trace_id, "032x") == CALLER_TRACE_ID}
    assert "/matcha.conductor.v1.ConductorService/StartRun" in traced
    # One trace from the HTTP request to the run's hops, whichever conductor executes the run.
    assert run.json()["run"]["traceId"] == CALLER_TRACE_ID
    assert {"step embed", f"/{EMBEDDING_SERVICE}/Embed"} <= traced
