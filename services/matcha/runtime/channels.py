"""How a process reaches the other services of the mesh: one channel layer.

- `Transport`: plaintext, or TLS from files (a certificate authority to verify peers with, and this process's
  certificate and key, which make the server speak TLS and the client present itself: mutual TLS).
- `dial`: a channel with the mesh's options (message sizes, prompt reconnection, and in a cluster call-level
  round-robin over every pod a headless Service's name resolves to, so a client replica does not stick to one).
- `ChannelPool`: one channel per address, traced; generic callables by method path in the four call shapes,
  cached; gRPC health checks.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime.tracing import client_tracing_interceptors

# Batches of documents or embeddings exceed gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MESSAGE_SIZE_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
# Callers own the retry policy (a plan's retry, an outbox's backoff); the transport reconnects promptly once a
# service is back instead of sitting out gRPC's default reconnect backoff of up to two minutes.
CLIENT_CHANNEL_OPTIONS = [
    *MESSAGE_SIZE_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
# `round_robin` spreads calls over every address a name resolves to (a headless Service's ready pods);
# `pick_first` keeps one connection, which suits one address (the local stack).
LOAD_BALANCING_POLICIES = ("pick_first", "round_robin")


class TransportError(ValueError):
    """TLS files that are missing, unreadable or incomplete."""


@dataclass(frozen=True)
class Transport:
    """Plaintext when empty. With `certificate_authority`, clients speak TLS and verify servers by it; with a
    `certificate` and its `private_key`, servers speak TLS and clients present the certificate; with all
    three, servers also require and verify clients' certificates (mutual TLS)."""

    certificate_authority: bytes | None = None
    certificate: bytes | None = None
    private_key: bytes | None = None
    load_balancing: str = "pick_first"

    @classmethod
    def from_files(
        cls, *, ca: Path | None, certificate: Path | None, key: Path | None, load_balancing: str = "pick_first"
    ) -> "Transport":
        if (certificate is None) != (key is None):
            raise TransportError("a TLS certificate needs its private key, and a key its certificate")

        def read(path: Path | None, what: str) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as error:
                raise TransportError(f"TLS {what} {path}: {error.strerror}") from None

        return cls(
            read(ca, "certificate authority"),
            read(certificate, "certificate"),
            read(key, "private key"),
            load_balancing,
        )

    @property
    def is_tls(self) -> bool:
        return self.certificate_authority is not None or self.certificate is not None

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        if not self.is_tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.certificate_authority,
            private_key=self.private_key,
            certificate_chain=self.certificate,
        )

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if self.certificate is None or self.private_key is None:
            return None
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate)],
            root_certificates=self.certificate_authority,
            require_client_auth=self.certificate_authority is not None,
        )


PLAINTEXT = Transport()


def dial(
    target: str,
    *,
    transport: Transport = PLAINTEXT,
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
    options: Sequence[tuple[str, object]] = CLIENT_CHANNEL_OPTIONS,
) -> grpc.aio.Channel:
    options = [*options, ("grpc.lb_policy_name", transport.load_balancing)]
    credentials = transport.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target, interceptors=interceptors, options=options)
    return grpc.aio.secure_channel(target, credentials, interceptors=interceptors, options=options)


Serializer = Callable[[Message], bytes]
Deserializer = Callable[[bytes], Message]


class ChannelPool:
    """Channels bind to the running event loop: they are opened on first use, inside it."""

    def __init__(
        self,
        *,
        transport: Transport = PLAINTEXT,
        tracer_provider: TracerProvider | None = None,
        options: Sequence[tuple[str, object]] = (),
    ) -> None:
        self._transport = transport
        self._tracer_provider = tracer_provider
        self._options = [*CLIENT_CHANNEL_OPTIONS, *options]
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[tuple[str, str], object] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        found = self._channels.get(address)
        if found is None:
            interceptors = client_tracing_interceptors(self._tracer_provider) if self._tracer_provider else None
            found = self._channels[address] = dial(
                address, transport=self._transport, interceptors=interceptors, options=self._options
            )
        return found

    def method(
        self,
        address: str,
        path: str,
        request_serializer: Serializer,
        response_deserializer: Deserializer,
        *,
        streams_requests: bool = False,
        streams_responses: bool = False,
    ):
        """The multi-callable of `path` (`/package.Service/Method`) in its streaming shape."""
        key = (address, path)
        found = self._callables.get(key)
        if found is None:
            channel = self.channel(address)
            shape = {
                (False, False): channel.unary_unary,
                (False, True): channel.unary_stream,
                (True, False): channel.stream_unary,
                (True, True): channel.stream_stream,
            }[(streams_requests, streams_responses)]
            found = self._callables[key] = shape(
                path, request_serializer=request_serializer, response_deserializer=response_deserializer
            )
        return found

    async def health(self, address: str, service: str, timeout_seconds: float) -> str:
        """The service's gRPC health status name, `UNREACHABLE` when nothing answers, else the error code."""
        stub = health_pb2_grpc.HealthStub(self.channel(address))
        try:
            # The stubs' HealthStub declares no methods.
            reply = await stub.Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_seconds
            )
        except grpc.aio.AioRpcError as error:
            return "UNREACHABLE" if error.code() == grpc.StatusCode.UNAVAILABLE else error.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        self._callables.clear()
        for channel in channels:
            await channel.close()
