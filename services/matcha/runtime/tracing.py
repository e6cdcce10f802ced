"""OpenTelemetry wiring: one tracer provider per process, W3C propagation on every hop.

Configured by the standard variables: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER, and OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/gRPC export when set).
Health checks are not traced; spans carry governance attributes, never content.
"""

import os

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import health_check, negate
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

TENANT_ATTRIBUTE = "matcha.tenant"
PURPOSE_ATTRIBUTE = "matcha.purpose"
DATA_CLASS_ATTRIBUTE = "matcha.data_class"
SUBJECT_ATTRIBUTE = "enduser.id"


def create_tracer_provider(service: str) -> TracerProvider:
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"matcha-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        # Imported only when used: the exporter pulls in a gRPC client of its own.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def server_tracing_interceptor(provider: TracerProvider):
    return aio_server_interceptor(tracer_provider=provider, filter_=negate(health_check()))


def client_tracing_interceptors(provider: TracerProvider) -> list[grpc.aio.ClientInterceptor]:
    return aio_client_interceptors(tracer_provider=provider, filter_=negate(health_check()))
