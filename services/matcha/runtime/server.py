"""gRPC server bootstrap shared by every service.

Health answers NOT_SERVING from the moment the port is bound until the service's
start hook (model loaded, database migrated) has finished, and again during a
graceful shutdown, so Kubernetes probes and the launcher see the truth. Every server
also answers `matcha.runtime.v1.RuntimeService/Describe` with the clearance it enforces:
callers learn what it may receive from the service itself.
"""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime.access import AccessLedger
from matcha.runtime.auth import TokenVerifier
from matcha.runtime.channels import MESSAGE_SIZE_OPTIONS, PLAINTEXT, Transport
from matcha.runtime.governance import Clearance
from matcha.runtime.interceptors import GovernanceInterceptor
from matcha.runtime.limits import TenantLimiter, TenantLimits
from matcha.runtime.messages import data_class_message
from matcha.runtime.tracing import server_tracing_interceptor
from matcha.runtime.v1 import runtime_pb2, runtime_pb2_grpc

logger = logging.getLogger(__name__)

RUNTIME_SERVICE = runtime_pb2.DESCRIPTOR.services_by_name["RuntimeService"].full_name


async def _nothing() -> None:
    return None


@dataclass
class ServiceDefinition:
    """What one capability contributes to its server process."""

    name: str
    # Full gRPC service names, for health and reflection.
    service_names: list[str]
    register: Callable[[grpc.aio.Server], None]
    # Loads models, opens the database; the service is SERVING once it returns.
    on_start: Callable[[], Awaitable[None]] = field(default=_nothing)
    # Releases what on_start acquired, after in-flight calls finished.
    on_stop: Callable[[], Awaitable[None]] = field(default=_nothing)


# Connections are renewed every five minutes (in-flight calls, watch streams included, finish on the old one):
# clients then resolve the headless Service's name again and spread their calls over pods added since.
SERVER_OPTIONS = [
    *MESSAGE_SIZE_OPTIONS,
    ("grpc.max_connection_age_ms", 5 * 60 * 1000),
    ("grpc.max_connection_age_grace_ms", 24 * 3600 * 1000),
]


class MatchaServer:
    def __init__(
        self,
        definition: ServiceDefinition,
        *,
        listen_address: str,
        verifier: TokenVerifier,
        clearance: Clearance,
        tracer_provider: TracerProvider,
        access_ledger: AccessLedger | None,
        grace_period_seconds: float = 10.0,
        drain_seconds: float = 0.0,
        tenant_limits: TenantLimits | None = None,
        maximum_concurrent_rpcs: int | None = None,
        transport: Transport = PLAINTEXT,
        health_listen_address: str | None = None,
    ) -> None:
        """`access_ledger` None serves without recording accesses: only for measuring what recording costs.
        `transport` with a certificate serves TLS (mutual TLS when it also names a certificate authority);
        `health_listen_address` serves the health service alone in plaintext, for probes that cannot speak TLS."""
        self.definition = definition
        self._listen_address = listen_address
        self._credentials = transport.server_credentials()
        self._health_address = health_listen_address
        self._health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        self._grace = grace_period_seconds
        self._drain = drain_seconds
        self._access_ledger = access_ledger
        self._clearance = clearance
        self._interceptors = [
            server_tracing_interceptor(tracer_provider),
            GovernanceInterceptor(
                verifier, clearance, access_ledger, TenantLimiter(tenant_limits) if tenant_limits else None
            ),
        ]
        self._maximum_concurrent_rpcs = maximum_concurrent_rpcs
        # Both bind to the running event loop, so they are created in start().
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self.port: int | None = None

    async def start(self) -> int:
        """Binds, serves NOT_SERVING while starting, then SERVING; returns the bound port."""
        # Above `maximum_concurrent_rpcs` calls in progress (every tenant together), gRPC answers RESOURCE_EXHAUSTED.
        self._server = grpc.aio.server(
            interceptors=self._interceptors,
            options=SERVER_OPTIONS,
            maximum_concurrent_rpcs=self._maximum_concurrent_rpcs,
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        runtime_pb2_grpc.add_RuntimeServiceServicer_to_server(
            RuntimeServicer(describe(self.definition, self._clearance)), self._server
        )
        self.definition.register(self._server)
        _enable_reflection(
            [
                *self.definition.service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                RUNTIME_SERVICE,
            ],
            self._server,
        )
        await self._set_status(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._credentials is None:
            self.port = self._server.add_insecure_port(self._listen_address)
        else:
            self.port = self._server.add_secure_port(self._listen_address, self._credentials)
        await self._server.start()
        if self._health_address:
            self._health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, self._health_server)
            self.health_port = self._health_server.add_insecure_port(self._health_address)
            await self._health_server.start()
        logger.info(
            "listening",
            extra={"address": self._listen_address, "port": self.port, "tls": self._credentials is not None},
        )
        try:
            if self._access_ledger is not None:
                await self._access_ledger.open()
            await self.definition.on_start()
        except BaseException:
            await self._server.stop(0)
            if self._health_server is not None:
                await self._health_server.stop(0)
            if self._access_ledger is not None:
                await self._access_ledger.close()
            raise
        await self._set_status(health_pb2.HealthCheckResponse.SERVING)
        logger.info("serving", extra={"services": self.definition.service_names})
        return self.port

    async def stop(self) -> None:
        """NOT_SERVING first, for `drain_seconds`, so probes and balancers steer new calls away while the
        port still answers; then no new calls, and in-flight ones get the grace period to finish."""
        assert self._server is not None and self._health is not None, "stop() follows start()"
        await self._health.enter_graceful_shutdown()
        await asyncio.sleep(self._drain)
        await self._server.stop(self._grace)
        if self._health_server is not None:
            await self._health_server.stop(0)
        await self.definition.on_stop()
        if self._access_ledger is not None:
            await self._access_ledger.close()
        logger.info("stopped")

    async def _set_status(self, status: int) -> None:
        assert self._health is not None, "created by start()"
        for name in ("", *self.definition.service_names):
            await self._health.set(name, status)


def describe(definition: ServiceDefinition, clearance: Clearance) -> runtime_pb2.DescribeResponse:
    """What the server says about itself: the same clearance its interceptor enforces, so that what callers are told
    and what the server accepts cannot disagree."""
    return runtime_pb2.DescribeResponse(
        name=definition.name,
        services=definition.service_names,
        clearance=data_class_message(clearance.max_data_class),
        inside_trust_boundary=clearance.inside_trust_boundary,
    )


class RuntimeServicer(runtime_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, description: runtime_pb2.DescribeResponse) -> None:
        self._description = description

    async def Describe(
        self, request: runtime_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> runtime_pb2.DescribeResponse:
        return self._description


# Newer clients (grpcurl, Postman) ask `grpc.reflection.v1` first; grpcio-reflection serves only `v1alpha`, whose
# messages are the same on the wire, so one servicer answers both names.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _enable_reflection(service_names: list[str], server: grpc.aio.Server) -> None:
    servicer = reflection_aio.ReflectionServicer([*service_names, reflection.SERVICE_NAME, REFLECTION_V1])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    v1 = grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": info})
    server.add_generic_rpc_handlers((v1,))


async def serve_until_signalled(server: MatchaServer) -> None:
    """Runs the server until SIGTERM or SIGINT, then drains it within the grace period."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    starting = asyncio.create_task(server.start())
    stopping = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        starting.result()  # a failed start ends the process with its error
        await stopping
    else:
        starting.cancel()
    await server.stop()
