"""One W3C trace from the HTTP client through the gateway to the service."""

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.embedding.app import build_embedding_service

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


async def test_traceparent_joins_http_gateway_and_service(
    embedding_settings, serve, local_encoder, start_gateway, issuer, tenant
):
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = embedding_settings()
    token = issuer.mint(subject="u", tenant=tenant, roles=["analyst", "author", "operator"])
    headers = {
        "authorization": f"Bearer {token}",
        "x-matcha-purpose": "listening",
        "x-matcha-data-class": "INTERNAL",
        "traceparent": f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01",
    }
    async with (
        serve(build_embedding_service(settings, encoder=local_encoder), settings, tracer_provider) as server,
        start_gateway({EMBEDDING_SERVICE: f"127.0.0.1:{server.port}"}, tracer_provider) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers) as client,
    ):
        reply = await client.post("/v1/embeddings:embed", json={"texts": ["matcha latte"]})
        assert reply.status_code == 200
        await client.get("/healthz")

    spans = exporter.get_finished_spans()
    (http_span,) = [span for span in spans if span.name == "POST /v1/embeddings:embed"]
    (client_span,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    (grpc_span,) = [span for span in spans if span.kind == SpanKind.SERVER and span.name.startswith("/matcha")]
    trace_ids = {format(span.context.trace_id, "032x") for span in (http_span, client_span, grpc_span)}
    assert trace_ids == {CALLER_TRACE_ID}
    assert format(http_span.parent.span_id, "016x") == CALLER_SPAN_ID
    assert client_span.parent.span_id == http_span.context.span_id
    assert grpc_span.parent.span_id == client_span.context.span_id
    assert client_span.name == grpc_span.name == "/matcha.embedding.v1.EmbeddingService/Embed"
    assert grpc_span.attributes["matcha.tenant"] == tenant
    assert grpc_span.attributes["matcha.purpose"] == "listening"
    assert http_span.kind == SpanKind.SERVER
    assert http_span.attributes["http.status_code"] == 200
    assert http_span.attributes["http.route"] == "/v1/embeddings:embed"
    assert not any("healthz" in span.name for span in spans), "probes are not traced"
