"""Dynamic gRPC calls to capability services, built from their descriptors.

The runtime's channel pool: one channel per endpoint (traced, so the callee's spans join the
run's trace) and one generic unary-unary callable per method, serialising the message classes
made from the descriptors. No hand-written client per method.
"""

from collections.abc import Sequence

import grpc
from google.protobuf.message import Message
from opentelemetry.sdk.trace import TracerProvider

from matcha.conductor.catalog import MethodInfo
from matcha.runtime.channels import PLAINTEXT, ChannelPool, Transport


class CapabilityNotConfigured(Exception):
    """No endpoint is configured for the method's service."""


class DynamicInvoker:
    def __init__(
        self, endpoints: dict[str, str], tracer_provider: TracerProvider | None, transport: Transport = PLAINTEXT
    ) -> None:
        self._endpoints = dict(endpoints)
        self._pool = ChannelPool(transport=transport, tracer_provider=tracer_provider)

    def _callable(self, method: MethodInfo) -> grpc.aio.UnaryUnaryMultiCallable:
        endpoint = self._endpoints.get(method.service)
        if endpoint is None:
            raise CapabilityNotConfigured(method.service)
        return self._pool.method(
            endpoint, method.path, method.request_class().SerializeToString, method.response_class().FromString
        )

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

    def stream(
        self, method: MethodInfo, request: Message, *, metadata: Sequence[tuple[str, str]]
    ) -> grpc.aio.UnaryStreamCall:
        """A server-streaming call (a capability's event stream), read until the caller cancels it."""
        endpoint = self._endpoints.get(method.service)
        if endpoint is None:
            raise CapabilityNotConfigured(method.service)
        callable_ = self._pool.method(
            endpoint,
            method.path,
            method.request_class().SerializeToString,
            method.response_class().FromString,
            streams_responses=True,
        )
        return callable_(request, metadata=tuple(metadata))

    async def health(self, service: str, timeout_seconds: float) -> str:
        """The gRPC health status name of the service at its endpoint."""
        endpoint = self._endpoints.get(service)
        if endpoint is None:
            raise CapabilityNotConfigured(service)
        return await self._pool.health(endpoint, service, timeout_seconds)

    async def close(self) -> None:
        await self._pool.close()
