"""One gRPC channel per backend address, generic calls by method path, and aggregated health."""

import asyncio
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.gateway.catalog import Route
from matcha.runtime.client import CLIENT_CHANNEL_OPTIONS
from matcha.runtime.tracing import client_tracing_interceptors

SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVING)


class Backends:
    def __init__(self, addresses: Mapping[str, str], tracer_provider: TracerProvider) -> None:
        self.addresses = dict(addresses)
        self._tracer_provider = tracer_provider
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[str, object] = {}

    async def open(self) -> None:
        """Channels bind to the running event loop, so they are created here rather than in __init__."""
        interceptors = client_tracing_interceptors(self._tracer_provider)
        for address in sorted(set(self.addresses.values())):
            self._channels[address] = grpc.aio.insecure_channel(
                address, interceptors=interceptors, options=CLIENT_CHANNEL_OPTIONS
            )

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))
        self._channels.clear()
        self._callables.clear()

    def is_configured(self, service_name: str) -> bool:
        return service_name in self.addresses

    def callable_for(self, route: Route):
        """The multi-callable of the route's RPC, in the streaming shape of its method."""
        found = self._callables.get(route.grpc_path)
        if found is None:
            channel = self._channels[self.addresses[route.service_name]]
            shape = {
                (False, False): channel.unary_unary,
                (False, True): channel.unary_stream,
                (True, False): channel.stream_unary,
                (True, True): channel.stream_stream,
            }[(route.streams_requests, route.streams_responses)]
            found = shape(
                route.grpc_path,
                request_serializer=route.request_class.SerializeToString,
                response_deserializer=route.response_class.FromString,
            )
            self._callables[route.grpc_path] = found
        return found

    async def _health_of(self, service_name: str, wait_seconds: float) -> str:
        stub = health_pb2_grpc.HealthStub(self._channels[self.addresses[service_name]])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service_name), timeout=wait_seconds)
        except grpc.aio.AioRpcError as error:
            return "UNREACHABLE" if error.code() == grpc.StatusCode.UNAVAILABLE else error.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def health(self, wait_seconds: float) -> dict[str, str]:
        """The gRPC health of every configured service, checked concurrently."""
        names = sorted(self.addresses)
        statuses = await asyncio.gather(*(self._health_of(name, wait_seconds) for name in names))
        return dict(zip(names, statuses, strict=True))
