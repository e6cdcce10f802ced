import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import code_pb2 as _code_pb2
from google.rpc import status_pb2 as _status_pb2
from matcha.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlanFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_FORMAT_UNSPECIFIED: _ClassVar[PlanFormat]
    PLAN_FORMAT_YAML: _ClassVar[PlanFormat]
    PLAN_FORMAT_JSON: _ClassVar[PlanFormat]

class InputType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INPUT_TYPE_UNSPECIFIED: _ClassVar[InputType]
    INPUT_TYPE_STRING: _ClassVar[InputType]
    INPUT_TYPE_INTEGER: _ClassVar[InputType]
    INPUT_TYPE_NUMBER: _ClassVar[InputType]
    INPUT_TYPE_BOOLEAN: _ClassVar[InputType]
    INPUT_TYPE_LIST: _ClassVar[InputType]
    INPUT_TYPE_OBJECT: _ClassVar[InputType]

class PiiKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PII_KIND_UNSPECIFIED: _ClassVar[PiiKind]
    PII_KIND_EMAIL: _ClassVar[PiiKind]
    PII_KIND_PHONE: _ClassVar[PiiKind]
    PII_KIND_IBAN: _ClassVar[PiiKind]
    PII_KIND_PAYMENT_CARD: _ClassVar[PiiKind]
    PII_KIND_FR_NIR: _ClassVar[PiiKind]
    PII_KIND_IP_ADDRESS: _ClassVar[PiiKind]
    PII_KIND_URL_TOKEN: _ClassVar[PiiKind]
    PII_KIND_PERSON: _ClassVar[PiiKind]
    PII_KIND_ADDRESS: _ClassVar[PiiKind]
    PII_KIND_DATE_OF_BIRTH: _ClassVar[PiiKind]
    PII_KIND_AGE: _ClassVar[PiiKind]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_PENDING: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_WAITING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATE_UNSPECIFIED: _ClassVar[StepState]
    STEP_STATE_PENDING: _ClassVar[StepState]
    STEP_STATE_RUNNING: _ClassVar[StepState]
    STEP_STATE_WAITING: _ClassVar[StepState]
    STEP_STATE_SUCCEEDED: _ClassVar[StepState]
    STEP_STATE_FAILED: _ClassVar[StepState]
    STEP_STATE_SKIPPED: _ClassVar[StepState]
    STEP_STATE_CANCELLED: _ClassVar[StepState]

class RunView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_VIEW_UNSPECIFIED: _ClassVar[RunView]
    RUN_VIEW_BASIC: _ClassVar[RunView]
    RUN_VIEW_FULL: _ClassVar[RunView]

class PolicyDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_DECISION_UNSPECIFIED: _ClassVar[PolicyDecision]
    POLICY_DECISION_ALLOW: _ClassVar[PolicyDecision]
    POLICY_DECISION_REDACT: _ClassVar[PolicyDecision]
    POLICY_DECISION_DENY: _ClassVar[PolicyDecision]

class RunEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_EVENT_TYPE_UNSPECIFIED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_RUN_STARTED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_STARTED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_PROGRESS: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_RETRYING: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_SUCCEEDED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_FAILED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_SKIPPED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_WAITING: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_RESUMED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_RUN_RECOVERED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_RUN_SUCCEEDED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_RUN_FAILED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_RUN_CANCELLED: _ClassVar[RunEventType]
    RUN_EVENT_TYPE_STEP_CANCELLED: _ClassVar[RunEventType]

class SignalDisposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_DISPOSITION_UNSPECIFIED: _ClassVar[SignalDisposition]
    SIGNAL_DISPOSITION_RESUMED: _ClassVar[SignalDisposition]
    SIGNAL_DISPOSITION_STORED: _ClassVar[SignalDisposition]
    SIGNAL_DISPOSITION_DUPLICATE: _ClassVar[SignalDisposition]

class AuditLedger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_LEDGER_UNSPECIFIED: _ClassVar[AuditLedger]
    AUDIT_LEDGER_HOPS: _ClassVar[AuditLedger]
    AUDIT_LEDGER_ACCESSES: _ClassVar[AuditLedger]

class ChainBreak(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAIN_BREAK_UNSPECIFIED: _ClassVar[ChainBreak]
    CHAIN_BREAK_ALTERED: _ClassVar[ChainBreak]
    CHAIN_BREAK_INSERTED: _ClassVar[ChainBreak]
    CHAIN_BREAK_DELETED: _ClassVar[ChainBreak]
    CHAIN_BREAK_TRUNCATED: _ClassVar[ChainBreak]

class AlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_KIND_UNSPECIFIED: _ClassVar[AlertKind]
    ALERT_KIND_NEW_SIGNAL: _ClassVar[AlertKind]
    ALERT_KIND_SENTIMENT_SHIFT: _ClassVar[AlertKind]

class AlertTriggerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_TRIGGER_STATE_UNSPECIFIED: _ClassVar[AlertTriggerState]
    ALERT_TRIGGER_STATE_ACTIVE: _ClassVar[AlertTriggerState]
    ALERT_TRIGGER_STATE_STOPPED: _ClassVar[AlertTriggerState]
PLAN_FORMAT_UNSPECIFIED: PlanFormat
PLAN_FORMAT_YAML: PlanFormat
PLAN_FORMAT_JSON: PlanFormat
INPUT_TYPE_UNSPECIFIED: InputType
INPUT_TYPE_STRING: InputType
INPUT_TYPE_INTEGER: InputType
INPUT_TYPE_NUMBER: InputType
INPUT_TYPE_BOOLEAN: InputType
INPUT_TYPE_LIST: InputType
INPUT_TYPE_OBJECT: InputType
PII_KIND_UNSPECIFIED: PiiKind
PII_KIND_EMAIL: PiiKind
PII_KIND_PHONE: PiiKind
PII_KIND_IBAN: PiiKind
PII_KIND_PAYMENT_CARD: PiiKind
PII_KIND_FR_NIR: PiiKind
PII_KIND_IP_ADDRESS: PiiKind
PII_KIND_URL_TOKEN: PiiKind
PII_KIND_PERSON: PiiKind
PII_KIND_ADDRESS: PiiKind
PII_KIND_DATE_OF_BIRTH: PiiKind
PII_KIND_AGE: PiiKind
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_PENDING: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_WAITING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_RUNNING: StepState
STEP_STATE_WAITING: StepState
STEP_STATE_SUCCEEDED: StepState
STEP_STATE_FAILED: StepState
STEP_STATE_SKIPPED: StepState
STEP_STATE_CANCELLED: StepState
RUN_VIEW_UNSPECIFIED: RunView
RUN_VIEW_BASIC: RunView
RUN_VIEW_FULL: RunView
POLICY_DECISION_UNSPECIFIED: PolicyDecision
POLICY_DECISION_ALLOW: PolicyDecision
POLICY_DECISION_REDACT: PolicyDecision
POLICY_DECISION_DENY: PolicyDecision
RUN_EVENT_TYPE_UNSPECIFIED: RunEventType
RUN_EVENT_TYPE_RUN_STARTED: RunEventType
RUN_EVENT_TYPE_STEP_STARTED: RunEventType
RUN_EVENT_TYPE_STEP_PROGRESS: RunEventType
RUN_EVENT_TYPE_STEP_RETRYING: RunEventType
RUN_EVENT_TYPE_STEP_SUCCEEDED: RunEventType
RUN_EVENT_TYPE_STEP_FAILED: RunEventType
RUN_EVENT_TYPE_STEP_SKIPPED: RunEventType
RUN_EVENT_TYPE_STEP_WAITING: RunEventType
RUN_EVENT_TYPE_STEP_RESUMED: RunEventType
RUN_EVENT_TYPE_RUN_RECOVERED: RunEventType
RUN_EVENT_TYPE_RUN_SUCCEEDED: RunEventType
RUN_EVENT_TYPE_RUN_FAILED: RunEventType
RUN_EVENT_TYPE_RUN_CANCELLED: RunEventType
RUN_EVENT_TYPE_STEP_CANCELLED: RunEventType
SIGNAL_DISPOSITION_UNSPECIFIED: SignalDisposition
SIGNAL_DISPOSITION_RESUMED: SignalDisposition
SIGNAL_DISPOSITION_STORED: SignalDisposition
SIGNAL_DISPOSITION_DUPLICATE: SignalDisposition
AUDIT_LEDGER_UNSPECIFIED: AuditLedger
AUDIT_LEDGER_HOPS: AuditLedger
AUDIT_LEDGER_ACCESSES: AuditLedger
CHAIN_BREAK_UNSPECIFIED: ChainBreak
CHAIN_BREAK_ALTERED: ChainBreak
CHAIN_BREAK_INSERTED: ChainBreak
CHAIN_BREAK_DELETED: ChainBreak
CHAIN_BREAK_TRUNCATED: ChainBreak
ALERT_KIND_UNSPECIFIED: AlertKind
ALERT_KIND_NEW_SIGNAL: AlertKind
ALERT_KIND_SENTIMENT_SHIFT: AlertKind
ALERT_TRIGGER_STATE_UNSPECIFIED: AlertTriggerState
ALERT_TRIGGER_STATE_ACTIVE: AlertTriggerState
ALERT_TRIGGER_STATE_STOPPED: AlertTriggerState

class PlanSpec(_message.Message):
    __slots__ = ("name", "description", "inputs", "steps", "outputs", "deadline", "purposes")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputSpec]
    steps: _containers.RepeatedCompositeFieldContainer[StepSpec]
    outputs: _containers.ScalarMap[str, str]
    deadline: _duration_pb2.Duration
    purposes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputSpec, _Mapping]]] = ..., steps: _Optional[_Iterable[_Union[StepSpec, _Mapping]]] = ..., outputs: _Optional[_Mapping[str, str]] = ..., deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., purposes: _Optional[_Iterable[str]] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("name", "type", "required", "default_value", "description", "data_class")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: InputType
    required: bool
    default_value: _struct_pb2.Value
    description: str
    data_class: _common_pb2.DataClass
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[InputType, str]] = ..., required: _Optional[bool] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., description: _Optional[str] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ...) -> None: ...

class StepSpec(_message.Message):
    __slots__ = ("id", "description", "call", "request", "depends_on", "when", "for_each", "output", "retry", "timeout", "redact")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    AWAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    FOR_EACH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    call: str
    request: _struct_pb2.Struct
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    when: str
    for_each: ForEachSpec
    output: str
    retry: RetrySpec
    timeout: _duration_pb2.Duration
    redact: RedactSpec
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., call: _Optional[str] = ..., request: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ..., when: _Optional[str] = ..., for_each: _Optional[_Union[ForEachSpec, _Mapping]] = ..., output: _Optional[str] = ..., retry: _Optional[_Union[RetrySpec, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., redact: _Optional[_Union[RedactSpec, _Mapping]] = ..., **kwargs) -> None: ...

class ForEachSpec(_message.Message):
    __slots__ = ("items", "concurrency")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    items: str
    concurrency: int
    def __init__(self, items: _Optional[str] = ..., concurrency: _Optional[int] = ...) -> None: ...

class RetrySpec(_message.Message):
    __slots__ = ("max_attempts", "initial_backoff", "max_backoff", "multiplier", "codes")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    initial_backoff: _duration_pb2.Duration
    max_backoff: _duration_pb2.Duration
    multiplier: float
    codes: _containers.RepeatedScalarFieldContainer[_code_pb2.Code]
    def __init__(self, max_attempts: _Optional[int] = ..., initial_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., multiplier: _Optional[float] = ..., codes: _Optional[_Iterable[_Union[_code_pb2.Code, str]]] = ...) -> None: ...

class RedactSpec(_message.Message):
    __slots__ = ("fields", "kinds", "rehydrate")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    REHYDRATE_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[PiiKind]
    rehydrate: bool
    def __init__(self, fields: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[_Union[PiiKind, str]]] = ..., rehydrate: _Optional[bool] = ...) -> None: ...

class AwaitSpec(_message.Message):
    __slots__ = ("key", "roles")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    key: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("name", "version", "spec", "source", "source_format", "sha256", "create_subject", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    spec: PlanSpec
    source: str
    source_format: PlanFormat
    sha256: str
    create_subject: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., spec: _Optional[_Union[PlanSpec, _Mapping]] = ..., source: _Optional[str] = ..., source_format: _Optional[_Union[PlanFormat, str]] = ..., sha256: _Optional[str] = ..., create_subject: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterPlanRequest(_message.Message):
    __slots__ = ("document", "spec", "format", "validate_only")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    document: str
    spec: PlanSpec
    format: PlanFormat
    validate_only: bool
    def __init__(self, document: _Optional[str] = ..., spec: _Optional[_Union[PlanSpec, _Mapping]] = ..., format: _Optional[_Union[PlanFormat, str]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class RegisterPlanResponse(_message.Message):
    __slots__ = ("plan", "created")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    created: bool
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("plans", "next_page_token")
    PLANS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    plans: _containers.RepeatedCompositeFieldContainer[Plan]
    next_page_token: str
    def __init__(self, plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportPlanRequest(_message.Message):
    __slots__ = ("name", "version", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    format: PlanFormat
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., format: _Optional[_Union[PlanFormat, str]] = ...) -> None: ...

class ExportPlanResponse(_message.Message):
    __slots__ = ("document", "format", "version")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    document: str
    format: PlanFormat
    version: int
    def __init__(self, document: _Optional[str] = ..., format: _Optional[_Union[PlanFormat, str]] = ..., version: _Optional[int] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "plan_name", "plan_version", "state", "inputs", "outputs", "steps", "context", "error", "resumed_from_run_id", "labels", "trace_id", "create_time", "start_time", "end_time", "deadline")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    id: str
    plan_name: str
    plan_version: int
    state: RunState
    inputs: _struct_pb2.Struct
    outputs: _struct_pb2.Struct
    steps: _containers.RepeatedCompositeFieldContainer[StepRun]
    context: _common_pb2.GovernanceContext
    error: _status_pb2.Status
    resumed_from_run_id: str
    labels: _containers.ScalarMap[str, str]
    trace_id: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., plan_name: _Optional[str] = ..., plan_version: _Optional[int] = ..., state: _Optional[_Union[RunState, str]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepRun, _Mapping]]] = ..., context: _Optional[_Union[_common_pb2.GovernanceContext, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., resumed_from_run_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., trace_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StepRun(_message.Message):
    __slots__ = ("step_id", "state", "method", "attempts", "progress", "output", "error", "awaited_keys", "start_time", "end_time")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AWAITED_KEYS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    state: StepState
    method: str
    attempts: int
    progress: _common_pb2.Progress
    output: _struct_pb2.Value
    error: _status_pb2.Status
    awaited_keys: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, step_id: _Optional[str] = ..., state: _Optional[_Union[StepState, str]] = ..., method: _Optional[str] = ..., attempts: _Optional[int] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., awaited_keys: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("plan_name", "plan_version", "inputs", "resume_from_run_id", "labels", "deadline")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_FROM_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    plan_name: str
    plan_version: int
    inputs: _struct_pb2.Struct
    resume_from_run_id: str
    labels: _containers.ScalarMap[str, str]
    deadline: _duration_pb2.Duration
    def __init__(self, plan_name: _Optional[str] = ..., plan_version: _Optional[int] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., resume_from_run_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id", "view")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    view: RunView
    def __init__(self, run_id: _Optional[str] = ..., view: _Optional[_Union[RunView, str]] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("plan_name", "states", "start_time", "end_time", "labels", "page_size", "page_token")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    plan_name: str
    states: _containers.RepeatedScalarFieldContainer[RunState]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    page_size: int
    page_token: str
    def __init__(self, plan_name: _Optional[str] = ..., states: _Optional[_Iterable[_Union[RunState, str]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("sequence", "time", "type", "run_state", "step_id", "step_state", "item_index", "attempt", "progress", "signal_key", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RUN_STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_STATE_FIELD_NUMBER: _ClassVar[int]
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_KEY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    type: RunEventType
    run_state: RunState
    step_id: str
    step_state: StepState
    item_index: int
    attempt: int
    progress: _common_pb2.Progress
    signal_key: str
    error: _status_pb2.Status
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[RunEventType, str]] = ..., run_state: _Optional[_Union[RunState, str]] = ..., step_id: _Optional[str] = ..., step_state: _Optional[_Union[StepState, str]] = ..., item_index: _Optional[int] = ..., attempt: _Optional[int] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., signal_key: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("run_id", "after_sequence")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    after_sequence: int
    def __init__(self, run_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchRunResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: RunEvent
    def __init__(self, event: _Optional[_Union[RunEvent, _Mapping]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class SignalRequest(_message.Message):
    __slots__ = ("run_id", "key", "payload", "capability")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    key: str
    payload: _struct_pb2.Struct
    capability: str
    def __init__(self, run_id: _Optional[str] = ..., key: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., capability: _Optional[str] = ...) -> None: ...

class SignalResponse(_message.Message):
    __slots__ = ("disposition", "run_state")
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    RUN_STATE_FIELD_NUMBER: _ClassVar[int]
    disposition: SignalDisposition
    run_state: RunState
    def __init__(self, disposition: _Optional[_Union[SignalDisposition, str]] = ..., run_state: _Optional[_Union[RunState, str]] = ...) -> None: ...

class RedactionCount(_message.Message):
    __slots__ = ("kind", "count")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    kind: PiiKind
    count: int
    def __init__(self, kind: _Optional[_Union[PiiKind, str]] = ..., count: _Optional[int] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("sequence", "time", "principal", "purpose", "run_id", "plan_name", "plan_version", "step_id", "item_index", "attempt", "target_method", "models", "data_class_in", "data_class_out", "request_sha256", "response_sha256", "decision", "policy_rule", "redactions", "status_code", "trace_id", "span_id", "previous_hash", "record_hash")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_METHOD_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_IN_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_OUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SHA256_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    POLICY_RULE_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    RECORD_HASH_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    principal: _common_pb2.Principal
    purpose: str
    run_id: str
    plan_name: str
    plan_version: int
    step_id: str
    item_index: int
    attempt: int
    target_method: str
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.ModelRef]
    data_class_in: _common_pb2.DataClass
    data_class_out: _common_pb2.DataClass
    request_sha256: str
    response_sha256: str
    decision: PolicyDecision
    policy_rule: str
    redactions: _containers.RepeatedCompositeFieldContainer[RedactionCount]
    status_code: _code_pb2.Code
    trace_id: str
    span_id: str
    previous_hash: str
    record_hash: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., purpose: _Optional[str] = ..., run_id: _Optional[str] = ..., plan_name: _Optional[str] = ..., plan_version: _Optional[int] = ..., step_id: _Optional[str] = ..., item_index: _Optional[int] = ..., attempt: _Optional[int] = ..., target_method: _Optional[str] = ..., models: _Optional[_Iterable[_Union[_common_pb2.ModelRef, _Mapping]]] = ..., data_class_in: _Optional[_Union[_common_pb2.DataClass, str]] = ..., data_class_out: _Optional[_Union[_common_pb2.DataClass, str]] = ..., request_sha256: _Optional[str] = ..., response_sha256: _Optional[str] = ..., decision: _Optional[_Union[PolicyDecision, str]] = ..., policy_rule: _Optional[str] = ..., redactions: _Optional[_Iterable[_Union[RedactionCount, _Mapping]]] = ..., status_code: _Optional[_Union[_code_pb2.Code, str]] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., previous_hash: _Optional[str] = ..., record_hash: _Optional[str] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("run_id", "start_time", "end_time", "target", "decision", "page_size", "page_token", "ledger", "subject_id", "collection", "principal")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    target: str
    decision: PolicyDecision
    page_size: int
    page_token: str
    ledger: AuditLedger
    subject_id: str
    collection: str
    principal: str
    def __init__(self, run_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., target: _Optional[str] = ..., decision: _Optional[_Union[PolicyDecision, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., ledger: _Optional[_Union[AuditLedger, str]] = ..., subject_id: _Optional[str] = ..., collection: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("records", "next_page_token", "accesses")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESSES_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    next_page_token: str
    accesses: _containers.RepeatedCompositeFieldContainer[AccessRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., accesses: _Optional[_Iterable[_Union[AccessRecord, _Mapping]]] = ...) -> None: ...

class AccessRecord(_message.Message):
    __slots__ = ("sequence", "time", "principal", "purpose", "method", "data_class_declared", "data_class_derived", "resources", "records", "subjects", "models", "request_sha256", "response_sha256", "decision", "reason", "status_code", "request_id", "trace_id", "span_id", "previous_hash", "record_hash", "run_id")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_DECLARED_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_DERIVED_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SHA256_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    RECORD_HASH_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    principal: _common_pb2.Principal
    purpose: str
    method: str
    data_class_declared: _common_pb2.DataClass
    data_class_derived: _common_pb2.DataClass
    resources: _containers.RepeatedScalarFieldContainer[str]
    records: int
    subjects: int
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.ModelRef]
    request_sha256: str
    response_sha256: str
    decision: PolicyDecision
    reason: str
    status_code: _code_pb2.Code
    request_id: str
    trace_id: str
    span_id: str
    previous_hash: str
    record_hash: str
    run_id: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., purpose: _Optional[str] = ..., method: _Optional[str] = ..., data_class_declared: _Optional[_Union[_common_pb2.DataClass, str]] = ..., data_class_derived: _Optional[_Union[_common_pb2.DataClass, str]] = ..., resources: _Optional[_Iterable[str]] = ..., records: _Optional[int] = ..., subjects: _Optional[int] = ..., models: _Optional[_Iterable[_Union[_common_pb2.ModelRef, _Mapping]]] = ..., request_sha256: _Optional[str] = ..., response_sha256: _Optional[str] = ..., decision: _Optional[_Union[PolicyDecision, str]] = ..., reason: _Optional[str] = ..., status_code: _Optional[_Union[_code_pb2.Code, str]] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., previous_hash: _Optional[str] = ..., record_hash: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class VerifyAuditRequest(_message.Message):
    __slots__ = ("from_sequence", "expected_head_hash", "ledger")
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    from_sequence: int
    expected_head_hash: str
    ledger: AuditLedger
    def __init__(self, from_sequence: _Optional[int] = ..., expected_head_hash: _Optional[str] = ..., ledger: _Optional[_Union[AuditLedger, str]] = ...) -> None: ...

class VerifyAuditResponse(_message.Message):
    __slots__ = ("intact", "records_checked", "first_broken_sequence", "break_kind", "head_sequence", "head_hash")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BREAK_KIND_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    records_checked: int
    first_broken_sequence: int
    break_kind: ChainBreak
    head_sequence: int
    head_hash: str
    def __init__(self, intact: _Optional[bool] = ..., records_checked: _Optional[int] = ..., first_broken_sequence: _Optional[int] = ..., break_kind: _Optional[_Union[ChainBreak, str]] = ..., head_sequence: _Optional[int] = ..., head_hash: _Optional[str] = ...) -> None: ...

class RevokePrincipalRequest(_message.Message):
    __slots__ = ("subject", "reason")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subject: str
    reason: str
    def __init__(self, subject: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PrincipalRevocation(_message.Message):
    __slots__ = ("subject", "reason", "revoked_by", "revoke_time")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    subject: str
    reason: str
    revoked_by: str
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, subject: _Optional[str] = ..., reason: _Optional[str] = ..., revoked_by: _Optional[str] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RevokePrincipalResponse(_message.Message):
    __slots__ = ("revocation", "active_runs")
    REVOCATION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_RUNS_FIELD_NUMBER: _ClassVar[int]
    revocation: PrincipalRevocation
    active_runs: int
    def __init__(self, revocation: _Optional[_Union[PrincipalRevocation, _Mapping]] = ..., active_runs: _Optional[int] = ...) -> None: ...

class ReinstatePrincipalRequest(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: str
    def __init__(self, subject: _Optional[str] = ...) -> None: ...

class ReinstatePrincipalResponse(_message.Message):
    __slots__ = ("reinstated",)
    REINSTATED_FIELD_NUMBER: _ClassVar[int]
    reinstated: bool
    def __init__(self, reinstated: _Optional[bool] = ...) -> None: ...

class EraseSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class StoreErasure(_message.Message):
    __slots__ = ("store", "erased_records", "status", "erased_by_kind")
    class ErasedByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STORE_FIELD_NUMBER: _ClassVar[int]
    ERASED_RECORDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERASED_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    store: str
    erased_records: int
    status: _status_pb2.Status
    erased_by_kind: _containers.ScalarMap[str, int]
    def __init__(self, store: _Optional[str] = ..., erased_records: _Optional[int] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., erased_by_kind: _Optional[_Mapping[str, int]] = ...) -> None: ...

class EraseSubjectResponse(_message.Message):
    __slots__ = ("stores", "complete")
    STORES_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    stores: _containers.RepeatedCompositeFieldContainer[StoreErasure]
    complete: bool
    def __init__(self, stores: _Optional[_Iterable[_Union[StoreErasure, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...

class GetDataMapRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class StoreDataMap(_message.Message):
    __slots__ = ("store", "status", "holdings")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOLDINGS_FIELD_NUMBER: _ClassVar[int]
    store: str
    status: _status_pb2.Status
    holdings: _containers.RepeatedCompositeFieldContainer[_common_pb2.SubjectHolding]
    def __init__(self, store: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., holdings: _Optional[_Iterable[_Union[_common_pb2.SubjectHolding, _Mapping]]] = ...) -> None: ...

class GetDataMapResponse(_message.Message):
    __slots__ = ("subject_id", "stores", "complete", "accesses")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ACCESSES_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    stores: _containers.RepeatedCompositeFieldContainer[StoreDataMap]
    complete: bool
    accesses: _containers.RepeatedCompositeFieldContainer[AccessRecord]
    def __init__(self, subject_id: _Optional[str] = ..., stores: _Optional[_Iterable[_Union[StoreDataMap, _Mapping]]] = ..., complete: _Optional[bool] = ..., accesses: _Optional[_Iterable[_Union[AccessRecord, _Mapping]]] = ...) -> None: ...

class ListCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Capability(_message.Message):
    __slots__ = ("service", "methods", "clearance", "inside_trust_boundary", "serving")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    CLEARANCE_FIELD_NUMBER: _ClassVar[int]
    INSIDE_TRUST_BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    service: str
    methods: _containers.RepeatedScalarFieldContainer[str]
    clearance: _common_pb2.DataClass
    inside_trust_boundary: bool
    serving: bool
    def __init__(self, service: _Optional[str] = ..., methods: _Optional[_Iterable[str]] = ..., clearance: _Optional[_Union[_common_pb2.DataClass, str]] = ..., inside_trust_boundary: _Optional[bool] = ..., serving: _Optional[bool] = ...) -> None: ...

class ListCapabilitiesResponse(_message.Message):
    __slots__ = ("capabilities",)
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    capabilities: _containers.RepeatedCompositeFieldContainer[Capability]
    def __init__(self, capabilities: _Optional[_Iterable[_Union[Capability, _Mapping]]] = ...) -> None: ...

class AlertTrigger(_message.Message):
    __slots__ = ("name", "watch", "all_watches", "plan_name", "plan_version", "alert_inputs", "fixed_inputs", "kinds", "purpose", "data_class", "creator", "state", "stop_reason", "stop_message", "last_alert_sequence", "runs_started", "create_time")
    class AlertInputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    ALL_WATCHES_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALERT_INPUTS_FIELD_NUMBER: _ClassVar[int]
    FIXED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_ALERT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RUNS_STARTED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    watch: str
    all_watches: bool
    plan_name: str
    plan_version: int
    alert_inputs: _containers.ScalarMap[str, str]
    fixed_inputs: _struct_pb2.Struct
    kinds: _containers.RepeatedScalarFieldContainer[AlertKind]
    purpose: str
    data_class: _common_pb2.DataClass
    creator: _common_pb2.Principal
    state: AlertTriggerState
    stop_reason: str
    stop_message: str
    last_alert_sequence: int
    runs_started: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., watch: _Optional[str] = ..., all_watches: _Optional[bool] = ..., plan_name: _Optional[str] = ..., plan_version: _Optional[int] = ..., alert_inputs: _Optional[_Mapping[str, str]] = ..., fixed_inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kinds: _Optional[_Iterable[_Union[AlertKind, str]]] = ..., purpose: _Optional[str] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ..., creator: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., state: _Optional[_Union[AlertTriggerState, str]] = ..., stop_reason: _Optional[str] = ..., stop_message: _Optional[str] = ..., last_alert_sequence: _Optional[int] = ..., runs_started: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAlertTriggerRequest(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: AlertTrigger
    def __init__(self, trigger: _Optional[_Union[AlertTrigger, _Mapping]] = ...) -> None: ...

class CreateAlertTriggerResponse(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: AlertTrigger
    def __init__(self, trigger: _Optional[_Union[AlertTrigger, _Mapping]] = ...) -> None: ...

class GetAlertTriggerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetAlertTriggerResponse(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: AlertTrigger
    def __init__(self, trigger: _Optional[_Union[AlertTrigger, _Mapping]] = ...) -> None: ...

class ListAlertTriggersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertTriggersResponse(_message.Message):
    __slots__ = ("triggers", "next_page_token")
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[AlertTrigger]
    next_page_token: str
    def __init__(self, triggers: _Optional[_Iterable[_Union[AlertTrigger, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteAlertTriggerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteAlertTriggerResponse(_message.Message):
    __slots__ = ("runs_started",)
    RUNS_STARTED_FIELD_NUMBER: _ClassVar[int]
    runs_started: int
    def __init__(self, runs_started: _Optional[int] = ...) -> None: ...
