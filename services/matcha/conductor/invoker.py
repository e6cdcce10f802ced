"""Dynamic gRPC calls to capability services, built from their descriptors.

One channel per endpoint (with the tracing client interceptors, so the callee's spans
join the run's trace); one generic unary-unary callable per method, serialising the
message classes made from the descriptors. No hand-written client per method.
"""

from collections.abc import Sequence

import grpc
from google.protobuf.message import Message
from opentelemetry.sdk.trace import TracerProvider

from matcha.conductor.catalog import MethodInfo
from matcha.runtime.client import CLIENT_CHANNEL_OPTIONS
from matcha.runtime.tracing import client_tracing_interceptors


class CapabilityNotConfigured(Exception):
    """No endpoint is configured for the method's service."""


class DynamicInvoker:
    def __init__(self, endpoints: dict[str, str], tracer_provider: TracerProvider | None) -> None:
        self._endpoints = dict(endpoints)
        self._tracer_provider = tracer_provider
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}

    def _channel(self, service: str) -> grpc.aio.Channel:
        endpoint = self._endpoints.get(service)
        if endpoint is None:
            raise CapabilityNotConfigured(service)
        if endpoint not in self._channels:
            interceptors = client_tracing_interceptors(self._tracer_provider) if self._tracer_provider else None
            self._channels[endpoint] = grpc.aio.insecure_channel(
                endpoint, interceptors=interceptors, options=CLIENT_CHANNEL_OPTIONS
            )
        return self._channels[endpoint]

    def _callable(self, method: MethodInfo) -> grpc.aio.UnaryUnaryMultiCallable:
        if method.full_name not in self._callables:
            self._callables[method.full_name] = self._channel(method.service).unary_unary(
                method.path,
                request_serializer=method.request_class().SerializeToString,
                response_deserializer=method.response_class().FromString,
            )
        return self._callables[method.full_name]

    async def call(
        self, method: MethodInfo, request: Message, *, metadata: Sequence[tuple[str, str]], deadline_seconds: float
    ) -> Message:
        reply, _ = await self.call_with_trailers(method, request, metadata=metadata, deadline_seconds=deadline_seconds)
        return reply

    async def call_with_trailers(
        self, method: MethodInfo, request: Message, *, metadata: Sequence[tuple[str, str]], deadline_seconds: float
    ) -> tuple[Message, dict[str, str]]:
        """The reply and the callee's trailing metadata (the derived class of what it returned, for one)."""
        call = self._callable(method)(request, metadata=tuple(metadata), timeout=deadline_seconds)
        reply = await call
        trailers = await call.trailing_metadata()
        return reply, {key: value for key, value in trailers or () if isinstance(value, str)}

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._callables.clear()
