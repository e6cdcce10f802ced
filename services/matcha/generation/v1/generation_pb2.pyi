import datetime

from google.api import annotations_pb2 as _annotations_pb2
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

class BackendKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_KIND_UNSPECIFIED: _ClassVar[BackendKind]
    BACKEND_KIND_TGI: _ClassVar[BackendKind]
    BACKEND_KIND_OPENAI: _ClassVar[BackendKind]
    BACKEND_KIND_LOCAL: _ClassVar[BackendKind]

class ChatRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_ROLE_UNSPECIFIED: _ClassVar[ChatRole]
    CHAT_ROLE_SYSTEM: _ClassVar[ChatRole]
    CHAT_ROLE_USER: _ClassVar[ChatRole]
    CHAT_ROLE_ASSISTANT: _ClassVar[ChatRole]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_END_OF_TEXT: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_STOP_SEQUENCE: _ClassVar[FinishReason]

class AddressForm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADDRESS_FORM_UNSPECIFIED: _ClassVar[AddressForm]
    ADDRESS_FORM_FORMAL: _ClassVar[AddressForm]
    ADDRESS_FORM_INFORMAL: _ClassVar[AddressForm]
    ADDRESS_FORM_MIXED: _ClassVar[AddressForm]
BACKEND_KIND_UNSPECIFIED: BackendKind
BACKEND_KIND_TGI: BackendKind
BACKEND_KIND_OPENAI: BackendKind
BACKEND_KIND_LOCAL: BackendKind
CHAT_ROLE_UNSPECIFIED: ChatRole
CHAT_ROLE_SYSTEM: ChatRole
CHAT_ROLE_USER: ChatRole
CHAT_ROLE_ASSISTANT: ChatRole
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_END_OF_TEXT: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_STOP_SEQUENCE: FinishReason
ADDRESS_FORM_UNSPECIFIED: AddressForm
ADDRESS_FORM_FORMAL: AddressForm
ADDRESS_FORM_INFORMAL: AddressForm
ADDRESS_FORM_MIXED: AddressForm

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: ChatRole
    content: str
    def __init__(self, role: _Optional[_Union[ChatRole, str]] = ..., content: _Optional[str] = ...) -> None: ...

class Chat(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ...) -> None: ...

class TemplateInput(_message.Message):
    __slots__ = ("name", "version", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    variables: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class VoiceSelection(_message.Message):
    __slots__ = ("name", "version", "exemplar_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    exemplar_count: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., exemplar_count: _Optional[int] = ...) -> None: ...

class GenerationParameters(_message.Message):
    __slots__ = ("max_new_tokens", "temperature", "top_p", "repetition_penalty", "stop", "seed")
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    REPETITION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    def __init__(self, max_new_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., repetition_penalty: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "prompt", "chat", "template", "voice", "parameters", "json_schema", "facts", "language", "best_of", "target_words")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    BEST_OF_FIELD_NUMBER: _ClassVar[int]
    TARGET_WORDS_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt: str
    chat: Chat
    template: TemplateInput
    voice: VoiceSelection
    parameters: GenerationParameters
    json_schema: _struct_pb2.Struct
    facts: DraftFacts
    language: str
    best_of: int
    target_words: int
    def __init__(self, model: _Optional[str] = ..., prompt: _Optional[str] = ..., chat: _Optional[_Union[Chat, _Mapping]] = ..., template: _Optional[_Union[TemplateInput, _Mapping]] = ..., voice: _Optional[_Union[VoiceSelection, _Mapping]] = ..., parameters: _Optional[_Union[GenerationParameters, _Mapping]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., facts: _Optional[_Union[DraftFacts, _Mapping]] = ..., language: _Optional[str] = ..., best_of: _Optional[int] = ..., target_words: _Optional[int] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("amount", "currency")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    amount: str
    currency: str
    def __init__(self, amount: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("name", "price", "description", "id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    price: Price
    description: str
    id: str
    def __init__(self, name: _Optional[str] = ..., price: _Optional[_Union[Price, _Mapping]] = ..., description: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DraftFacts(_message.Message):
    __slots__ = ("product", "offer", "price", "start_date", "end_date", "segment_description", "recommended_items", "previous_winner")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_WINNER_FIELD_NUMBER: _ClassVar[int]
    product: str
    offer: str
    price: Price
    start_date: str
    end_date: str
    segment_description: str
    recommended_items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    previous_winner: str
    def __init__(self, product: _Optional[str] = ..., offer: _Optional[str] = ..., price: _Optional[_Union[Price, _Mapping]] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., segment_description: _Optional[str] = ..., recommended_items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., previous_winner: _Optional[str] = ...) -> None: ...

class QualityScores(_message.Message):
    __slots__ = ("language", "detected_language", "language_match", "word_count", "unknown_word_share", "unknown_words", "repeated_ngram_share", "target_words", "length_ratio", "unsupported_claims", "personal_data_count", "voice_score", "overall", "failed_checks")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DETECTED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_MATCH_FIELD_NUMBER: _ClassVar[int]
    WORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_WORD_SHARE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_WORDS_FIELD_NUMBER: _ClassVar[int]
    REPEATED_NGRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    TARGET_WORDS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    PERSONAL_DATA_COUNT_FIELD_NUMBER: _ClassVar[int]
    VOICE_SCORE_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    FAILED_CHECKS_FIELD_NUMBER: _ClassVar[int]
    language: str
    detected_language: str
    language_match: bool
    word_count: int
    unknown_word_share: float
    unknown_words: _containers.RepeatedScalarFieldContainer[str]
    repeated_ngram_share: float
    target_words: int
    length_ratio: float
    unsupported_claims: _containers.RepeatedScalarFieldContainer[str]
    personal_data_count: int
    voice_score: float
    overall: float
    failed_checks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, language: _Optional[str] = ..., detected_language: _Optional[str] = ..., language_match: _Optional[bool] = ..., word_count: _Optional[int] = ..., unknown_word_share: _Optional[float] = ..., unknown_words: _Optional[_Iterable[str]] = ..., repeated_ngram_share: _Optional[float] = ..., target_words: _Optional[int] = ..., length_ratio: _Optional[float] = ..., unsupported_claims: _Optional[_Iterable[str]] = ..., personal_data_count: _Optional[int] = ..., voice_score: _Optional[float] = ..., overall: _Optional[float] = ..., failed_checks: _Optional[_Iterable[str]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("text", "quality", "flags", "seed", "finish_reason", "completion_tokens", "selected")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    text: str
    quality: QualityScores
    flags: _containers.RepeatedCompositeFieldContainer[_common_pb2.ContentFlag]
    seed: int
    finish_reason: FinishReason
    completion_tokens: int
    selected: bool
    def __init__(self, text: _Optional[str] = ..., quality: _Optional[_Union[QualityScores, _Mapping]] = ..., flags: _Optional[_Iterable[_Union[_common_pb2.ContentFlag, _Mapping]]] = ..., seed: _Optional[int] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., completion_tokens: _Optional[int] = ..., selected: _Optional[bool] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("text", "structured_output", "finish_reason", "usage", "model", "backend", "provenance", "repaired", "quality", "flags", "candidates", "below_threshold", "attestation")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    BELOW_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    text: str
    structured_output: _struct_pb2.Value
    finish_reason: FinishReason
    usage: TokenUsage
    model: _common_pb2.ModelRef
    backend: BackendKind
    provenance: _common_pb2.Provenance
    repaired: bool
    quality: QualityScores
    flags: _containers.RepeatedCompositeFieldContainer[_common_pb2.ContentFlag]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    below_threshold: bool
    attestation: str
    def __init__(self, text: _Optional[str] = ..., structured_output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., backend: _Optional[_Union[BackendKind, str]] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., repaired: _Optional[bool] = ..., quality: _Optional[_Union[QualityScores, _Mapping]] = ..., flags: _Optional[_Iterable[_Union[_common_pb2.ContentFlag, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., below_threshold: _Optional[bool] = ..., attestation: _Optional[str] = ...) -> None: ...

class GenerateStreamRequest(_message.Message):
    __slots__ = ("model", "prompt", "chat", "template", "voice", "parameters", "json_schema", "facts", "language", "target_words")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_WORDS_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt: str
    chat: Chat
    template: TemplateInput
    voice: VoiceSelection
    parameters: GenerationParameters
    json_schema: _struct_pb2.Struct
    facts: DraftFacts
    language: str
    target_words: int
    def __init__(self, model: _Optional[str] = ..., prompt: _Optional[str] = ..., chat: _Optional[_Union[Chat, _Mapping]] = ..., template: _Optional[_Union[TemplateInput, _Mapping]] = ..., voice: _Optional[_Union[VoiceSelection, _Mapping]] = ..., parameters: _Optional[_Union[GenerationParameters, _Mapping]] = ..., json_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., facts: _Optional[_Union[DraftFacts, _Mapping]] = ..., language: _Optional[str] = ..., target_words: _Optional[int] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("text_delta", "result")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    text_delta: str
    result: GenerateResponse
    def __init__(self, text_delta: _Optional[str] = ..., result: _Optional[_Union[GenerateResponse, _Mapping]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "backend", "model", "context_length", "max_new_tokens_limit", "clearance", "inside_trust_boundary", "supports_json_schema", "default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CLEARANCE_FIELD_NUMBER: _ClassVar[int]
    INSIDE_TRUST_BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: BackendKind
    model: _common_pb2.ModelRef
    context_length: int
    max_new_tokens_limit: int
    clearance: _common_pb2.DataClass
    inside_trust_boundary: bool
    supports_json_schema: bool
    default: bool
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[_Union[BackendKind, str]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., context_length: _Optional[int] = ..., max_new_tokens_limit: _Optional[int] = ..., clearance: _Optional[_Union[_common_pb2.DataClass, str]] = ..., inside_trust_boundary: _Optional[bool] = ..., supports_json_schema: _Optional[bool] = ..., default: _Optional[bool] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class PromptTemplate(_message.Message):
    __slots__ = ("name", "version", "description", "system", "template", "variables", "sha256", "create_subject", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    description: str
    system: str
    template: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    sha256: str
    create_subject: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., system: _Optional[str] = ..., template: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., sha256: _Optional[str] = ..., create_subject: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePromptTemplateRequest(_message.Message):
    __slots__ = ("name", "description", "system", "template")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    system: str
    template: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., system: _Optional[str] = ..., template: _Optional[str] = ...) -> None: ...

class CreatePromptTemplateResponse(_message.Message):
    __slots__ = ("template", "created")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    template: PromptTemplate
    created: bool
    def __init__(self, template: _Optional[_Union[PromptTemplate, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetPromptTemplateRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetPromptTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: PromptTemplate
    def __init__(self, template: _Optional[_Union[PromptTemplate, _Mapping]] = ...) -> None: ...

class ListPromptTemplatesRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[PromptTemplate]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[PromptTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SentenceLengthStats(_message.Message):
    __slots__ = ("mean", "stddev", "p10", "p50", "p90")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    P10_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    mean: float
    stddev: float
    p10: float
    p50: float
    p90: float
    def __init__(self, mean: _Optional[float] = ..., stddev: _Optional[float] = ..., p10: _Optional[float] = ..., p50: _Optional[float] = ..., p90: _Optional[float] = ...) -> None: ...

class RegisterMarkers(_message.Message):
    __slots__ = ("second_person_rate", "first_person_plural_rate", "contraction_rate", "exclamation_rate", "question_rate", "emoji_rate", "formality", "address")
    SECOND_PERSON_RATE_FIELD_NUMBER: _ClassVar[int]
    FIRST_PERSON_PLURAL_RATE_FIELD_NUMBER: _ClassVar[int]
    CONTRACTION_RATE_FIELD_NUMBER: _ClassVar[int]
    EXCLAMATION_RATE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_RATE_FIELD_NUMBER: _ClassVar[int]
    EMOJI_RATE_FIELD_NUMBER: _ClassVar[int]
    FORMALITY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    second_person_rate: float
    first_person_plural_rate: float
    contraction_rate: float
    exclamation_rate: float
    question_rate: float
    emoji_rate: float
    formality: float
    address: AddressForm
    def __init__(self, second_person_rate: _Optional[float] = ..., first_person_plural_rate: _Optional[float] = ..., contraction_rate: _Optional[float] = ..., exclamation_rate: _Optional[float] = ..., question_rate: _Optional[float] = ..., emoji_rate: _Optional[float] = ..., formality: _Optional[float] = ..., address: _Optional[_Union[AddressForm, str]] = ...) -> None: ...

class SignatureTerm(_message.Message):
    __slots__ = ("term", "weight", "count")
    TERM_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    term: str
    weight: float
    count: int
    def __init__(self, term: _Optional[str] = ..., weight: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class Exemplar(_message.Message):
    __slots__ = ("text", "document_id", "centrality")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CENTRALITY_FIELD_NUMBER: _ClassVar[int]
    text: str
    document_id: str
    centrality: float
    def __init__(self, text: _Optional[str] = ..., document_id: _Optional[str] = ..., centrality: _Optional[float] = ...) -> None: ...

class VoiceProfile(_message.Message):
    __slots__ = ("name", "version", "description", "languages", "document_count", "sentence_count", "sentence_length", "register", "signature_terms", "preferred_terms", "banned_terms", "exemplars", "embedding_model", "corpus_sha256", "create_subject", "create_time", "source_collection", "withdraw_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_TERMS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_TERMS_FIELD_NUMBER: _ClassVar[int]
    BANNED_TERMS_FIELD_NUMBER: _ClassVar[int]
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    CORPUS_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WITHDRAW_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    description: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    document_count: int
    sentence_count: int
    sentence_length: SentenceLengthStats
    register: RegisterMarkers
    signature_terms: _containers.RepeatedCompositeFieldContainer[SignatureTerm]
    preferred_terms: _containers.RepeatedScalarFieldContainer[str]
    banned_terms: _containers.RepeatedScalarFieldContainer[str]
    exemplars: _containers.RepeatedCompositeFieldContainer[Exemplar]
    embedding_model: _common_pb2.ModelRef
    corpus_sha256: str
    create_subject: str
    create_time: _timestamp_pb2.Timestamp
    source_collection: CollectionSource
    withdraw_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., document_count: _Optional[int] = ..., sentence_count: _Optional[int] = ..., sentence_length: _Optional[_Union[SentenceLengthStats, _Mapping]] = ..., register: _Optional[_Union[RegisterMarkers, _Mapping]] = ..., signature_terms: _Optional[_Iterable[_Union[SignatureTerm, _Mapping]]] = ..., preferred_terms: _Optional[_Iterable[str]] = ..., banned_terms: _Optional[_Iterable[str]] = ..., exemplars: _Optional[_Iterable[_Union[Exemplar, _Mapping]]] = ..., embedding_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., corpus_sha256: _Optional[str] = ..., create_subject: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_collection: _Optional[_Union[CollectionSource, _Mapping]] = ..., withdraw_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SourceDocument(_message.Message):
    __slots__ = ("id", "text", "policy")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    policy: _common_pb2.RecordPolicy
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.RecordPolicy, _Mapping]] = ...) -> None: ...

class CollectionSource(_message.Message):
    __slots__ = ("collection", "filter", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: _struct_pb2.Struct
    limit: int
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class LearnVoiceRequest(_message.Message):
    __slots__ = ("name", "description", "documents", "collection", "preferred_terms", "banned_terms", "exemplar_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_TERMS_FIELD_NUMBER: _ClassVar[int]
    BANNED_TERMS_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    documents: _containers.RepeatedCompositeFieldContainer[SourceDocument]
    collection: CollectionSource
    preferred_terms: _containers.RepeatedScalarFieldContainer[str]
    banned_terms: _containers.RepeatedScalarFieldContainer[str]
    exemplar_count: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[SourceDocument, _Mapping]]] = ..., collection: _Optional[_Union[CollectionSource, _Mapping]] = ..., preferred_terms: _Optional[_Iterable[str]] = ..., banned_terms: _Optional[_Iterable[str]] = ..., exemplar_count: _Optional[int] = ...) -> None: ...

class LearnVoiceResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: VoiceProfile
    def __init__(self, profile: _Optional[_Union[VoiceProfile, _Mapping]] = ...) -> None: ...

class GetVoiceProfileRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetVoiceProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: VoiceProfile
    def __init__(self, profile: _Optional[_Union[VoiceProfile, _Mapping]] = ...) -> None: ...

class ListVoiceProfilesRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVoiceProfilesResponse(_message.Message):
    __slots__ = ("profiles", "next_page_token")
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[VoiceProfile]
    next_page_token: str
    def __init__(self, profiles: _Optional[_Iterable[_Union[VoiceProfile, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ScoreVoiceRequest(_message.Message):
    __slots__ = ("voice", "version", "text")
    VOICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    voice: str
    version: int
    text: str
    def __init__(self, voice: _Optional[str] = ..., version: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class VoiceScoreComponents(_message.Message):
    __slots__ = ("sentence_length", "register", "vocabulary", "semantic")
    SENTENCE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_FIELD_NUMBER: _ClassVar[int]
    sentence_length: float
    register: float
    vocabulary: float
    semantic: float
    def __init__(self, sentence_length: _Optional[float] = ..., register: _Optional[float] = ..., vocabulary: _Optional[float] = ..., semantic: _Optional[float] = ...) -> None: ...

class ScoreVoiceResponse(_message.Message):
    __slots__ = ("score", "components", "flags", "voice", "version", "model")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    score: float
    components: VoiceScoreComponents
    flags: _containers.RepeatedCompositeFieldContainer[_common_pb2.ContentFlag]
    voice: str
    version: int
    model: _common_pb2.ModelRef
    def __init__(self, score: _Optional[float] = ..., components: _Optional[_Union[VoiceScoreComponents, _Mapping]] = ..., flags: _Optional[_Iterable[_Union[_common_pb2.ContentFlag, _Mapping]]] = ..., voice: _Optional[str] = ..., version: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class EraseSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class EraseSubjectResponse(_message.Message):
    __slots__ = ("erased_exemplars", "erased_sources", "erased_voice_profiles")
    ERASED_EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    ERASED_SOURCES_FIELD_NUMBER: _ClassVar[int]
    ERASED_VOICE_PROFILES_FIELD_NUMBER: _ClassVar[int]
    erased_exemplars: int
    erased_sources: int
    erased_voice_profiles: int
    def __init__(self, erased_exemplars: _Optional[int] = ..., erased_sources: _Optional[int] = ..., erased_voice_profiles: _Optional[int] = ...) -> None: ...

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
