"""Helpers every area's tests share: refusals decoded, Structs built."""

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
