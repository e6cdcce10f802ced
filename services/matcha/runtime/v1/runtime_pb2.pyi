from matcha.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("name", "services", "clearance", "inside_trust_boundary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    CLEARANCE_FIELD_NUMBER: _ClassVar[int]
    INSIDE_TRUST_BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    services: _containers.RepeatedScalarFieldContainer[str]
    clearance: _common_pb2.DataClass
    inside_trust_boundary: bool
    def __init__(self, name: _Optional[str] = ..., services: _Optional[_Iterable[str]] = ..., clearance: _Optional[_Union[_common_pb2.DataClass, str]] = ..., inside_trust_boundary: _Optional[bool] = ...) -> None: ...
