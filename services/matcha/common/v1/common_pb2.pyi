import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_CLASS_UNSPECIFIED: _ClassVar[DataClass]
    DATA_CLASS_PUBLIC: _ClassVar[DataClass]
    DATA_CLASS_INTERNAL: _ClassVar[DataClass]
    DATA_CLASS_CONFIDENTIAL: _ClassVar[DataClass]
    DATA_CLASS_PERSONAL: _ClassVar[DataClass]

class FlagSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLAG_SEVERITY_UNSPECIFIED: _ClassVar[FlagSeverity]
    FLAG_SEVERITY_INFO: _ClassVar[FlagSeverity]
    FLAG_SEVERITY_WARNING: _ClassVar[FlagSeverity]
    FLAG_SEVERITY_ERROR: _ClassVar[FlagSeverity]
DATA_CLASS_UNSPECIFIED: DataClass
DATA_CLASS_PUBLIC: DataClass
DATA_CLASS_INTERNAL: DataClass
DATA_CLASS_CONFIDENTIAL: DataClass
DATA_CLASS_PERSONAL: DataClass
FLAG_SEVERITY_UNSPECIFIED: FlagSeverity
FLAG_SEVERITY_INFO: FlagSeverity
FLAG_SEVERITY_WARNING: FlagSeverity
FLAG_SEVERITY_ERROR: FlagSeverity

class Principal(_message.Message):
    __slots__ = ("subject", "tenant", "roles")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    subject: str
    tenant: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject: _Optional[str] = ..., tenant: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class GovernanceContext(_message.Message):
    __slots__ = ("principal", "purpose", "data_class")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    purpose: str
    data_class: DataClass
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., purpose: _Optional[str] = ..., data_class: _Optional[_Union[DataClass, str]] = ...) -> None: ...

class RecordPolicy(_message.Message):
    __slots__ = ("data_class", "consented_purposes", "source", "subject_id")
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    CONSENTED_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    data_class: DataClass
    consented_purposes: _containers.RepeatedScalarFieldContainer[str]
    source: str
    subject_id: str
    def __init__(self, data_class: _Optional[_Union[DataClass, str]] = ..., consented_purposes: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., subject_id: _Optional[str] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("run_id", "plan_name", "plan_version", "step", "model", "prompt_template", "prompt_template_version", "voice_profile", "voice_profile_version", "source_record_ids", "trace_id", "create_time")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    VOICE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    VOICE_PROFILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    plan_name: str
    plan_version: int
    step: str
    model: ModelRef
    prompt_template: str
    prompt_template_version: int
    voice_profile: str
    voice_profile_version: int
    source_record_ids: _containers.RepeatedScalarFieldContainer[str]
    trace_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., plan_name: _Optional[str] = ..., plan_version: _Optional[int] = ..., step: _Optional[str] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., prompt_template: _Optional[str] = ..., prompt_template_version: _Optional[int] = ..., voice_profile: _Optional[str] = ..., voice_profile_version: _Optional[int] = ..., source_record_ids: _Optional[_Iterable[str]] = ..., trace_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("completed", "total", "failed", "stage")
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    completed: int
    total: int
    failed: int
    stage: str
    def __init__(self, completed: _Optional[int] = ..., total: _Optional[int] = ..., failed: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...

class TextSpan(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class ContentFlag(_message.Message):
    __slots__ = ("code", "message", "severity", "spans")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    severity: FlagSeverity
    spans: _containers.RepeatedCompositeFieldContainer[TextSpan]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., severity: _Optional[_Union[FlagSeverity, str]] = ..., spans: _Optional[_Iterable[_Union[TextSpan, _Mapping]]] = ...) -> None: ...

class SubjectHolding(_message.Message):
    __slots__ = ("kind", "scope", "count", "highest_data_class", "purposes", "consented_channels", "retention", "records", "truncated", "withheld")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    CONSENTED_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    kind: str
    scope: str
    count: int
    highest_data_class: DataClass
    purposes: _containers.RepeatedScalarFieldContainer[str]
    consented_channels: _containers.RepeatedScalarFieldContainer[str]
    retention: _duration_pb2.Duration
    records: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    truncated: bool
    withheld: int
    def __init__(self, kind: _Optional[str] = ..., scope: _Optional[str] = ..., count: _Optional[int] = ..., highest_data_class: _Optional[_Union[DataClass, str]] = ..., purposes: _Optional[_Iterable[str]] = ..., consented_channels: _Optional[_Iterable[str]] = ..., retention: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., records: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., truncated: _Optional[bool] = ..., withheld: _Optional[int] = ...) -> None: ...
