"""Client channels that carry the governance context and trace context on every call."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime import governance as gov
from matcha.runtime.channels import PLAINTEXT, Transport, dial
from matcha.runtime.tracing import client_tracing_interceptors


class MetadataInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds fixed metadata (token, purpose, data class) to every call of a channel."""

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def _with_metadata(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        existing = tuple(details.metadata or ())
        present = {key for key, _ in existing}
        merged = existing + tuple(item for item in self._metadata if item[0] not in present)
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*merged),
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._with_metadata(client_call_details), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._with_metadata(client_call_details), request)

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(self._with_metadata(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(self._with_metadata(client_call_details), request_iterator)


class _UnaryStreamMetadata(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, adder: MetadataInterceptor) -> None:
        self._adder = adder

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await self._adder.intercept_unary_stream(continuation, client_call_details, request)


class _StreamUnaryMetadata(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, adder: MetadataInterceptor) -> None:
        self._adder = adder

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await self._adder.intercept_stream_unary(continuation, client_call_details, request_iterator)


class _StreamStreamMetadata(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, adder: MetadataInterceptor) -> None:
        self._adder = adder

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await self._adder.intercept_stream_stream(continuation, client_call_details, request_iterator)


def metadata_interceptors(metadata: Sequence[tuple[str, str]]) -> list[grpc.aio.ClientInterceptor]:
    """One interceptor per call shape: a grpc.aio channel files each interceptor under the first
    shape it implements only, so a single four-shape object would never see streaming calls."""
    adder = MetadataInterceptor(metadata)
    return [adder, _UnaryStreamMetadata(adder), _StreamUnaryMetadata(adder), _StreamStreamMetadata(adder)]


def governance_metadata(token: str, *, purpose: str, data_class: gov.DataClass) -> list[tuple[str, str]]:
    return gov.outgoing_metadata(token, purpose=purpose, data_class=data_class)


def open_channel(
    target: str,
    *,
    token: str,
    purpose: str = gov.DEFAULT_PURPOSE,
    data_class: gov.DataClass = gov.DataClass.INTERNAL,
    tracer_provider: TracerProvider | None = None,
    transport: Transport = PLAINTEXT,
) -> grpc.aio.Channel:
    """A channel that sends one principal's governance headers on every call."""
    interceptors: list[grpc.aio.ClientInterceptor] = metadata_interceptors(
        governance_metadata(token, purpose=purpose, data_class=data_class)
    )
    if tracer_provider is not None:
        interceptors.extend(client_tracing_interceptors(tracer_provider))
    return dial(target, transport=transport, interceptors=interceptors)


@dataclass(frozen=True)
class ErrorDetails:
    """The `google.rpc` details of a failed call, decoded for clients and tests."""

    code: grpc.StatusCode
    message: str
    field_violations: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    retry_after_seconds: float | None = None


def error_details(error: grpc.RpcError) -> ErrorDetails:
    violations: dict[str, str] = {}
    reason, metadata, retry_after = "", {}, None
    try:
        # Any failed call is also a `grpc.Call` (code, details, trailing metadata), though RpcError's stub is bare.
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details that contradict the call's own status: not ours, ignored
        status = None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.update({v.field: v.description for v in bad_request.field_violations})
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return ErrorDetails(error.code(), error.details() or "", violations, reason, metadata, retry_after)
