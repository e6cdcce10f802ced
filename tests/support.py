"""Helpers every area's tests share: refusals decoded, Structs built, free ports."""

import socket

import grpc
import pytest
from google.protobuf import struct_pb2

from matcha.runtime.client import ErrorDetails, error_details


async def refused(call, code=grpc.StatusCode.INVALID_ARGUMENT) -> ErrorDetails:
    """Awaits a call that must be refused with `code`, without a stack trace, and decodes its details."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    assert "Traceback" not in (caught.value.details() or "")
    return error_details(caught.value)


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def free_port() -> int:
    """A port nothing listens on right now (for a server started later, or for a dead endpoint)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
