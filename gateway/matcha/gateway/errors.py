"""gRPC statuses as HTTP responses: the matching HTTP status, and `google.rpc.Status` as JSON.

The mapping is the one of google/rpc/code.proto (as grpc-gateway and Envoy use it).
"""

import json

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.responses import Response

from matcha.runtime.errors import ERROR_DOMAIN, MatchaError
from matcha.runtime.interceptors import status_from_error

HTTP_STATUS_OF_CODE = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_CODE_OF_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_json(status: status_pb2.Status) -> dict:
    # Every field is printed, so clients can rely on `code`, `message` and `details` being present.
    return json_format.MessageToDict(status, always_print_fields_with_no_presence=True)


def status_response(status: status_pb2.Status, http_status: int | None = None, headers=None) -> Response:
    code = _CODE_OF_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return Response(
        json.dumps(status_json(status)),
        status_code=http_status or HTTP_STATUS_OF_CODE[code],
        headers=headers,
        media_type="application/json",
    )


def error_response(error: MatchaError, http_status: int | None = None, headers=None) -> Response:
    return status_response(status_from_error(error), http_status, headers)


def status_of_rpc_error(error: grpc.aio.AioRpcError, service_name: str) -> status_pb2.Status:
    """The service's own `google.rpc.Status` when it sent one; otherwise a status that leaks no address."""
    try:
        # AioRpcError has the code, details and trailing metadata from_call reads; its stub is no `grpc.Call`.
        sent = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details contradicting the call's status: not the service's own
        sent = None
    if sent is not None:
        return sent
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        # A transport failure: its text names the backend's address, which clients have no business knowing.
        info = error_details_pb2.ErrorInfo(
            reason="SERVICE_UNAVAILABLE", domain=ERROR_DOMAIN, metadata={"service": service_name}
        )
        status = status_pb2.Status(code=code.value[0], message=f"{service_name} is unavailable")
        status.details.add().Pack(info)
        return status
    return status_pb2.Status(code=code.value[0], message=error.details() or code.name)


def http_status_of(status: status_pb2.Status) -> int:
    return HTTP_STATUS_OF_CODE[_CODE_OF_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)]
