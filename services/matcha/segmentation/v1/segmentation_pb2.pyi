import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from matcha.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_PURCHASE: _ClassVar[EventType]
    EVENT_TYPE_VISIT: _ClassVar[EventType]
    EVENT_TYPE_CLICK: _ClassVar[EventType]

class SegmentationMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENTATION_METHOD_UNSPECIFIED: _ClassVar[SegmentationMethod]
    SEGMENTATION_METHOD_KMEANS: _ClassVar[SegmentationMethod]
    SEGMENTATION_METHOD_HDBSCAN: _ClassVar[SegmentationMethod]
    SEGMENTATION_METHOD_RULES: _ClassVar[SegmentationMethod]

class FeatureTransform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_TRANSFORM_UNSPECIFIED: _ClassVar[FeatureTransform]
    FEATURE_TRANSFORM_STANDARDIZE: _ClassVar[FeatureTransform]
    FEATURE_TRANSFORM_LOG1P_STANDARDIZE: _ClassVar[FeatureTransform]
    FEATURE_TRANSFORM_QUANTILE: _ClassVar[FeatureTransform]
    FEATURE_TRANSFORM_NONE: _ClassVar[FeatureTransform]

class SegmentationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENTATION_STATE_UNSPECIFIED: _ClassVar[SegmentationState]
    SEGMENTATION_STATE_BUILDING: _ClassVar[SegmentationState]
    SEGMENTATION_STATE_READY: _ClassVar[SegmentationState]
    SEGMENTATION_STATE_FAILED: _ClassVar[SegmentationState]

class KCriterion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    K_CRITERION_UNSPECIFIED: _ClassVar[KCriterion]
    K_CRITERION_SILHOUETTE: _ClassVar[KCriterion]
    K_CRITERION_STABILITY: _ClassVar[KCriterion]

class ReasonKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_KIND_UNSPECIFIED: _ClassVar[ReasonKind]
    REASON_KIND_SEGMENT_POPULARITY: _ClassVar[ReasonKind]
    REASON_KIND_CO_OCCURRENCE: _ClassVar[ReasonKind]
    REASON_KIND_CONTENT_SIMILARITY: _ClassVar[ReasonKind]
    REASON_KIND_GLOBAL_POPULARITY: _ClassVar[ReasonKind]

class DriftLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRIFT_LEVEL_UNSPECIFIED: _ClassVar[DriftLevel]
    DRIFT_LEVEL_STABLE: _ClassVar[DriftLevel]
    DRIFT_LEVEL_MODERATE: _ClassVar[DriftLevel]
    DRIFT_LEVEL_SIGNIFICANT: _ClassVar[DriftLevel]

class CompareOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPARE_OPERATOR_UNSPECIFIED: _ClassVar[CompareOperator]
    COMPARE_OPERATOR_EQ: _ClassVar[CompareOperator]
    COMPARE_OPERATOR_NE: _ClassVar[CompareOperator]
    COMPARE_OPERATOR_LT: _ClassVar[CompareOperator]
    COMPARE_OPERATOR_LE: _ClassVar[CompareOperator]
    COMPARE_OPERATOR_GT: _ClassVar[CompareOperator]
    COMPARE_OPERATOR_GE: _ClassVar[CompareOperator]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_PURCHASE: EventType
EVENT_TYPE_VISIT: EventType
EVENT_TYPE_CLICK: EventType
SEGMENTATION_METHOD_UNSPECIFIED: SegmentationMethod
SEGMENTATION_METHOD_KMEANS: SegmentationMethod
SEGMENTATION_METHOD_HDBSCAN: SegmentationMethod
SEGMENTATION_METHOD_RULES: SegmentationMethod
FEATURE_TRANSFORM_UNSPECIFIED: FeatureTransform
FEATURE_TRANSFORM_STANDARDIZE: FeatureTransform
FEATURE_TRANSFORM_LOG1P_STANDARDIZE: FeatureTransform
FEATURE_TRANSFORM_QUANTILE: FeatureTransform
FEATURE_TRANSFORM_NONE: FeatureTransform
SEGMENTATION_STATE_UNSPECIFIED: SegmentationState
SEGMENTATION_STATE_BUILDING: SegmentationState
SEGMENTATION_STATE_READY: SegmentationState
SEGMENTATION_STATE_FAILED: SegmentationState
K_CRITERION_UNSPECIFIED: KCriterion
K_CRITERION_SILHOUETTE: KCriterion
K_CRITERION_STABILITY: KCriterion
REASON_KIND_UNSPECIFIED: ReasonKind
REASON_KIND_SEGMENT_POPULARITY: ReasonKind
REASON_KIND_CO_OCCURRENCE: ReasonKind
REASON_KIND_CONTENT_SIMILARITY: ReasonKind
REASON_KIND_GLOBAL_POPULARITY: ReasonKind
DRIFT_LEVEL_UNSPECIFIED: DriftLevel
DRIFT_LEVEL_STABLE: DriftLevel
DRIFT_LEVEL_MODERATE: DriftLevel
DRIFT_LEVEL_SIGNIFICANT: DriftLevel
COMPARE_OPERATOR_UNSPECIFIED: CompareOperator
COMPARE_OPERATOR_EQ: CompareOperator
COMPARE_OPERATOR_NE: CompareOperator
COMPARE_OPERATOR_LT: CompareOperator
COMPARE_OPERATOR_LE: CompareOperator
COMPARE_OPERATOR_GT: CompareOperator
COMPARE_OPERATOR_GE: CompareOperator

class Customer(_message.Message):
    __slots__ = ("id", "attributes", "features", "join_time", "policy", "opted_out_channels", "unsubscribed_channels")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    JOIN_TIME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    attributes: _struct_pb2.Struct
    features: _containers.ScalarMap[str, float]
    join_time: _timestamp_pb2.Timestamp
    policy: _common_pb2.RecordPolicy
    opted_out_channels: _containers.RepeatedScalarFieldContainer[str]
    unsubscribed_channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., features: _Optional[_Mapping[str, float]] = ..., join_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ..., opted_out_channels: _Optional[_Iterable[str]] = ..., unsubscribed_channels: _Optional[_Iterable[str]] = ...) -> None: ...

class IngestCustomersRequest(_message.Message):
    __slots__ = ("customers",)
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[Customer]
    def __init__(self, customers: _Optional[_Iterable[_Union[Customer, _Mapping]]] = ...) -> None: ...

class IngestCustomersResponse(_message.Message):
    __slots__ = ("inserted", "updated", "unchanged", "raised_to_personal")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    RAISED_TO_PERSONAL_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    updated: int
    unchanged: int
    raised_to_personal: int
    def __init__(self, inserted: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., raised_to_personal: _Optional[int] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("id", "customer_id", "time", "amount", "quantity", "channel", "item_id", "refund")
    ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    id: str
    customer_id: str
    time: _timestamp_pb2.Timestamp
    amount: float
    quantity: float
    channel: str
    item_id: str
    refund: bool
    def __init__(self, id: _Optional[str] = ..., customer_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount: _Optional[float] = ..., quantity: _Optional[float] = ..., channel: _Optional[str] = ..., item_id: _Optional[str] = ..., refund: _Optional[bool] = ...) -> None: ...

class IngestTransactionsRequest(_message.Message):
    __slots__ = ("transactions", "default_policy")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_POLICY_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    default_policy: _common_pb2.RecordPolicy
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ..., default_policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ...) -> None: ...

class IngestTransactionsResponse(_message.Message):
    __slots__ = ("inserted", "duplicates", "customers_created", "customers_updated")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_CREATED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    duplicates: int
    customers_created: int
    customers_updated: int
    def __init__(self, inserted: _Optional[int] = ..., duplicates: _Optional[int] = ..., customers_created: _Optional[int] = ..., customers_updated: _Optional[int] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("id", "name", "category", "attributes", "vector", "vector_model")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    VECTOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    category: str
    attributes: _struct_pb2.Struct
    vector: _containers.RepeatedScalarFieldContainer[float]
    vector_model: _common_pb2.ModelRef
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., vector: _Optional[_Iterable[float]] = ..., vector_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class IngestItemsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class IngestItemsResponse(_message.Message):
    __slots__ = ("inserted", "updated")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    updated: int
    def __init__(self, inserted: _Optional[int] = ..., updated: _Optional[int] = ...) -> None: ...

class BehaviourEvent(_message.Message):
    __slots__ = ("id", "customer_id", "type", "time", "item_id", "amount", "quantity")
    ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    customer_id: str
    type: EventType
    time: _timestamp_pb2.Timestamp
    item_id: str
    amount: float
    quantity: float
    def __init__(self, id: _Optional[str] = ..., customer_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., item_id: _Optional[str] = ..., amount: _Optional[float] = ..., quantity: _Optional[float] = ...) -> None: ...

class IngestEventsRequest(_message.Message):
    __slots__ = ("events", "default_policy")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_POLICY_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BehaviourEvent]
    default_policy: _common_pb2.RecordPolicy
    def __init__(self, events: _Optional[_Iterable[_Union[BehaviourEvent, _Mapping]]] = ..., default_policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ...) -> None: ...

class IngestEventsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "customers_created", "customers_updated", "reassigned", "late", "condition_changes")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_CREATED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    REASSIGNED_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_CHANGES_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    customers_created: int
    customers_updated: int
    reassigned: int
    late: int
    condition_changes: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., customers_created: _Optional[int] = ..., customers_updated: _Optional[int] = ..., reassigned: _Optional[int] = ..., late: _Optional[int] = ..., condition_changes: _Optional[int] = ...) -> None: ...

class ApplyEventsRequest(_message.Message):
    __slots__ = ("events", "default_policy")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_POLICY_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BehaviourEvent]
    default_policy: _common_pb2.RecordPolicy
    def __init__(self, events: _Optional[_Iterable[_Union[BehaviourEvent, _Mapping]]] = ..., default_policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ...) -> None: ...

class ApplyEventsResponse(_message.Message):
    __slots__ = ("totals",)
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    totals: IngestEventsResponse
    def __init__(self, totals: _Optional[_Union[IngestEventsResponse, _Mapping]] = ...) -> None: ...

class ReevaluateCustomersRequest(_message.Message):
    __slots__ = ("customer_ids",)
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReevaluateCustomersResponse(_message.Message):
    __slots__ = ("condition_changes",)
    CONDITION_CHANGES_FIELD_NUMBER: _ClassVar[int]
    condition_changes: int
    def __init__(self, condition_changes: _Optional[int] = ...) -> None: ...

class Membership(_message.Message):
    __slots__ = ("segmentation", "version", "segment_id", "segment_name", "since")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    segmentation: str
    version: int
    segment_id: str
    segment_name: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, segmentation: _Optional[str] = ..., version: _Optional[int] = ..., segment_id: _Optional[str] = ..., segment_name: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SegmentChange(_message.Message):
    __slots__ = ("sequence", "time", "customer_id", "segmentation", "version", "from_segment_id", "to_segment_id", "to_segment_name", "cause_id")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CAUSE_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    customer_id: str
    segmentation: str
    version: int
    from_segment_id: str
    to_segment_id: str
    to_segment_name: str
    cause_id: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_id: _Optional[str] = ..., segmentation: _Optional[str] = ..., version: _Optional[int] = ..., from_segment_id: _Optional[str] = ..., to_segment_id: _Optional[str] = ..., to_segment_name: _Optional[str] = ..., cause_id: _Optional[str] = ...) -> None: ...

class UnsubscribeRequest(_message.Message):
    __slots__ = ("customer_id", "channel")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    channel: str
    def __init__(self, customer_id: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class UnsubscribeResponse(_message.Message):
    __slots__ = ("unsubscribed_channels", "changed")
    UNSUBSCRIBED_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    unsubscribed_channels: _containers.RepeatedScalarFieldContainer[str]
    changed: bool
    def __init__(self, unsubscribed_channels: _Optional[_Iterable[str]] = ..., changed: _Optional[bool] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "history_limit")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    history_limit: int
    def __init__(self, customer_id: _Optional[str] = ..., history_limit: _Optional[int] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer", "features", "reference_time", "memberships", "history")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TIME_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIPS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    features: _containers.ScalarMap[str, float]
    reference_time: _timestamp_pb2.Timestamp
    memberships: _containers.RepeatedCompositeFieldContainer[Membership]
    history: _containers.RepeatedCompositeFieldContainer[SegmentChange]
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., features: _Optional[_Mapping[str, float]] = ..., reference_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., memberships: _Optional[_Iterable[_Union[Membership, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[SegmentChange, _Mapping]]] = ...) -> None: ...

class EraseSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class EraseSubjectResponse(_message.Message):
    __slots__ = ("erased_customers", "erased_transactions", "erased_events", "erased_idempotency_replies")
    ERASED_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    ERASED_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    ERASED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    ERASED_IDEMPOTENCY_REPLIES_FIELD_NUMBER: _ClassVar[int]
    erased_customers: int
    erased_transactions: int
    erased_events: int
    erased_idempotency_replies: int
    def __init__(self, erased_customers: _Optional[int] = ..., erased_transactions: _Optional[int] = ..., erased_events: _Optional[int] = ..., erased_idempotency_replies: _Optional[int] = ...) -> None: ...

class DescribeSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class DescribeSubjectResponse(_message.Message):
    __slots__ = ("holdings",)
    HOLDINGS_FIELD_NUMBER: _ClassVar[int]
    holdings: _containers.RepeatedCompositeFieldContainer[_common_pb2.SubjectHolding]
    def __init__(self, holdings: _Optional[_Iterable[_Union[_common_pb2.SubjectHolding, _Mapping]]] = ...) -> None: ...

class KMeansConfig(_message.Message):
    __slots__ = ("k", "k_min", "k_max", "silhouette_sample_size", "criterion", "min_share", "preferred_k_min", "preferred_k_max")
    K_FIELD_NUMBER: _ClassVar[int]
    K_MIN_FIELD_NUMBER: _ClassVar[int]
    K_MAX_FIELD_NUMBER: _ClassVar[int]
    SILHOUETTE_SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    MIN_SHARE_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_K_MIN_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_K_MAX_FIELD_NUMBER: _ClassVar[int]
    k: int
    k_min: int
    k_max: int
    silhouette_sample_size: int
    criterion: KCriterion
    min_share: float
    preferred_k_min: int
    preferred_k_max: int
    def __init__(self, k: _Optional[int] = ..., k_min: _Optional[int] = ..., k_max: _Optional[int] = ..., silhouette_sample_size: _Optional[int] = ..., criterion: _Optional[_Union[KCriterion, str]] = ..., min_share: _Optional[float] = ..., preferred_k_min: _Optional[int] = ..., preferred_k_max: _Optional[int] = ...) -> None: ...

class HdbscanConfig(_message.Message):
    __slots__ = ("min_cluster_size", "min_samples")
    MIN_CLUSTER_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    min_cluster_size: int
    min_samples: int
    def __init__(self, min_cluster_size: _Optional[int] = ..., min_samples: _Optional[int] = ...) -> None: ...

class SegmentRule(_message.Message):
    __slots__ = ("id", "name", "condition")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    condition: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., condition: _Optional[str] = ...) -> None: ...

class RulesConfig(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[SegmentRule]
    def __init__(self, rules: _Optional[_Iterable[_Union[SegmentRule, _Mapping]]] = ...) -> None: ...

class BuildSegmentationRequest(_message.Message):
    __slots__ = ("name", "description", "features", "kmeans", "hdbscan", "rules", "transforms", "seed", "exemplar_count")
    class TransformsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureTransform
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureTransform, str]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    KMEANS_FIELD_NUMBER: _ClassVar[int]
    HDBSCAN_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    features: _containers.RepeatedScalarFieldContainer[str]
    kmeans: KMeansConfig
    hdbscan: HdbscanConfig
    rules: RulesConfig
    transforms: _containers.ScalarMap[str, FeatureTransform]
    seed: int
    exemplar_count: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., kmeans: _Optional[_Union[KMeansConfig, _Mapping]] = ..., hdbscan: _Optional[_Union[HdbscanConfig, _Mapping]] = ..., rules: _Optional[_Union[RulesConfig, _Mapping]] = ..., transforms: _Optional[_Mapping[str, FeatureTransform]] = ..., seed: _Optional[int] = ..., exemplar_count: _Optional[int] = ...) -> None: ...

class BuildSegmentationResponse(_message.Message):
    __slots__ = ("segmentation",)
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    segmentation: Segmentation
    def __init__(self, segmentation: _Optional[_Union[Segmentation, _Mapping]] = ...) -> None: ...

class FeatureScaling(_message.Message):
    __slots__ = ("feature", "transform", "center", "scale")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    transform: FeatureTransform
    center: float
    scale: float
    def __init__(self, feature: _Optional[str] = ..., transform: _Optional[_Union[FeatureTransform, str]] = ..., center: _Optional[float] = ..., scale: _Optional[float] = ...) -> None: ...

class KScore(_message.Message):
    __slots__ = ("k", "silhouette", "stability", "smallest_share")
    K_FIELD_NUMBER: _ClassVar[int]
    SILHOUETTE_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    SMALLEST_SHARE_FIELD_NUMBER: _ClassVar[int]
    k: int
    silhouette: float
    stability: float
    smallest_share: float
    def __init__(self, k: _Optional[int] = ..., silhouette: _Optional[float] = ..., stability: _Optional[float] = ..., smallest_share: _Optional[float] = ...) -> None: ...

class FeatureProfile(_message.Message):
    __slots__ = ("feature", "mean", "base_mean", "lift", "standardized_difference")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    BASE_MEAN_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    STANDARDIZED_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    mean: float
    base_mean: float
    lift: float
    standardized_difference: float
    def __init__(self, feature: _Optional[str] = ..., mean: _Optional[float] = ..., base_mean: _Optional[float] = ..., lift: _Optional[float] = ..., standardized_difference: _Optional[float] = ...) -> None: ...

class SegmentExemplar(_message.Message):
    __slots__ = ("customer_id", "distance")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    distance: float
    def __init__(self, customer_id: _Optional[str] = ..., distance: _Optional[float] = ...) -> None: ...

class Persona(_message.Message):
    __slots__ = ("title", "summary", "provenance", "author_subject", "update_time")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    title: str
    summary: str
    provenance: _common_pb2.Provenance
    author_subject: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, title: _Optional[str] = ..., summary: _Optional[str] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., author_subject: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("id", "name", "size", "share", "features", "top_features", "exemplars", "outliers", "condition", "persona")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TOP_FEATURES_FIELD_NUMBER: _ClassVar[int]
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    OUTLIERS_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    size: int
    share: float
    features: _containers.RepeatedCompositeFieldContainer[FeatureProfile]
    top_features: _containers.RepeatedScalarFieldContainer[str]
    exemplars: _containers.RepeatedCompositeFieldContainer[SegmentExemplar]
    outliers: bool
    condition: str
    persona: Persona
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., size: _Optional[int] = ..., share: _Optional[float] = ..., features: _Optional[_Iterable[_Union[FeatureProfile, _Mapping]]] = ..., top_features: _Optional[_Iterable[str]] = ..., exemplars: _Optional[_Iterable[_Union[SegmentExemplar, _Mapping]]] = ..., outliers: _Optional[bool] = ..., condition: _Optional[str] = ..., persona: _Optional[_Union[Persona, _Mapping]] = ...) -> None: ...

class Segmentation(_message.Message):
    __slots__ = ("name", "version", "description", "state", "progress", "error", "method", "features", "scaling", "k_scores", "silhouette", "seed", "population", "segments", "create_subject", "create_time", "complete_time", "k_reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    K_SCORES_FIELD_NUMBER: _ClassVar[int]
    SILHOUETTE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    POPULATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    K_REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    description: str
    state: SegmentationState
    progress: _common_pb2.Progress
    error: _status_pb2.Status
    method: SegmentationMethod
    features: _containers.RepeatedScalarFieldContainer[str]
    scaling: _containers.RepeatedCompositeFieldContainer[FeatureScaling]
    k_scores: _containers.RepeatedCompositeFieldContainer[KScore]
    silhouette: float
    seed: int
    population: int
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    create_subject: str
    create_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    k_reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., state: _Optional[_Union[SegmentationState, str]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., method: _Optional[_Union[SegmentationMethod, str]] = ..., features: _Optional[_Iterable[str]] = ..., scaling: _Optional[_Iterable[_Union[FeatureScaling, _Mapping]]] = ..., k_scores: _Optional[_Iterable[_Union[KScore, _Mapping]]] = ..., silhouette: _Optional[float] = ..., seed: _Optional[int] = ..., population: _Optional[int] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., create_subject: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., k_reason: _Optional[str] = ...) -> None: ...

class GetSegmentationRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetSegmentationResponse(_message.Message):
    __slots__ = ("segmentation",)
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    segmentation: Segmentation
    def __init__(self, segmentation: _Optional[_Union[Segmentation, _Mapping]] = ...) -> None: ...

class ListSegmentationsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentationsResponse(_message.Message):
    __slots__ = ("segmentations", "next_page_token")
    SEGMENTATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segmentations: _containers.RepeatedCompositeFieldContainer[Segmentation]
    next_page_token: str
    def __init__(self, segmentations: _Optional[_Iterable[_Union[Segmentation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SegmentMember(_message.Message):
    __slots__ = ("customer_id", "distance", "since")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    distance: float
    since: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., distance: _Optional[float] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSegmentMembersRequest(_message.Message):
    __slots__ = ("name", "version", "segment_id", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    segment_id: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., segment_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentMembersResponse(_message.Message):
    __slots__ = ("members", "next_page_token", "total_size")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[SegmentMember]
    next_page_token: str
    total_size: int
    def __init__(self, members: _Optional[_Iterable[_Union[SegmentMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class FeatureValues(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, float]
    def __init__(self, values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SegmentDistance(_message.Message):
    __slots__ = ("segment_id", "distance")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    distance: float
    def __init__(self, segment_id: _Optional[str] = ..., distance: _Optional[float] = ...) -> None: ...

class AssignRequest(_message.Message):
    __slots__ = ("name", "version", "customer_id", "features")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    customer_id: str
    features: FeatureValues
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., customer_id: _Optional[str] = ..., features: _Optional[_Union[FeatureValues, _Mapping]] = ...) -> None: ...

class AssignResponse(_message.Message):
    __slots__ = ("segment_id", "segment_name", "version", "distance", "confidence", "outlier", "alternatives")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    OUTLIER_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    segment_name: str
    version: int
    distance: float
    confidence: float
    outlier: bool
    alternatives: _containers.RepeatedCompositeFieldContainer[SegmentDistance]
    def __init__(self, segment_id: _Optional[str] = ..., segment_name: _Optional[str] = ..., version: _Optional[int] = ..., distance: _Optional[float] = ..., confidence: _Optional[float] = ..., outlier: _Optional[bool] = ..., alternatives: _Optional[_Iterable[_Union[SegmentDistance, _Mapping]]] = ...) -> None: ...

class WatchSegmentChangesRequest(_message.Message):
    __slots__ = ("segmentation", "segment_ids", "after_sequence")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    segmentation: str
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    after_sequence: int
    def __init__(self, segmentation: _Optional[str] = ..., segment_ids: _Optional[_Iterable[str]] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchSegmentChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[SegmentChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[SegmentChange, _Mapping]]] = ...) -> None: ...

class RecommendationReason(_message.Message):
    __slots__ = ("kind", "weight", "related_item_id", "explanation")
    KIND_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RELATED_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    kind: ReasonKind
    weight: float
    related_item_id: str
    explanation: str
    def __init__(self, kind: _Optional[_Union[ReasonKind, str]] = ..., weight: _Optional[float] = ..., related_item_id: _Optional[str] = ..., explanation: _Optional[str] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("item_id", "score", "reasons", "item_name")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    ITEM_NAME_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    reasons: _containers.RepeatedCompositeFieldContainer[RecommendationReason]
    item_name: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., reasons: _Optional[_Iterable[_Union[RecommendationReason, _Mapping]]] = ..., item_name: _Optional[str] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("customer_id", "segmentation", "limit", "include_owned", "exclude_item_ids", "candidate_item_ids")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OWNED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    segmentation: str
    limit: int
    include_owned: bool
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    candidate_item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., segmentation: _Optional[str] = ..., limit: _Optional[int] = ..., include_owned: _Optional[bool] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ..., candidate_item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("recommendations", "segmentation", "version", "segment_id")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    segmentation: str
    version: int
    segment_id: str
    def __init__(self, recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., segmentation: _Optional[str] = ..., version: _Optional[int] = ..., segment_id: _Optional[str] = ...) -> None: ...

class CurrentData(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CompareSegmentationsRequest(_message.Message):
    __slots__ = ("name", "baseline_version", "target_version", "current_data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    baseline_version: int
    target_version: int
    current_data: CurrentData
    def __init__(self, name: _Optional[str] = ..., baseline_version: _Optional[int] = ..., target_version: _Optional[int] = ..., current_data: _Optional[_Union[CurrentData, _Mapping]] = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("feature", "psi", "level")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    feature: str
    psi: float
    level: DriftLevel
    def __init__(self, feature: _Optional[str] = ..., psi: _Optional[float] = ..., level: _Optional[_Union[DriftLevel, str]] = ...) -> None: ...

class MigrationRow(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, counts: _Optional[_Iterable[int]] = ...) -> None: ...

class MigrationMatrix(_message.Message):
    __slots__ = ("from_segment_ids", "to_segment_ids", "rows")
    FROM_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    TO_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    from_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    to_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[MigrationRow]
    def __init__(self, from_segment_ids: _Optional[_Iterable[str]] = ..., to_segment_ids: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[MigrationRow, _Mapping]]] = ...) -> None: ...

class SegmentShift(_message.Message):
    __slots__ = ("segment_id", "baseline_share", "target_share")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SHARE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SHARE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    baseline_share: float
    target_share: float
    def __init__(self, segment_id: _Optional[str] = ..., baseline_share: _Optional[float] = ..., target_share: _Optional[float] = ...) -> None: ...

class CompareSegmentationsResponse(_message.Message):
    __slots__ = ("feature_drift", "overall", "migration", "shifts", "appeared_segment_ids", "vanished_segment_ids", "common_customers", "new_customers", "departed_customers")
    FEATURE_DRIFT_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_FIELD_NUMBER: _ClassVar[int]
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    APPEARED_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    VANISHED_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    COMMON_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    NEW_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    DEPARTED_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    feature_drift: _containers.RepeatedCompositeFieldContainer[FeatureDrift]
    overall: DriftLevel
    migration: MigrationMatrix
    shifts: _containers.RepeatedCompositeFieldContainer[SegmentShift]
    appeared_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    vanished_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    common_customers: int
    new_customers: int
    departed_customers: int
    def __init__(self, feature_drift: _Optional[_Iterable[_Union[FeatureDrift, _Mapping]]] = ..., overall: _Optional[_Union[DriftLevel, str]] = ..., migration: _Optional[_Union[MigrationMatrix, _Mapping]] = ..., shifts: _Optional[_Iterable[_Union[SegmentShift, _Mapping]]] = ..., appeared_segment_ids: _Optional[_Iterable[str]] = ..., vanished_segment_ids: _Optional[_Iterable[str]] = ..., common_customers: _Optional[int] = ..., new_customers: _Optional[int] = ..., departed_customers: _Optional[int] = ...) -> None: ...

class AttachPersonaRequest(_message.Message):
    __slots__ = ("name", "version", "segment_id", "persona")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    segment_id: str
    persona: Persona
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., segment_id: _Optional[str] = ..., persona: _Optional[_Union[Persona, _Mapping]] = ...) -> None: ...

class AttachPersonaResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class ScalarValue(_message.Message):
    __slots__ = ("number", "text", "flag")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    number: float
    text: str
    flag: bool
    def __init__(self, number: _Optional[float] = ..., text: _Optional[str] = ..., flag: _Optional[bool] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("operator", "value")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    operator: CompareOperator
    value: ScalarValue
    def __init__(self, operator: _Optional[_Union[CompareOperator, str]] = ..., value: _Optional[_Union[ScalarValue, _Mapping]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[ScalarValue]
    def __init__(self, values: _Optional[_Iterable[_Union[ScalarValue, _Mapping]]] = ...) -> None: ...

class NumberRange(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: float
    max: float
    def __init__(self, min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class PropertyCondition(_message.Message):
    __slots__ = ("property", "compare", "in_list", "range")
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    COMPARE_FIELD_NUMBER: _ClassVar[int]
    IN_LIST_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    property: str
    compare: Comparison
    in_list: ValueList
    range: NumberRange
    def __init__(self, property: _Optional[str] = ..., compare: _Optional[_Union[Comparison, _Mapping]] = ..., in_list: _Optional[_Union[ValueList, _Mapping]] = ..., range: _Optional[_Union[NumberRange, _Mapping]] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EventCondition(_message.Message):
    __slots__ = ("type", "item_ids", "amount", "within", "between", "min_count", "max_count", "amount_sum", "not_occurred")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    WITHIN_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_SUM_FIELD_NUMBER: _ClassVar[int]
    NOT_OCCURRED_FIELD_NUMBER: _ClassVar[int]
    type: EventType
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    amount: NumberRange
    within: _duration_pb2.Duration
    between: TimeRange
    min_count: int
    max_count: int
    amount_sum: NumberRange
    not_occurred: bool
    def __init__(self, type: _Optional[_Union[EventType, str]] = ..., item_ids: _Optional[_Iterable[str]] = ..., amount: _Optional[_Union[NumberRange, _Mapping]] = ..., within: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., between: _Optional[_Union[TimeRange, _Mapping]] = ..., min_count: _Optional[int] = ..., max_count: _Optional[int] = ..., amount_sum: _Optional[_Union[NumberRange, _Mapping]] = ..., not_occurred: _Optional[bool] = ...) -> None: ...

class SegmentReference(_message.Message):
    __slots__ = ("segmentation", "segment_id")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segmentation: str
    segment_id: str
    def __init__(self, segmentation: _Optional[str] = ..., segment_id: _Optional[str] = ...) -> None: ...

class RandomBucket(_message.Message):
    __slots__ = ("salt", "lower", "upper")
    SALT_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    salt: str
    lower: int
    upper: int
    def __init__(self, salt: _Optional[str] = ..., lower: _Optional[int] = ..., upper: _Optional[int] = ...) -> None: ...

class ConditionList(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    def __init__(self, conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("all", "any", "property", "event", "member_of", "bucket")
    ALL_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_OF_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    all: ConditionList
    any: ConditionList
    property: PropertyCondition
    event: EventCondition
    member_of: SegmentReference
    bucket: RandomBucket
    def __init__(self, all: _Optional[_Union[ConditionList, _Mapping]] = ..., any: _Optional[_Union[ConditionList, _Mapping]] = ..., property: _Optional[_Union[PropertyCondition, _Mapping]] = ..., event: _Optional[_Union[EventCondition, _Mapping]] = ..., member_of: _Optional[_Union[SegmentReference, _Mapping]] = ..., bucket: _Optional[_Union[RandomBucket, _Mapping]] = ..., **kwargs) -> None: ...

class ConditionSegment(_message.Message):
    __slots__ = ("name", "version", "description", "condition", "state", "progress", "size", "create_subject", "create_time", "complete_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATE_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    description: str
    condition: Condition
    state: SegmentationState
    progress: _common_pb2.Progress
    size: int
    create_subject: str
    create_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ..., state: _Optional[_Union[SegmentationState, str]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., size: _Optional[int] = ..., create_subject: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DefineConditionSegmentRequest(_message.Message):
    __slots__ = ("name", "description", "condition")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    condition: Condition
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ...) -> None: ...

class DefineConditionSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: ConditionSegment
    def __init__(self, segment: _Optional[_Union[ConditionSegment, _Mapping]] = ...) -> None: ...

class GetConditionSegmentRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetConditionSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: ConditionSegment
    def __init__(self, segment: _Optional[_Union[ConditionSegment, _Mapping]] = ...) -> None: ...

class ListConditionSegmentMembersRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConditionSegmentMembersResponse(_message.Message):
    __slots__ = ("customer_ids", "next_page_token", "total_size")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    total_size: int
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class StreamSegmentMembersRequest(_message.Message):
    __slots__ = ("name", "version", "segment_id", "customer_ids", "channel")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    segment_id: str
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    channel: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., segment_id: _Optional[str] = ..., customer_ids: _Optional[_Iterable[str]] = ..., channel: _Optional[str] = ...) -> None: ...

class StreamSegmentMembersResponse(_message.Message):
    __slots__ = ("customer_ids", "summary")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    summary: SegmentMembersSummary
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., summary: _Optional[_Union[SegmentMembersSummary, _Mapping]] = ...) -> None: ...

class SegmentMembersSummary(_message.Message):
    __slots__ = ("version", "members", "without_consent", "opted_out", "unknown_customer_ids")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_CONSENT_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    version: int
    members: int
    without_consent: int
    opted_out: int
    unknown_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., members: _Optional[int] = ..., without_consent: _Optional[int] = ..., opted_out: _Optional[int] = ..., unknown_customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...
