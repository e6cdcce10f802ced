import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from matcha.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sentiment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SENTIMENT_UNSPECIFIED: _ClassVar[Sentiment]
    SENTIMENT_NEGATIVE: _ClassVar[Sentiment]
    SENTIMENT_NEUTRAL: _ClassVar[Sentiment]
    SENTIMENT_POSITIVE: _ClassVar[Sentiment]

class SignalStrength(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_STRENGTH_UNSPECIFIED: _ClassVar[SignalStrength]
    SIGNAL_STRENGTH_NOISE: _ClassVar[SignalStrength]
    SIGNAL_STRENGTH_WEAK: _ClassVar[SignalStrength]
    SIGNAL_STRENGTH_STRONG: _ClassVar[SignalStrength]

class SourceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_STATE_UNSPECIFIED: _ClassVar[SourceState]
    SOURCE_STATE_PENDING: _ClassVar[SourceState]
    SOURCE_STATE_OK: _ClassVar[SourceState]
    SOURCE_STATE_FAILING: _ClassVar[SourceState]

class AlertType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_TYPE_UNSPECIFIED: _ClassVar[AlertType]
    ALERT_TYPE_NEW_SIGNAL: _ClassVar[AlertType]
    ALERT_TYPE_SENTIMENT_SHIFT: _ClassVar[AlertType]

class WebhookState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_STATE_UNSPECIFIED: _ClassVar[WebhookState]
    WEBHOOK_STATE_NONE: _ClassVar[WebhookState]
    WEBHOOK_STATE_PENDING: _ClassVar[WebhookState]
    WEBHOOK_STATE_DELIVERED: _ClassVar[WebhookState]
    WEBHOOK_STATE_FAILED: _ClassVar[WebhookState]
SENTIMENT_UNSPECIFIED: Sentiment
SENTIMENT_NEGATIVE: Sentiment
SENTIMENT_NEUTRAL: Sentiment
SENTIMENT_POSITIVE: Sentiment
SIGNAL_STRENGTH_UNSPECIFIED: SignalStrength
SIGNAL_STRENGTH_NOISE: SignalStrength
SIGNAL_STRENGTH_WEAK: SignalStrength
SIGNAL_STRENGTH_STRONG: SignalStrength
SOURCE_STATE_UNSPECIFIED: SourceState
SOURCE_STATE_PENDING: SourceState
SOURCE_STATE_OK: SourceState
SOURCE_STATE_FAILING: SourceState
ALERT_TYPE_UNSPECIFIED: AlertType
ALERT_TYPE_NEW_SIGNAL: AlertType
ALERT_TYPE_SENTIMENT_SHIFT: AlertType
WEBHOOK_STATE_UNSPECIFIED: WebhookState
WEBHOOK_STATE_NONE: WebhookState
WEBHOOK_STATE_PENDING: WebhookState
WEBHOOK_STATE_DELIVERED: WebhookState
WEBHOOK_STATE_FAILED: WebhookState

class SentimentTask(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TopicLabel(_message.Message):
    __slots__ = ("name", "description", "examples")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ...) -> None: ...

class TopicsTask(_message.Message):
    __slots__ = ("labels", "threshold", "single_label")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SINGLE_LABEL_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[TopicLabel]
    threshold: float
    single_label: bool
    def __init__(self, labels: _Optional[_Iterable[_Union[TopicLabel, _Mapping]]] = ..., threshold: _Optional[float] = ..., single_label: _Optional[bool] = ...) -> None: ...

class CustomTask(_message.Message):
    __slots__ = ("classifier", "version")
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    classifier: str
    version: int
    def __init__(self, classifier: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class Aspect(_message.Message):
    __slots__ = ("label", "terms")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    label: str
    terms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, label: _Optional[str] = ..., terms: _Optional[_Iterable[str]] = ...) -> None: ...

class AspectsTask(_message.Message):
    __slots__ = ("aspects",)
    ASPECTS_FIELD_NUMBER: _ClassVar[int]
    aspects: _containers.RepeatedCompositeFieldContainer[Aspect]
    def __init__(self, aspects: _Optional[_Iterable[_Union[Aspect, _Mapping]]] = ...) -> None: ...

class ClassificationTask(_message.Message):
    __slots__ = ("sentiment", "topics", "custom", "aspects")
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    ASPECTS_FIELD_NUMBER: _ClassVar[int]
    sentiment: SentimentTask
    topics: TopicsTask
    custom: CustomTask
    aspects: AspectsTask
    def __init__(self, sentiment: _Optional[_Union[SentimentTask, _Mapping]] = ..., topics: _Optional[_Union[TopicsTask, _Mapping]] = ..., custom: _Optional[_Union[CustomTask, _Mapping]] = ..., aspects: _Optional[_Union[AspectsTask, _Mapping]] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("texts", "tasks", "language")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedCompositeFieldContainer[ClassificationTask]
    language: str
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[_Union[ClassificationTask, _Mapping]]] = ..., language: _Optional[str] = ...) -> None: ...

class SentimentResult(_message.Message):
    __slots__ = ("label", "negative", "neutral", "positive", "model")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    label: Sentiment
    negative: float
    neutral: float
    positive: float
    model: _common_pb2.ModelRef
    def __init__(self, label: _Optional[_Union[Sentiment, str]] = ..., negative: _Optional[float] = ..., neutral: _Optional[float] = ..., positive: _Optional[float] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class LabelScore(_message.Message):
    __slots__ = ("label", "score", "assigned")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    assigned: bool
    def __init__(self, label: _Optional[str] = ..., score: _Optional[float] = ..., assigned: _Optional[bool] = ...) -> None: ...

class TopicsResult(_message.Message):
    __slots__ = ("labels",)
    LABELS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[LabelScore]
    def __init__(self, labels: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ...) -> None: ...

class CustomResult(_message.Message):
    __slots__ = ("classifier", "version", "label", "confidence", "scores")
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    classifier: str
    version: int
    label: str
    confidence: float
    scores: _containers.RepeatedCompositeFieldContainer[LabelScore]
    def __init__(self, classifier: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ..., confidence: _Optional[float] = ..., scores: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ...) -> None: ...

class TextSpan(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class AspectSentiment(_message.Message):
    __slots__ = ("aspect", "label", "negative", "neutral", "positive", "evidence", "model")
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    aspect: str
    label: Sentiment
    negative: float
    neutral: float
    positive: float
    evidence: _containers.RepeatedCompositeFieldContainer[TextSpan]
    model: _common_pb2.ModelRef
    def __init__(self, aspect: _Optional[str] = ..., label: _Optional[_Union[Sentiment, str]] = ..., negative: _Optional[float] = ..., neutral: _Optional[float] = ..., positive: _Optional[float] = ..., evidence: _Optional[_Iterable[_Union[TextSpan, _Mapping]]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class AspectsResult(_message.Message):
    __slots__ = ("aspects",)
    ASPECTS_FIELD_NUMBER: _ClassVar[int]
    aspects: _containers.RepeatedCompositeFieldContainer[AspectSentiment]
    def __init__(self, aspects: _Optional[_Iterable[_Union[AspectSentiment, _Mapping]]] = ...) -> None: ...

class TextClassification(_message.Message):
    __slots__ = ("language", "language_confidence", "sentiment", "topics", "custom", "aspects")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    ASPECTS_FIELD_NUMBER: _ClassVar[int]
    language: str
    language_confidence: float
    sentiment: SentimentResult
    topics: TopicsResult
    custom: _containers.RepeatedCompositeFieldContainer[CustomResult]
    aspects: AspectsResult
    def __init__(self, language: _Optional[str] = ..., language_confidence: _Optional[float] = ..., sentiment: _Optional[_Union[SentimentResult, _Mapping]] = ..., topics: _Optional[_Union[TopicsResult, _Mapping]] = ..., custom: _Optional[_Iterable[_Union[CustomResult, _Mapping]]] = ..., aspects: _Optional[_Union[AspectsResult, _Mapping]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results", "models")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TextClassification]
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.ModelRef]
    def __init__(self, results: _Optional[_Iterable[_Union[TextClassification, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[_common_pb2.ModelRef, _Mapping]]] = ...) -> None: ...

class LabeledExample(_message.Message):
    __slots__ = ("id", "text", "label", "policy")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    label: str
    policy: _common_pb2.RecordPolicy
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., label: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ...) -> None: ...

class ExampleCollection(_message.Message):
    __slots__ = ("collection", "filter", "label_field", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: _struct_pb2.Struct
    label_field: str
    limit: int
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., label_field: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class LabelMetrics(_message.Message):
    __slots__ = ("label", "precision", "recall", "f1", "support")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    label: str
    precision: float
    recall: float
    f1: float
    support: int
    def __init__(self, label: _Optional[str] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., support: _Optional[int] = ...) -> None: ...

class ConfusionRow(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, counts: _Optional[_Iterable[int]] = ...) -> None: ...

class ConfusionMatrix(_message.Message):
    __slots__ = ("labels", "rows")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[ConfusionRow]
    def __init__(self, labels: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[ConfusionRow, _Mapping]]] = ...) -> None: ...

class EvaluationMetrics(_message.Message):
    __slots__ = ("example_count", "accuracy", "macro_f1", "per_label", "confusion", "macro_f1_ci_low", "macro_f1_ci_high")
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_FIELD_NUMBER: _ClassVar[int]
    PER_LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    example_count: int
    accuracy: float
    macro_f1: float
    per_label: _containers.RepeatedCompositeFieldContainer[LabelMetrics]
    confusion: ConfusionMatrix
    macro_f1_ci_low: float
    macro_f1_ci_high: float
    def __init__(self, example_count: _Optional[int] = ..., accuracy: _Optional[float] = ..., macro_f1: _Optional[float] = ..., per_label: _Optional[_Iterable[_Union[LabelMetrics, _Mapping]]] = ..., confusion: _Optional[_Union[ConfusionMatrix, _Mapping]] = ..., macro_f1_ci_low: _Optional[float] = ..., macro_f1_ci_high: _Optional[float] = ...) -> None: ...

class ClassifierLineage(_message.Message):
    __slots__ = ("training_set_sha256", "example_count", "example_ids", "collection", "embedding_model", "train_subject", "seed", "collection_filter", "label_field")
    TRAINING_SET_SHA256_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FILTER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    training_set_sha256: str
    example_count: int
    example_ids: _containers.RepeatedScalarFieldContainer[str]
    collection: str
    embedding_model: _common_pb2.ModelRef
    train_subject: str
    seed: int
    collection_filter: _struct_pb2.Struct
    label_field: str
    def __init__(self, training_set_sha256: _Optional[str] = ..., example_count: _Optional[int] = ..., example_ids: _Optional[_Iterable[str]] = ..., collection: _Optional[str] = ..., embedding_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., train_subject: _Optional[str] = ..., seed: _Optional[int] = ..., collection_filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., label_field: _Optional[str] = ...) -> None: ...

class Classifier(_message.Message):
    __slots__ = ("name", "version", "description", "labels", "method", "model", "holdout_metrics", "lineage", "create_time", "withdraw_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_METRICS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WITHDRAW_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    description: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    method: str
    model: _common_pb2.ModelRef
    holdout_metrics: EvaluationMetrics
    lineage: ClassifierLineage
    create_time: _timestamp_pb2.Timestamp
    withdraw_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., holdout_metrics: _Optional[_Union[EvaluationMetrics, _Mapping]] = ..., lineage: _Optional[_Union[ClassifierLineage, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., withdraw_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainClassifierRequest(_message.Message):
    __slots__ = ("name", "description", "examples", "collection", "holdout_fraction", "seed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    examples: _containers.RepeatedCompositeFieldContainer[LabeledExample]
    collection: ExampleCollection
    holdout_fraction: float
    seed: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., examples: _Optional[_Iterable[_Union[LabeledExample, _Mapping]]] = ..., collection: _Optional[_Union[ExampleCollection, _Mapping]] = ..., holdout_fraction: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class TrainClassifierResponse(_message.Message):
    __slots__ = ("classifier",)
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    classifier: Classifier
    def __init__(self, classifier: _Optional[_Union[Classifier, _Mapping]] = ...) -> None: ...

class EvaluateClassifierRequest(_message.Message):
    __slots__ = ("name", "version", "examples", "collection")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    examples: _containers.RepeatedCompositeFieldContainer[LabeledExample]
    collection: ExampleCollection
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., examples: _Optional[_Iterable[_Union[LabeledExample, _Mapping]]] = ..., collection: _Optional[_Union[ExampleCollection, _Mapping]] = ...) -> None: ...

class EvaluateClassifierResponse(_message.Message):
    __slots__ = ("metrics", "version", "model")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    metrics: EvaluationMetrics
    version: int
    model: _common_pb2.ModelRef
    def __init__(self, metrics: _Optional[_Union[EvaluationMetrics, _Mapping]] = ..., version: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class GetClassifierRequest(_message.Message):
    __slots__ = ("name", "version", "include_example_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EXAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    include_example_ids: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., include_example_ids: _Optional[bool] = ...) -> None: ...

class GetClassifierResponse(_message.Message):
    __slots__ = ("classifier",)
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    classifier: Classifier
    def __init__(self, classifier: _Optional[_Union[Classifier, _Mapping]] = ...) -> None: ...

class ListClassifiersRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListClassifiersResponse(_message.Message):
    __slots__ = ("classifiers", "next_page_token")
    CLASSIFIERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    classifiers: _containers.RepeatedCompositeFieldContainer[Classifier]
    next_page_token: str
    def __init__(self, classifiers: _Optional[_Iterable[_Union[Classifier, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteClassifierRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteClassifierResponse(_message.Message):
    __slots__ = ("deleted_versions",)
    DELETED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    deleted_versions: int
    def __init__(self, deleted_versions: _Optional[int] = ...) -> None: ...

class EraseSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class EraseSubjectResponse(_message.Message):
    __slots__ = ("erased_examples", "erased_classifier_heads", "erased_watch_posts")
    ERASED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ERASED_CLASSIFIER_HEADS_FIELD_NUMBER: _ClassVar[int]
    ERASED_WATCH_POSTS_FIELD_NUMBER: _ClassVar[int]
    erased_examples: int
    erased_classifier_heads: int
    erased_watch_posts: int
    def __init__(self, erased_examples: _Optional[int] = ..., erased_classifier_heads: _Optional[int] = ..., erased_watch_posts: _Optional[int] = ...) -> None: ...

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

class Post(_message.Message):
    __slots__ = ("id", "text", "time", "source")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    time: _timestamp_pb2.Timestamp
    source: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class SignalThresholds(_message.Message):
    __slots__ = ("min_topic_size", "strong_share", "min_active_windows", "min_growth_slope")
    MIN_TOPIC_SIZE_FIELD_NUMBER: _ClassVar[int]
    STRONG_SHARE_FIELD_NUMBER: _ClassVar[int]
    MIN_ACTIVE_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    MIN_GROWTH_SLOPE_FIELD_NUMBER: _ClassVar[int]
    min_topic_size: int
    strong_share: float
    min_active_windows: int
    min_growth_slope: float
    def __init__(self, min_topic_size: _Optional[int] = ..., strong_share: _Optional[float] = ..., min_active_windows: _Optional[int] = ..., min_growth_slope: _Optional[float] = ...) -> None: ...

class PostCollection(_message.Message):
    __slots__ = ("collection", "filter", "time_field", "source_field", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: _struct_pb2.Struct
    time_field: str
    source_field: str
    limit: int
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., time_field: _Optional[str] = ..., source_field: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DetectSignalsRequest(_message.Message):
    __slots__ = ("posts", "collection", "window", "look_back", "end_time", "thresholds", "max_topics", "representative_count", "seed", "skip_sentiment")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LOOK_BACK_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOPICS_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SKIP_SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedCompositeFieldContainer[Post]
    collection: PostCollection
    window: _duration_pb2.Duration
    look_back: _duration_pb2.Duration
    end_time: _timestamp_pb2.Timestamp
    thresholds: SignalThresholds
    max_topics: int
    representative_count: int
    seed: int
    skip_sentiment: bool
    def __init__(self, posts: _Optional[_Iterable[_Union[Post, _Mapping]]] = ..., collection: _Optional[_Union[PostCollection, _Mapping]] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., look_back: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., thresholds: _Optional[_Union[SignalThresholds, _Mapping]] = ..., max_topics: _Optional[int] = ..., representative_count: _Optional[int] = ..., seed: _Optional[int] = ..., skip_sentiment: _Optional[bool] = ...) -> None: ...

class WindowCount(_message.Message):
    __slots__ = ("start_time", "count")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    count: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class SentimentMix(_message.Message):
    __slots__ = ("negative", "neutral", "positive")
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    negative: float
    neutral: float
    positive: float
    def __init__(self, negative: _Optional[float] = ..., neutral: _Optional[float] = ..., positive: _Optional[float] = ...) -> None: ...

class RepresentativePost(_message.Message):
    __slots__ = ("id", "text", "time", "source", "centrality")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CENTRALITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    time: _timestamp_pb2.Timestamp
    source: str
    centrality: float
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., centrality: _Optional[float] = ...) -> None: ...

class SignalTopic(_message.Message):
    __slots__ = ("id", "label", "terms", "strength", "post_count", "share", "counts", "growth_slope", "first_seen", "last_seen", "source_count", "source_diversity", "sentiment_mix", "sentiment_shift", "representative_posts")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    GROWTH_SLOPE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_MIX_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_SHIFT_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_POSTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    terms: _containers.RepeatedScalarFieldContainer[str]
    strength: SignalStrength
    post_count: int
    share: float
    counts: _containers.RepeatedCompositeFieldContainer[WindowCount]
    growth_slope: float
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    source_count: int
    source_diversity: float
    sentiment_mix: SentimentMix
    sentiment_shift: float
    representative_posts: _containers.RepeatedCompositeFieldContainer[RepresentativePost]
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., terms: _Optional[_Iterable[str]] = ..., strength: _Optional[_Union[SignalStrength, str]] = ..., post_count: _Optional[int] = ..., share: _Optional[float] = ..., counts: _Optional[_Iterable[_Union[WindowCount, _Mapping]]] = ..., growth_slope: _Optional[float] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_count: _Optional[int] = ..., source_diversity: _Optional[float] = ..., sentiment_mix: _Optional[_Union[SentimentMix, _Mapping]] = ..., sentiment_shift: _Optional[float] = ..., representative_posts: _Optional[_Iterable[_Union[RepresentativePost, _Mapping]]] = ...) -> None: ...

class DetectSignalsResponse(_message.Message):
    __slots__ = ("topics", "post_count", "unclustered_post_count", "start_time", "end_time", "models")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNCLUSTERED_POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedCompositeFieldContainer[SignalTopic]
    post_count: int
    unclustered_post_count: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.ModelRef]
    def __init__(self, topics: _Optional[_Iterable[_Union[SignalTopic, _Mapping]]] = ..., post_count: _Optional[int] = ..., unclustered_post_count: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., models: _Optional[_Iterable[_Union[_common_pb2.ModelRef, _Mapping]]] = ...) -> None: ...

class WatchSource(_message.Message):
    __slots__ = ("name", "push", "drop_folder", "feed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    DROP_FOLDER_FIELD_NUMBER: _ClassVar[int]
    FEED_FIELD_NUMBER: _ClassVar[int]
    name: str
    push: PushSource
    drop_folder: DropFolderSource
    feed: FeedSource
    def __init__(self, name: _Optional[str] = ..., push: _Optional[_Union[PushSource, _Mapping]] = ..., drop_folder: _Optional[_Union[DropFolderSource, _Mapping]] = ..., feed: _Optional[_Union[FeedSource, _Mapping]] = ...) -> None: ...

class PushSource(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DropFolderSource(_message.Message):
    __slots__ = ("path", "poll_interval")
    PATH_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    path: str
    poll_interval: _duration_pb2.Duration
    def __init__(self, path: _Optional[str] = ..., poll_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FeedSource(_message.Message):
    __slots__ = ("url", "poll_interval")
    URL_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    url: str
    poll_interval: _duration_pb2.Duration
    def __init__(self, url: _Optional[str] = ..., poll_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TrackedTopic(_message.Message):
    __slots__ = ("name", "terms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    terms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., terms: _Optional[_Iterable[str]] = ...) -> None: ...

class SourceStatus(_message.Message):
    __slots__ = ("source", "state", "accepted_posts", "duplicate_posts", "rejected_posts", "last_rejection", "last_error", "last_attempt_time", "last_success_time")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_POSTS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_POSTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_POSTS_FIELD_NUMBER: _ClassVar[int]
    LAST_REJECTION_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_TIME_FIELD_NUMBER: _ClassVar[int]
    source: str
    state: SourceState
    accepted_posts: int
    duplicate_posts: int
    rejected_posts: int
    last_rejection: str
    last_error: str
    last_attempt_time: _timestamp_pb2.Timestamp
    last_success_time: _timestamp_pb2.Timestamp
    def __init__(self, source: _Optional[str] = ..., state: _Optional[_Union[SourceState, str]] = ..., accepted_posts: _Optional[int] = ..., duplicate_posts: _Optional[int] = ..., rejected_posts: _Optional[int] = ..., last_rejection: _Optional[str] = ..., last_error: _Optional[str] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_success_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Watch(_message.Message):
    __slots__ = ("name", "description", "sources", "window", "look_back_windows", "start_time", "grace", "tracked_topics", "thresholds", "sentiment_shift_threshold", "min_topic_posts", "webhook_url", "create_time", "creator_subject", "next_window_end", "source_statuses", "post_count", "report_count", "last_alert_sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LOOK_BACK_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    GRACE_FIELD_NUMBER: _ClassVar[int]
    TRACKED_TOPICS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_SHIFT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_TOPIC_POSTS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATOR_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NEXT_WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    REPORT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ALERT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    sources: _containers.RepeatedCompositeFieldContainer[WatchSource]
    window: _duration_pb2.Duration
    look_back_windows: int
    start_time: _timestamp_pb2.Timestamp
    grace: _duration_pb2.Duration
    tracked_topics: _containers.RepeatedCompositeFieldContainer[TrackedTopic]
    thresholds: SignalThresholds
    sentiment_shift_threshold: float
    min_topic_posts: int
    webhook_url: str
    create_time: _timestamp_pb2.Timestamp
    creator_subject: str
    next_window_end: _timestamp_pb2.Timestamp
    source_statuses: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    post_count: int
    report_count: int
    last_alert_sequence: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[WatchSource, _Mapping]]] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., look_back_windows: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., grace: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., tracked_topics: _Optional[_Iterable[_Union[TrackedTopic, _Mapping]]] = ..., thresholds: _Optional[_Union[SignalThresholds, _Mapping]] = ..., sentiment_shift_threshold: _Optional[float] = ..., min_topic_posts: _Optional[int] = ..., webhook_url: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., creator_subject: _Optional[str] = ..., next_window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_statuses: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ..., post_count: _Optional[int] = ..., report_count: _Optional[int] = ..., last_alert_sequence: _Optional[int] = ...) -> None: ...

class CreateWatchRequest(_message.Message):
    __slots__ = ("watch",)
    WATCH_FIELD_NUMBER: _ClassVar[int]
    watch: Watch
    def __init__(self, watch: _Optional[_Union[Watch, _Mapping]] = ...) -> None: ...

class CreateWatchResponse(_message.Message):
    __slots__ = ("watch", "webhook_secret")
    WATCH_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SECRET_FIELD_NUMBER: _ClassVar[int]
    watch: Watch
    webhook_secret: str
    def __init__(self, watch: _Optional[_Union[Watch, _Mapping]] = ..., webhook_secret: _Optional[str] = ...) -> None: ...

class GetWatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetWatchResponse(_message.Message):
    __slots__ = ("watch",)
    WATCH_FIELD_NUMBER: _ClassVar[int]
    watch: Watch
    def __init__(self, watch: _Optional[_Union[Watch, _Mapping]] = ...) -> None: ...

class ListWatchesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWatchesResponse(_message.Message):
    __slots__ = ("watches", "next_page_token")
    WATCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    watches: _containers.RepeatedCompositeFieldContainer[Watch]
    next_page_token: str
    def __init__(self, watches: _Optional[_Iterable[_Union[Watch, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteWatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteWatchResponse(_message.Message):
    __slots__ = ("deleted_posts", "deleted_reports", "deleted_alerts")
    DELETED_POSTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_REPORTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_ALERTS_FIELD_NUMBER: _ClassVar[int]
    deleted_posts: int
    deleted_reports: int
    deleted_alerts: int
    def __init__(self, deleted_posts: _Optional[int] = ..., deleted_reports: _Optional[int] = ..., deleted_alerts: _Optional[int] = ...) -> None: ...

class WatchPost(_message.Message):
    __slots__ = ("id", "text", "time", "source", "policy")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    time: _timestamp_pb2.Timestamp
    source: str
    policy: _common_pb2.RecordPolicy
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ...) -> None: ...

class IngestPostsRequest(_message.Message):
    __slots__ = ("watch", "posts", "source")
    WATCH_FIELD_NUMBER: _ClassVar[int]
    POSTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    watch: str
    posts: _containers.RepeatedCompositeFieldContainer[WatchPost]
    source: str
    def __init__(self, watch: _Optional[str] = ..., posts: _Optional[_Iterable[_Union[WatchPost, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class IngestPostsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "late")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    late: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., late: _Optional[int] = ...) -> None: ...

class TrackedTopicSentiment(_message.Message):
    __slots__ = ("name", "post_count", "sentiment_mix", "balance", "baseline_post_count", "baseline_balance", "shift", "terms", "representative_posts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_MIX_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_BALANCE_FIELD_NUMBER: _ClassVar[int]
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_POSTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    post_count: int
    sentiment_mix: SentimentMix
    balance: float
    baseline_post_count: int
    baseline_balance: float
    shift: float
    terms: _containers.RepeatedScalarFieldContainer[str]
    representative_posts: _containers.RepeatedCompositeFieldContainer[RepresentativePost]
    def __init__(self, name: _Optional[str] = ..., post_count: _Optional[int] = ..., sentiment_mix: _Optional[_Union[SentimentMix, _Mapping]] = ..., balance: _Optional[float] = ..., baseline_post_count: _Optional[int] = ..., baseline_balance: _Optional[float] = ..., shift: _Optional[float] = ..., terms: _Optional[_Iterable[str]] = ..., representative_posts: _Optional[_Iterable[_Union[RepresentativePost, _Mapping]]] = ...) -> None: ...

class WatchReport(_message.Message):
    __slots__ = ("watch", "window_start", "window_end", "close_time", "window_post_count", "signals", "tracked_topics", "alert_count", "source_statuses", "data_class")
    WATCH_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_POST_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    TRACKED_TOPICS_FIELD_NUMBER: _ClassVar[int]
    ALERT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    watch: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    window_post_count: int
    signals: DetectSignalsResponse
    tracked_topics: _containers.RepeatedCompositeFieldContainer[TrackedTopicSentiment]
    alert_count: int
    source_statuses: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    data_class: _common_pb2.DataClass
    def __init__(self, watch: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_post_count: _Optional[int] = ..., signals: _Optional[_Union[DetectSignalsResponse, _Mapping]] = ..., tracked_topics: _Optional[_Iterable[_Union[TrackedTopicSentiment, _Mapping]]] = ..., alert_count: _Optional[int] = ..., source_statuses: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ...) -> None: ...

class ListWatchReportsRequest(_message.Message):
    __slots__ = ("watch", "page_size", "page_token")
    WATCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    watch: str
    page_size: int
    page_token: str
    def __init__(self, watch: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWatchReportsResponse(_message.Message):
    __slots__ = ("reports", "next_page_token", "withheld_count")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_COUNT_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[WatchReport]
    next_page_token: str
    withheld_count: int
    def __init__(self, reports: _Optional[_Iterable[_Union[WatchReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., withheld_count: _Optional[int] = ...) -> None: ...

class WatchAlert(_message.Message):
    __slots__ = ("sequence", "watch", "type", "create_time", "window_start", "window_end", "summary", "topic", "previous_strength", "tracked_topic", "webhook_state", "webhook_attempts", "data_class")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    TRACKED_TOPIC_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_STATE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DATA_CLASS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    watch: str
    type: AlertType
    create_time: _timestamp_pb2.Timestamp
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    summary: str
    topic: SignalTopic
    previous_strength: SignalStrength
    tracked_topic: TrackedTopicSentiment
    webhook_state: WebhookState
    webhook_attempts: int
    data_class: _common_pb2.DataClass
    def __init__(self, sequence: _Optional[int] = ..., watch: _Optional[str] = ..., type: _Optional[_Union[AlertType, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[str] = ..., topic: _Optional[_Union[SignalTopic, _Mapping]] = ..., previous_strength: _Optional[_Union[SignalStrength, str]] = ..., tracked_topic: _Optional[_Union[TrackedTopicSentiment, _Mapping]] = ..., webhook_state: _Optional[_Union[WebhookState, str]] = ..., webhook_attempts: _Optional[int] = ..., data_class: _Optional[_Union[_common_pb2.DataClass, str]] = ...) -> None: ...

class WatchAlertsRequest(_message.Message):
    __slots__ = ("watch", "after_sequence", "from_start")
    WATCH_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    watch: str
    after_sequence: int
    from_start: bool
    def __init__(self, watch: _Optional[str] = ..., after_sequence: _Optional[int] = ..., from_start: _Optional[bool] = ...) -> None: ...

class WatchAlertsResponse(_message.Message):
    __slots__ = ("alert",)
    ALERT_FIELD_NUMBER: _ClassVar[int]
    alert: WatchAlert
    def __init__(self, alert: _Optional[_Union[WatchAlert, _Mapping]] = ...) -> None: ...
