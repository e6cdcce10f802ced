import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
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

class ReviewStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_STATUS_UNSPECIFIED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_PENDING: _ClassVar[ReviewStatus]
    REVIEW_STATUS_APPROVED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_REJECTED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_CHANGES_REQUESTED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_REVISED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_EXPIRED: _ClassVar[ReviewStatus]

class DecisionOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_OUTCOME_UNSPECIFIED: _ClassVar[DecisionOutcome]
    DECISION_OUTCOME_APPROVE: _ClassVar[DecisionOutcome]
    DECISION_OUTCOME_REJECT: _ClassVar[DecisionOutcome]
    DECISION_OUTCOME_REQUEST_CHANGES: _ClassVar[DecisionOutcome]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_LANDING_PAGE: _ClassVar[Channel]
    CHANNEL_SOCIAL_POST: _ClassVar[Channel]
    CHANNEL_AD: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_PUSH: _ClassVar[Channel]
    CHANNEL_OTHER: _ClassVar[Channel]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_URGENT: _ClassVar[Priority]

class ContentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTENT_FORMAT_UNSPECIFIED: _ClassVar[ContentFormat]
    CONTENT_FORMAT_PLAIN_TEXT: _ClassVar[ContentFormat]
    CONTENT_FORMAT_MARKDOWN: _ClassVar[ContentFormat]
    CONTENT_FORMAT_HTML: _ClassVar[ContentFormat]

class VersionOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_ORIGIN_UNSPECIFIED: _ClassVar[VersionOrigin]
    VERSION_ORIGIN_AI_DRAFT: _ClassVar[VersionOrigin]
    VERSION_ORIGIN_HUMAN_EDIT: _ClassVar[VersionOrigin]
    VERSION_ORIGIN_REGENERATED: _ClassVar[VersionOrigin]

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_PENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_FAILED: _ClassVar[DeliveryState]

class ReviewEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_EVENT_TYPE_UNSPECIFIED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_SUBMITTED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_CLAIMED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_RELEASED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_DECIDED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_REVISED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_EXPIRED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_RUN_SIGNALLED: _ClassVar[ReviewEventType]
    REVIEW_EVENT_TYPE_PUBLISHED: _ClassVar[ReviewEventType]

class OutcomeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_TYPE_UNSPECIFIED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_DELIVERED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_OPENED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_CLICKED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_CONVERTED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_UNSUBSCRIBED: _ClassVar[OutcomeType]
REVIEW_STATUS_UNSPECIFIED: ReviewStatus
REVIEW_STATUS_PENDING: ReviewStatus
REVIEW_STATUS_APPROVED: ReviewStatus
REVIEW_STATUS_REJECTED: ReviewStatus
REVIEW_STATUS_CHANGES_REQUESTED: ReviewStatus
REVIEW_STATUS_REVISED: ReviewStatus
REVIEW_STATUS_EXPIRED: ReviewStatus
DECISION_OUTCOME_UNSPECIFIED: DecisionOutcome
DECISION_OUTCOME_APPROVE: DecisionOutcome
DECISION_OUTCOME_REJECT: DecisionOutcome
DECISION_OUTCOME_REQUEST_CHANGES: DecisionOutcome
CHANNEL_UNSPECIFIED: Channel
CHANNEL_EMAIL: Channel
CHANNEL_LANDING_PAGE: Channel
CHANNEL_SOCIAL_POST: Channel
CHANNEL_AD: Channel
CHANNEL_SMS: Channel
CHANNEL_PUSH: Channel
CHANNEL_OTHER: Channel
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_NORMAL: Priority
PRIORITY_HIGH: Priority
PRIORITY_URGENT: Priority
CONTENT_FORMAT_UNSPECIFIED: ContentFormat
CONTENT_FORMAT_PLAIN_TEXT: ContentFormat
CONTENT_FORMAT_MARKDOWN: ContentFormat
CONTENT_FORMAT_HTML: ContentFormat
VERSION_ORIGIN_UNSPECIFIED: VersionOrigin
VERSION_ORIGIN_AI_DRAFT: VersionOrigin
VERSION_ORIGIN_HUMAN_EDIT: VersionOrigin
VERSION_ORIGIN_REGENERATED: VersionOrigin
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_PENDING: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_FAILED: DeliveryState
REVIEW_EVENT_TYPE_UNSPECIFIED: ReviewEventType
REVIEW_EVENT_TYPE_SUBMITTED: ReviewEventType
REVIEW_EVENT_TYPE_CLAIMED: ReviewEventType
REVIEW_EVENT_TYPE_RELEASED: ReviewEventType
REVIEW_EVENT_TYPE_DECIDED: ReviewEventType
REVIEW_EVENT_TYPE_REVISED: ReviewEventType
REVIEW_EVENT_TYPE_EXPIRED: ReviewEventType
REVIEW_EVENT_TYPE_RUN_SIGNALLED: ReviewEventType
REVIEW_EVENT_TYPE_PUBLISHED: ReviewEventType
OUTCOME_TYPE_UNSPECIFIED: OutcomeType
OUTCOME_TYPE_DELIVERED: OutcomeType
OUTCOME_TYPE_OPENED: OutcomeType
OUTCOME_TYPE_CLICKED: OutcomeType
OUTCOME_TYPE_CONVERTED: OutcomeType
OUTCOME_TYPE_UNSUBSCRIBED: OutcomeType

class Audience(_message.Message):
    __slots__ = ("segmentation", "segmentation_version", "segment_id", "persona")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    segmentation: str
    segmentation_version: int
    segment_id: str
    persona: str
    def __init__(self, segmentation: _Optional[str] = ..., segmentation_version: _Optional[int] = ..., segment_id: _Optional[str] = ..., persona: _Optional[str] = ...) -> None: ...

class RunResume(_message.Message):
    __slots__ = ("run_id", "signal_key", "capability")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_KEY_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    signal_key: str
    capability: str
    def __init__(self, run_id: _Optional[str] = ..., signal_key: _Optional[str] = ..., capability: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("state", "attempts", "last_error", "deliver_time")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    state: DeliveryState
    attempts: int
    last_error: _status_pb2.Status
    deliver_time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[DeliveryState, str]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ContentVersion(_message.Message):
    __slots__ = ("number", "title", "content", "content_sha256", "origin", "author_subject", "provenance", "comment", "diff_from_previous", "create_time")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    DIFF_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    number: int
    title: str
    content: str
    content_sha256: str
    origin: VersionOrigin
    author_subject: str
    provenance: _common_pb2.Provenance
    comment: str
    diff_from_previous: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, number: _Optional[int] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., content_sha256: _Optional[str] = ..., origin: _Optional[_Union[VersionOrigin, str]] = ..., author_subject: _Optional[str] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., comment: _Optional[str] = ..., diff_from_previous: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("outcome", "comment", "reviewer_subject", "role", "decide_time", "version", "content_sha256", "provenance_sha256")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    outcome: DecisionOutcome
    comment: str
    reviewer_subject: str
    role: str
    decide_time: _timestamp_pb2.Timestamp
    version: int
    content_sha256: str
    provenance_sha256: str
    def __init__(self, outcome: _Optional[_Union[DecisionOutcome, str]] = ..., comment: _Optional[str] = ..., reviewer_subject: _Optional[str] = ..., role: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., content_sha256: _Optional[str] = ..., provenance_sha256: _Optional[str] = ...) -> None: ...

class ReviewClaim(_message.Message):
    __slots__ = ("reviewer_subject", "claim_time", "expire_time")
    REVIEWER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CLAIM_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    reviewer_subject: str
    claim_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, reviewer_subject: _Optional[str] = ..., claim_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SinkDelivery(_message.Message):
    __slots__ = ("sink", "delivery")
    SINK_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    sink: str
    delivery: Delivery
    def __init__(self, sink: _Optional[str] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class Publication(_message.Message):
    __slots__ = ("id", "version", "content_sha256", "publisher_subject", "publish_time", "sinks", "trace_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    SINKS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    content_sha256: str
    publisher_subject: str
    publish_time: _timestamp_pb2.Timestamp
    sinks: _containers.RepeatedCompositeFieldContainer[SinkDelivery]
    trace_id: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ..., content_sha256: _Optional[str] = ..., publisher_subject: _Optional[str] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sinks: _Optional[_Iterable[_Union[SinkDelivery, _Mapping]]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class ReviewItem(_message.Message):
    __slots__ = ("id", "status", "version", "title", "content", "content_sha256", "format", "channel", "target", "audience", "provenance", "voice_score", "flags", "priority", "due_time", "four_eyes", "submitter_subject", "claim", "versions", "decisions", "approved_version", "approved_sha256", "approved_diff", "resume", "resume_delivery", "publication", "create_time", "update_time", "subject_ids", "approved_provenance_sha256")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    VOICE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    FOUR_EYES_FIELD_NUMBER: _ClassVar[int]
    SUBMITTER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    APPROVED_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPROVED_SHA256_FIELD_NUMBER: _ClassVar[int]
    APPROVED_DIFF_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    RESUME_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    PUBLICATION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    APPROVED_PROVENANCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: ReviewStatus
    version: int
    title: str
    content: str
    content_sha256: str
    format: ContentFormat
    channel: Channel
    target: str
    audience: Audience
    provenance: _common_pb2.Provenance
    voice_score: float
    flags: _containers.RepeatedCompositeFieldContainer[_common_pb2.ContentFlag]
    priority: Priority
    due_time: _timestamp_pb2.Timestamp
    four_eyes: bool
    submitter_subject: str
    claim: ReviewClaim
    versions: _containers.RepeatedCompositeFieldContainer[ContentVersion]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    approved_version: int
    approved_sha256: str
    approved_diff: str
    resume: RunResume
    resume_delivery: Delivery
    publication: Publication
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    approved_provenance_sha256: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[ReviewStatus, str]] = ..., version: _Optional[int] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., content_sha256: _Optional[str] = ..., format: _Optional[_Union[ContentFormat, str]] = ..., channel: _Optional[_Union[Channel, str]] = ..., target: _Optional[str] = ..., audience: _Optional[_Union[Audience, _Mapping]] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., voice_score: _Optional[float] = ..., flags: _Optional[_Iterable[_Union[_common_pb2.ContentFlag, _Mapping]]] = ..., priority: _Optional[_Union[Priority, str]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., four_eyes: _Optional[bool] = ..., submitter_subject: _Optional[str] = ..., claim: _Optional[_Union[ReviewClaim, _Mapping]] = ..., versions: _Optional[_Iterable[_Union[ContentVersion, _Mapping]]] = ..., decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., approved_version: _Optional[int] = ..., approved_sha256: _Optional[str] = ..., approved_diff: _Optional[str] = ..., resume: _Optional[_Union[RunResume, _Mapping]] = ..., resume_delivery: _Optional[_Union[Delivery, _Mapping]] = ..., publication: _Optional[_Union[Publication, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject_ids: _Optional[_Iterable[str]] = ..., approved_provenance_sha256: _Optional[str] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("title", "content", "format", "channel", "target", "audience", "provenance", "voice_score", "flags", "priority", "due_time", "four_eyes", "resume", "quality_attestation", "subject_ids")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    VOICE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    FOUR_EYES_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    QUALITY_ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    title: str
    content: str
    format: ContentFormat
    channel: Channel
    target: str
    audience: Audience
    provenance: _common_pb2.Provenance
    voice_score: float
    flags: _containers.RepeatedCompositeFieldContainer[_common_pb2.ContentFlag]
    priority: Priority
    due_time: _timestamp_pb2.Timestamp
    four_eyes: bool
    resume: RunResume
    quality_attestation: str
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, title: _Optional[str] = ..., content: _Optional[str] = ..., format: _Optional[_Union[ContentFormat, str]] = ..., channel: _Optional[_Union[Channel, str]] = ..., target: _Optional[str] = ..., audience: _Optional[_Union[Audience, _Mapping]] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., voice_score: _Optional[float] = ..., flags: _Optional[_Iterable[_Union[_common_pb2.ContentFlag, _Mapping]]] = ..., priority: _Optional[_Union[Priority, str]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., four_eyes: _Optional[bool] = ..., resume: _Optional[_Union[RunResume, _Mapping]] = ..., quality_attestation: _Optional[str] = ..., subject_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("item", "created")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    created: bool
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("statuses", "channel", "segment_id", "due_before", "claimed_by", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[ReviewStatus]
    channel: Channel
    segment_id: str
    due_before: _timestamp_pb2.Timestamp
    claimed_by: str
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[ReviewStatus, str]]] = ..., channel: _Optional[_Union[Channel, str]] = ..., segment_id: _Optional[str] = ..., due_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., claimed_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReviewItem]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[ReviewItem, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("item_id",)
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    def __init__(self, item_id: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("item", "history")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    history: _containers.RepeatedCompositeFieldContainer[ReviewEvent]
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ..., history: _Optional[_Iterable[_Union[ReviewEvent, _Mapping]]] = ...) -> None: ...

class ClaimRequest(_message.Message):
    __slots__ = ("item_id", "ttl")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    ttl: _duration_pb2.Duration
    def __init__(self, item_id: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ClaimResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("item_id",)
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    def __init__(self, item_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ...) -> None: ...

class ContentEdit(_message.Message):
    __slots__ = ("title", "content")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    title: str
    content: str
    def __init__(self, title: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("item_id", "version", "outcome", "comment", "edit")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    EDIT_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    version: int
    outcome: DecisionOutcome
    comment: str
    edit: ContentEdit
    def __init__(self, item_id: _Optional[str] = ..., version: _Optional[int] = ..., outcome: _Optional[_Union[DecisionOutcome, str]] = ..., comment: _Optional[str] = ..., edit: _Optional[_Union[ContentEdit, _Mapping]] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("item", "decision")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    decision: Decision
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class ReviseRequest(_message.Message):
    __slots__ = ("item_id", "version", "title", "content", "provenance", "comment", "resume", "flags", "voice_score")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    VOICE_SCORE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    version: int
    title: str
    content: str
    provenance: _common_pb2.Provenance
    comment: str
    resume: RunResume
    flags: _containers.RepeatedCompositeFieldContainer[_common_pb2.ContentFlag]
    voice_score: float
    def __init__(self, item_id: _Optional[str] = ..., version: _Optional[int] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., comment: _Optional[str] = ..., resume: _Optional[_Union[RunResume, _Mapping]] = ..., flags: _Optional[_Iterable[_Union[_common_pb2.ContentFlag, _Mapping]]] = ..., voice_score: _Optional[float] = ...) -> None: ...

class ReviseResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("item_id", "content_sha256", "sinks", "audience", "provenance_sha256")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SINKS_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    content_sha256: str
    sinks: _containers.RepeatedScalarFieldContainer[str]
    audience: AudienceSpec
    provenance_sha256: str
    def __init__(self, item_id: _Optional[str] = ..., content_sha256: _Optional[str] = ..., sinks: _Optional[_Iterable[str]] = ..., audience: _Optional[_Union[AudienceSpec, _Mapping]] = ..., provenance_sha256: _Optional[str] = ...) -> None: ...

class AudienceSpec(_message.Message):
    __slots__ = ("segment", "customers", "experiment_arm")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ARM_FIELD_NUMBER: _ClassVar[int]
    segment: SegmentAudience
    customers: CustomerList
    experiment_arm: ExperimentArm
    def __init__(self, segment: _Optional[_Union[SegmentAudience, _Mapping]] = ..., customers: _Optional[_Union[CustomerList, _Mapping]] = ..., experiment_arm: _Optional[_Union[ExperimentArm, _Mapping]] = ...) -> None: ...

class ExperimentArm(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class SegmentAudience(_message.Message):
    __slots__ = ("segmentation", "version", "segment_id")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segmentation: str
    version: int
    segment_id: str
    def __init__(self, segmentation: _Optional[str] = ..., version: _Optional[int] = ..., segment_id: _Optional[str] = ...) -> None: ...

class CustomerList(_message.Message):
    __slots__ = ("customer_ids",)
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolvedAudience(_message.Message):
    __slots__ = ("segmentation", "segmentation_version", "segment_id", "size", "members_sha256", "excluded_without_consent", "excluded_opted_out", "excluded_frequency_capped", "frequency_cap_messages", "frequency_cap_window", "experiment_id", "arm")
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_SHA256_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_WITHOUT_CONSENT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FREQUENCY_CAPPED_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CAP_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CAP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    segmentation: str
    segmentation_version: int
    segment_id: str
    size: int
    members_sha256: str
    excluded_without_consent: int
    excluded_opted_out: int
    excluded_frequency_capped: int
    frequency_cap_messages: int
    frequency_cap_window: _duration_pb2.Duration
    experiment_id: str
    arm: str
    def __init__(self, segmentation: _Optional[str] = ..., segmentation_version: _Optional[int] = ..., segment_id: _Optional[str] = ..., size: _Optional[int] = ..., members_sha256: _Optional[str] = ..., excluded_without_consent: _Optional[int] = ..., excluded_opted_out: _Optional[int] = ..., excluded_frequency_capped: _Optional[int] = ..., frequency_cap_messages: _Optional[int] = ..., frequency_cap_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., experiment_id: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class RedeliverRequest(_message.Message):
    __slots__ = ("item_id",)
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    def __init__(self, item_id: _Optional[str] = ...) -> None: ...

class RedeliverResponse(_message.Message):
    __slots__ = ("item", "requeued")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    requeued: int
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ..., requeued: _Optional[int] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("publication", "already_published", "audience")
    PUBLICATION_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    publication: Publication
    already_published: bool
    audience: ResolvedAudience
    def __init__(self, publication: _Optional[_Union[Publication, _Mapping]] = ..., already_published: _Optional[bool] = ..., audience: _Optional[_Union[ResolvedAudience, _Mapping]] = ...) -> None: ...

class ReviewEvent(_message.Message):
    __slots__ = ("sequence", "time", "type", "item_id", "status", "version", "actor_subject", "decision")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    type: ReviewEventType
    item_id: str
    status: ReviewStatus
    version: int
    actor_subject: str
    decision: Decision
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[ReviewEventType, str]] = ..., item_id: _Optional[str] = ..., status: _Optional[_Union[ReviewStatus, str]] = ..., version: _Optional[int] = ..., actor_subject: _Optional[str] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("item_id", "types", "after_sequence")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    types: _containers.RepeatedScalarFieldContainer[ReviewEventType]
    after_sequence: int
    def __init__(self, item_id: _Optional[str] = ..., types: _Optional[_Iterable[_Union[ReviewEventType, str]]] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: ReviewEvent
    def __init__(self, event: _Optional[_Union[ReviewEvent, _Mapping]] = ...) -> None: ...

class ReviewSignal(_message.Message):
    __slots__ = ("item_id", "status", "version", "title", "content", "content_sha256", "comment", "reviewer_subject", "decide_time", "provenance_sha256")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    status: ReviewStatus
    version: int
    title: str
    content: str
    content_sha256: str
    comment: str
    reviewer_subject: str
    decide_time: _timestamp_pb2.Timestamp
    provenance_sha256: str
    def __init__(self, item_id: _Optional[str] = ..., status: _Optional[_Union[ReviewStatus, str]] = ..., version: _Optional[int] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., content_sha256: _Optional[str] = ..., comment: _Optional[str] = ..., reviewer_subject: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provenance_sha256: _Optional[str] = ...) -> None: ...

class EraseSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class EraseSubjectResponse(_message.Message):
    __slots__ = ("erased_items", "erased_versions", "erased_decisions", "erased_events", "erased_outbox_rows", "erased_publications", "erased_files", "erased_experiment_arms", "erased_outcome_events", "erased_audience_memberships")
    ERASED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    ERASED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ERASED_DECISIONS_FIELD_NUMBER: _ClassVar[int]
    ERASED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    ERASED_OUTBOX_ROWS_FIELD_NUMBER: _ClassVar[int]
    ERASED_PUBLICATIONS_FIELD_NUMBER: _ClassVar[int]
    ERASED_FILES_FIELD_NUMBER: _ClassVar[int]
    ERASED_EXPERIMENT_ARMS_FIELD_NUMBER: _ClassVar[int]
    ERASED_OUTCOME_EVENTS_FIELD_NUMBER: _ClassVar[int]
    ERASED_AUDIENCE_MEMBERSHIPS_FIELD_NUMBER: _ClassVar[int]
    erased_items: int
    erased_versions: int
    erased_decisions: int
    erased_events: int
    erased_outbox_rows: int
    erased_publications: int
    erased_files: int
    erased_experiment_arms: int
    erased_outcome_events: int
    erased_audience_memberships: int
    def __init__(self, erased_items: _Optional[int] = ..., erased_versions: _Optional[int] = ..., erased_decisions: _Optional[int] = ..., erased_events: _Optional[int] = ..., erased_outbox_rows: _Optional[int] = ..., erased_publications: _Optional[int] = ..., erased_files: _Optional[int] = ..., erased_experiment_arms: _Optional[int] = ..., erased_outcome_events: _Optional[int] = ..., erased_audience_memberships: _Optional[int] = ...) -> None: ...

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

class ExperimentVariant(_message.Message):
    __slots__ = ("label", "publication_id", "item_id")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PUBLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    label: str
    publication_id: str
    item_id: str
    def __init__(self, label: _Optional[str] = ..., publication_id: _Optional[str] = ..., item_id: _Optional[str] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("id", "name", "variants", "holdout_share", "min_sample_per_arm", "audience_size", "promoted_variant", "promoter_subject", "promote_time", "creator_subject", "create_time", "auto_promote")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_SHARE_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_PER_ARM_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_VARIANT_FIELD_NUMBER: _ClassVar[int]
    PROMOTER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATOR_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    variants: _containers.RepeatedCompositeFieldContainer[ExperimentVariant]
    holdout_share: float
    min_sample_per_arm: int
    audience_size: int
    promoted_variant: str
    promoter_subject: str
    promote_time: _timestamp_pb2.Timestamp
    creator_subject: str
    create_time: _timestamp_pb2.Timestamp
    auto_promote: AutoPromotion
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[ExperimentVariant, _Mapping]]] = ..., holdout_share: _Optional[float] = ..., min_sample_per_arm: _Optional[int] = ..., audience_size: _Optional[int] = ..., promoted_variant: _Optional[str] = ..., promoter_subject: _Optional[str] = ..., promote_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., creator_subject: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., auto_promote: _Optional[_Union[AutoPromotion, _Mapping]] = ...) -> None: ...

class AutoPromotion(_message.Message):
    __slots__ = ("min_probability_best", "outcome")
    MIN_PROBABILITY_BEST_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    min_probability_best: float
    outcome: OutcomeType
    def __init__(self, min_probability_best: _Optional[float] = ..., outcome: _Optional[_Union[OutcomeType, str]] = ...) -> None: ...

class ArmSize(_message.Message):
    __slots__ = ("arm", "customers")
    ARM_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    arm: str
    customers: int
    def __init__(self, arm: _Optional[str] = ..., customers: _Optional[int] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment_id", "name", "variants", "holdout_share", "min_sample_per_arm", "customer_ids", "audience_publication_id", "audience", "auto_promote")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_SHARE_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_PER_ARM_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_PUBLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    name: str
    variants: _containers.RepeatedCompositeFieldContainer[ExperimentVariant]
    holdout_share: float
    min_sample_per_arm: int
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    audience_publication_id: str
    audience: AudienceSpec
    auto_promote: AutoPromotion
    def __init__(self, experiment_id: _Optional[str] = ..., name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[ExperimentVariant, _Mapping]]] = ..., holdout_share: _Optional[float] = ..., min_sample_per_arm: _Optional[int] = ..., customer_ids: _Optional[_Iterable[str]] = ..., audience_publication_id: _Optional[str] = ..., audience: _Optional[_Union[AudienceSpec, _Mapping]] = ..., auto_promote: _Optional[_Union[AutoPromotion, _Mapping]] = ...) -> None: ...

class CreateExperimentResponse(_message.Message):
    __slots__ = ("experiment", "arms", "audience")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    arms: _containers.RepeatedCompositeFieldContainer[ArmSize]
    audience: ResolvedAudience
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., arms: _Optional[_Iterable[_Union[ArmSize, _Mapping]]] = ..., audience: _Optional[_Union[ResolvedAudience, _Mapping]] = ...) -> None: ...

class AssignVariantsRequest(_message.Message):
    __slots__ = ("experiment_id", "customer_ids")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, experiment_id: _Optional[str] = ..., customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class VariantAssignment(_message.Message):
    __slots__ = ("customer_id", "arm")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    arm: str
    def __init__(self, customer_id: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class AssignVariantsResponse(_message.Message):
    __slots__ = ("assignments", "added")
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[VariantAssignment]
    added: int
    def __init__(self, assignments: _Optional[_Iterable[_Union[VariantAssignment, _Mapping]]] = ..., added: _Optional[int] = ...) -> None: ...

class OutcomeEvent(_message.Message):
    __slots__ = ("event_id", "experiment_id", "publication_id", "customer_id", "type", "value", "time")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    experiment_id: str
    publication_id: str
    customer_id: str
    type: OutcomeType
    value: float
    time: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., publication_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., type: _Optional[_Union[OutcomeType, str]] = ..., value: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IngestOutcomesRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[OutcomeEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[OutcomeEvent, _Mapping]]] = ...) -> None: ...

class IngestOutcomesResponse(_message.Message):
    __slots__ = ("accepted", "duplicates")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class OutcomeRate(_message.Message):
    __slots__ = ("type", "customers", "events", "rate", "ci_low", "ci_high", "value_sum")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    VALUE_SUM_FIELD_NUMBER: _ClassVar[int]
    type: OutcomeType
    customers: int
    events: int
    rate: float
    ci_low: float
    ci_high: float
    value_sum: float
    def __init__(self, type: _Optional[_Union[OutcomeType, str]] = ..., customers: _Optional[int] = ..., events: _Optional[int] = ..., rate: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., value_sum: _Optional[float] = ...) -> None: ...

class ArmResult(_message.Message):
    __slots__ = ("arm", "holdout", "publication_id", "audience", "outcomes", "lift", "lift_absolute", "probability_best", "promoted")
    ARM_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FIELD_NUMBER: _ClassVar[int]
    PUBLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    LIFT_ABSOLUTE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_BEST_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FIELD_NUMBER: _ClassVar[int]
    arm: str
    holdout: bool
    publication_id: str
    audience: int
    outcomes: _containers.RepeatedCompositeFieldContainer[OutcomeRate]
    lift: float
    lift_absolute: float
    probability_best: float
    promoted: bool
    def __init__(self, arm: _Optional[str] = ..., holdout: _Optional[bool] = ..., publication_id: _Optional[str] = ..., audience: _Optional[int] = ..., outcomes: _Optional[_Iterable[_Union[OutcomeRate, _Mapping]]] = ..., lift: _Optional[float] = ..., lift_absolute: _Optional[float] = ..., probability_best: _Optional[float] = ..., promoted: _Optional[bool] = ...) -> None: ...

class GetCampaignResultsRequest(_message.Message):
    __slots__ = ("experiment_id", "outcome", "include_series", "bucket", "require_winner")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SERIES_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_WINNER_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    outcome: OutcomeType
    include_series: bool
    bucket: _duration_pb2.Duration
    require_winner: bool
    def __init__(self, experiment_id: _Optional[str] = ..., outcome: _Optional[_Union[OutcomeType, str]] = ..., include_series: _Optional[bool] = ..., bucket: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., require_winner: _Optional[bool] = ...) -> None: ...

class SeriesPoint(_message.Message):
    __slots__ = ("start_time", "end_time", "customers", "rate")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    customers: int
    rate: float
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customers: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class ArmSeries(_message.Message):
    __slots__ = ("arm", "points")
    ARM_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    arm: str
    points: _containers.RepeatedCompositeFieldContainer[SeriesPoint]
    def __init__(self, arm: _Optional[str] = ..., points: _Optional[_Iterable[_Union[SeriesPoint, _Mapping]]] = ...) -> None: ...

class GetCampaignResultsResponse(_message.Message):
    __slots__ = ("experiment", "outcome", "arms", "minimum_sample_reached", "winner", "series", "winner_item_id")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_SAMPLE_REACHED_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    WINNER_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    outcome: OutcomeType
    arms: _containers.RepeatedCompositeFieldContainer[ArmResult]
    minimum_sample_reached: bool
    winner: str
    series: _containers.RepeatedCompositeFieldContainer[ArmSeries]
    winner_item_id: str
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., outcome: _Optional[_Union[OutcomeType, str]] = ..., arms: _Optional[_Iterable[_Union[ArmResult, _Mapping]]] = ..., minimum_sample_reached: _Optional[bool] = ..., winner: _Optional[str] = ..., series: _Optional[_Iterable[_Union[ArmSeries, _Mapping]]] = ..., winner_item_id: _Optional[str] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments", "next_page_token")
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    next_page_token: str
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PromoteVariantRequest(_message.Message):
    __slots__ = ("experiment_id", "variant")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    variant: str
    def __init__(self, experiment_id: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class PromoteVariantResponse(_message.Message):
    __slots__ = ("experiment", "already_promoted")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PROMOTED_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    already_promoted: bool
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., already_promoted: _Optional[bool] = ...) -> None: ...
