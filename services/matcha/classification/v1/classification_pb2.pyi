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
SENTIMENT_UNSPECIFIED: Sentiment
SENTIMENT_NEGATIVE: Sentiment
SENTIMENT_NEUTRAL: Sentiment
SENTIMENT_POSITIVE: Sentiment
SIGNAL_STRENGTH_UNSPECIFIED: SignalStrength
SIGNAL_STRENGTH_NOISE: SignalStrength
SIGNAL_STRENGTH_WEAK: SignalStrength
SIGNAL_STRENGTH_STRONG: SignalStrength

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

class ClassificationTask(_message.Message):
    __slots__ = ("sentiment", "topics", "custom")
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    sentiment: SentimentTask
    topics: TopicsTask
    custom: CustomTask
    def __init__(self, sentiment: _Optional[_Union[SentimentTask, _Mapping]] = ..., topics: _Optional[_Union[TopicsTask, _Mapping]] = ..., custom: _Optional[_Union[CustomTask, _Mapping]] = ...) -> None: ...

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

class TextClassification(_message.Message):
    __slots__ = ("language", "language_confidence", "sentiment", "topics", "custom")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    language: str
    language_confidence: float
    sentiment: SentimentResult
    topics: TopicsResult
    custom: _containers.RepeatedCompositeFieldContainer[CustomResult]
    def __init__(self, language: _Optional[str] = ..., language_confidence: _Optional[float] = ..., sentiment: _Optional[_Union[SentimentResult, _Mapping]] = ..., topics: _Optional[_Union[TopicsResult, _Mapping]] = ..., custom: _Optional[_Iterable[_Union[CustomResult, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("erased_examples", "erased_classifier_heads")
    ERASED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ERASED_CLASSIFIER_HEADS_FIELD_NUMBER: _ClassVar[int]
    erased_examples: int
    erased_classifier_heads: int
    def __init__(self, erased_examples: _Optional[int] = ..., erased_classifier_heads: _Optional[int] = ...) -> None: ...

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
