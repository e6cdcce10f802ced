"""The gateway's backends: generic calls by method path and aggregated health, over the runtime's channel pool."""

import asyncio
from collections.abc import Mapping

from grpc_health.v1 import health_pb2
from opentelemetry.sdk.trace import TracerProvider

from matcha.gateway.catalog import Route
from matcha.runtime.channels import PLAINTEXT, ChannelPool, Transport

SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVING)


class Backends:
    def __init__(
        self, addresses: Mapping[str, str], tracer_provider: TracerProvider, transport: Transport = PLAINTEXT
    ) -> None:
        self.addresses = dict(addresses)
        self._pool = ChannelPool(transport=transport, tracer_provider=tracer_provider)

    async def open(self) -> None:
        """Channels bind to the running event loop: opened here, in the application's lifespan."""
        for address in sorted(set(self.addresses.values())):
            self._pool.channel(address)

    async def close(self) -> None:
        await self._pool.close()

    def is_configured(self, service_name: str) -> bool:
        return service_name in self.addresses

    def callable_for(self, route: Route):
        """The multi-callable of the route's RPC, in the streaming shape of its method."""
        return self._pool.method(
            self.addresses[route.service_name],
            route.grpc_path,
            route.request_class.SerializeToString,
            route.response_class.FromString,
            streams_requests=route.streams_requests,
            streams_responses=route.streams_responses,
        )

    async def health(self, wait_seconds: float) -> dict[str, str]:
        """The gRPC health of every configured service, checked concurrently."""
        names = sorted(self.addresses)
        statuses = await asyncio.gather(
            *(self._pool.health(self.addresses[name], name, wait_seconds) for name in names)
        )
        return dict(zip(names, statuses, strict=True))
