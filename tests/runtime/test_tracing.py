"""Client and server spans share one W3C trace; spans carry governance attributes, not content."""

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import DataClass

SECRET_TEXT = "Alice Martin wants a refund for order 4242"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_one_trace_spans_client_and_server(
    embedding_settings, serve, local_encoder, connect, tracer_provider, exporter, tenant
):
    settings = embedding_settings()
    definition = build_embedding_service(settings, encoder=local_encoder)
    async with serve(definition, settings, tracer_provider) as server:
        channel = connect(
            server, tenant, purpose="listening", data_class=DataClass.CONFIDENTIAL, tracer_provider=tracer_provider
        )
        await embedding_pb2_grpc.EmbeddingServiceStub(channel).Embed(embedding_pb2.EmbedRequest(texts=[SECRET_TEXT]))
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())

    spans = exporter.get_finished_spans()
    (client,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    (server_span,) = [span for span in spans if span.kind == SpanKind.SERVER]
    assert client.name == server_span.name == "/matcha.embedding.v1.EmbeddingService/Embed"
    assert server_span.context.trace_id == client.context.trace_id
    assert server_span.parent.span_id == client.context.span_id
    assert server_span.attributes["matcha.tenant"] == tenant
    assert server_span.attributes["matcha.purpose"] == "listening"
    assert server_span.attributes["matcha.data_class"] == "CONFIDENTIAL"
    recorded = [str(value) for span in spans for value in span.attributes.values()]
    assert not any("Alice" in value for value in recorded), "span attributes must never carry content"
    assert not any("Health" in span.name for span in spans), "health checks are not traced"
