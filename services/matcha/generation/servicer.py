"""gRPC adapter of the generation service: protobuf in, core call, protobuf out."""

from collections.abc import AsyncIterator
from datetime import datetime

import grpc
from google.protobuf import json_format, timestamp_pb2
from opentelemetry import trace

from matcha.common.v1 import common_pb2
from matcha.embedding.reader import CollectionSource
from matcha.generation.backend import BackendKind, ChatMessage, FinishReason, ModelDescription, ModelRef
from matcha.generation.core import (
    CandidateOutcome,
    DocumentInput,
    GenerateInput,
    GenerateOutcome,
    GenerationCore,
    ParametersInput,
    TemplateCall,
    VoiceCall,
)
from matcha.generation.facts import FactsInput, PriceInput, RecommendedItemInput
from matcha.generation.quality import QualityReport
from matcha.generation.records import TemplateRecord, VoiceRecord
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.generation.voice import AddressForm, Flag
from matcha.models.encoders import ModelInfo
from matcha.runtime.data_map import exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.governance import DataClass
from matcha.runtime.interceptors import current_call, report_records
from matcha.runtime.messages import data_class_message

ROLE_NAMES = {
    generation_pb2.CHAT_ROLE_SYSTEM: "system",
    generation_pb2.CHAT_ROLE_USER: "user",
    generation_pb2.CHAT_ROLE_ASSISTANT: "assistant",
}
FINISH_REASONS = {
    FinishReason.END_OF_TEXT: generation_pb2.FINISH_REASON_END_OF_TEXT,
    FinishReason.LENGTH: generation_pb2.FINISH_REASON_LENGTH,
    FinishReason.STOP_SEQUENCE: generation_pb2.FINISH_REASON_STOP_SEQUENCE,
}
BACKEND_KINDS = {
    BackendKind.TGI: generation_pb2.BACKEND_KIND_TGI,
    BackendKind.OPENAI: generation_pb2.BACKEND_KIND_OPENAI,
    BackendKind.LOCAL: generation_pb2.BACKEND_KIND_LOCAL,
}
ADDRESS_FORMS = {
    AddressForm.UNSPECIFIED: generation_pb2.ADDRESS_FORM_UNSPECIFIED,
    AddressForm.FORMAL: generation_pb2.ADDRESS_FORM_FORMAL,
    AddressForm.INFORMAL: generation_pb2.ADDRESS_FORM_INFORMAL,
    AddressForm.MIXED: generation_pb2.ADDRESS_FORM_MIXED,
}
SEVERITIES = {
    "INFO": common_pb2.FLAG_SEVERITY_INFO,
    "WARNING": common_pb2.FLAG_SEVERITY_WARNING,
    "ERROR": common_pb2.FLAG_SEVERITY_ERROR,
}


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _model_ref(model: ModelRef | ModelInfo) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(id=model.id, version=model.version)


def _integral(value):
    """Struct numbers are all doubles; a schema's 40.0 means the integer 40 (maxLength, minItems...)."""
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _generate_input(request) -> GenerateInput:
    """GenerateRequest and GenerateStreamRequest share their fields."""
    which = request.WhichOneof("input")
    parameters = request.parameters
    return GenerateInput(
        model=request.model,
        prompt=request.prompt if which == "prompt" else None,
        chat=tuple(ChatMessage(ROLE_NAMES.get(m.role, ""), m.content) for m in request.chat.messages)
        if which == "chat"
        else None,
        template=TemplateCall(request.template.name, request.template.version, dict(request.template.variables))
        if which == "template"
        else None,
        voice=VoiceCall(
            request.voice.name,
            request.voice.version,
            request.voice.exemplar_count if request.voice.HasField("exemplar_count") else None,
        )
        if request.HasField("voice")
        else None,
        parameters=ParametersInput(
            max_new_tokens=parameters.max_new_tokens,
            temperature=parameters.temperature if parameters.HasField("temperature") else None,
            top_p=parameters.top_p if parameters.HasField("top_p") else None,
            repetition_penalty=parameters.repetition_penalty if parameters.HasField("repetition_penalty") else None,
            stop=tuple(parameters.stop),
            seed=parameters.seed if parameters.HasField("seed") else None,
        ),
        json_schema=_integral(json_format.MessageToDict(request.json_schema))
        if request.HasField("json_schema")
        else None,
        facts=_facts(request.facts) if request.HasField("facts") else None,
        language=request.language,
        # GenerateStreamRequest has no best_of: a stream is one candidate.
        best_of=getattr(request, "best_of", 0),
        target_words=request.target_words,
    )


def _price(message: generation_pb2.Price, present: bool) -> PriceInput | None:
    return PriceInput(message.amount, message.currency) if present else None


def _facts(message: generation_pb2.DraftFacts) -> FactsInput:
    return FactsInput(
        product=message.product,
        offer=message.offer,
        price=_price(message.price, message.HasField("price")),
        start_date=message.start_date,
        end_date=message.end_date,
        segment_description=message.segment_description,
        previous_winner=message.previous_winner,
        recommended_items=tuple(
            RecommendedItemInput(item.name, _price(item.price, item.HasField("price")), item.description)
            for item in message.recommended_items
        ),
    )


def _quality_message(report: QualityReport) -> generation_pb2.QualityScores:
    message = generation_pb2.QualityScores(
        language=report.language,
        detected_language=report.detected_language,
        language_match=report.language_match,
        word_count=report.word_count,
        unknown_word_share=report.unknown_word_share,
        unknown_words=report.unknown_words,
        repeated_ngram_share=report.repeated_ngram_share,
        target_words=report.target_words,
        length_ratio=report.length_ratio,
        unsupported_claims=report.unsupported_claims,
        personal_data_count=report.personal_data,
        overall=report.overall,
        failed_checks=report.failed,
    )
    if report.voice_score is not None:
        message.voice_score = report.voice_score
    return message


def _candidate_message(candidate: CandidateOutcome) -> generation_pb2.Candidate:
    message = generation_pb2.Candidate(
        text=candidate.text,
        quality=_quality_message(candidate.quality),
        flags=[_flag_message(flag) for flag in candidate.quality.flags],
        finish_reason=FINISH_REASONS[candidate.finish_reason],
        completion_tokens=candidate.completion_tokens,
        selected=candidate.selected,
    )
    if candidate.seed is not None:
        message.seed = candidate.seed
    return message


def _source_ids(facts: generation_pb2.DraftFacts) -> list[str]:
    """The catalogue items a draft was given as facts: the records it is derived from."""
    return list(dict.fromkeys(item.id for item in facts.recommended_items if item.id))


def _generate_response(outcome: GenerateOutcome) -> generation_pb2.GenerateResponse:
    span_context = trace.get_current_span().get_span_context()
    provenance = common_pb2.Provenance(
        model=_model_ref(outcome.model),
        trace_id=format(span_context.trace_id, "032x") if span_context.is_valid else "",
        create_time=_timestamp(outcome.create_time),
    )
    if outcome.template is not None:
        provenance.prompt_template = outcome.template.name
        provenance.prompt_template_version = outcome.template.version
    if outcome.voice is not None:
        provenance.voice_profile = outcome.voice.name
        provenance.voice_profile_version = outcome.voice.version
    response = generation_pb2.GenerateResponse(
        text=outcome.text,
        finish_reason=FINISH_REASONS[outcome.finish_reason],
        usage=generation_pb2.TokenUsage(
            prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens
        ),
        model=_model_ref(outcome.model),
        backend=BACKEND_KINDS[outcome.backend],
        provenance=provenance,
        repaired=outcome.repaired,
    )
    if outcome.structured_output is not None:
        json_format.ParseDict(outcome.structured_output, response.structured_output)
    if outcome.quality is not None:
        response.quality.CopyFrom(_quality_message(outcome.quality))
        response.flags.extend(_flag_message(flag) for flag in outcome.flags)
        response.candidates.extend(_candidate_message(candidate) for candidate in outcome.candidates)
        response.below_threshold = outcome.below_threshold
        response.attestation = outcome.attestation
    return response


def _model_message(model: ModelDescription, default: bool) -> generation_pb2.Model:
    return generation_pb2.Model(
        name=model.name,
        backend=BACKEND_KINDS[model.kind],
        model=_model_ref(model.model),
        context_length=model.context_length,
        max_new_tokens_limit=model.max_new_tokens_limit,
        clearance=data_class_message(model.clearance.max_data_class),
        inside_trust_boundary=model.clearance.inside_trust_boundary,
        supports_json_schema=model.supports_json_schema,
        default=default,
    )


def _template_message(template: TemplateRecord) -> generation_pb2.PromptTemplate:
    return generation_pb2.PromptTemplate(
        name=template.name,
        version=template.version,
        description=template.description,
        system=template.system,
        template=template.template,
        variables=template.variables,
        sha256=template.sha256,
        create_subject=template.create_subject,
        create_time=_timestamp(template.created_at),
    )


def _collection_source(message: generation_pb2.CollectionSource) -> CollectionSource:
    return CollectionSource(message.collection, json_format.MessageToDict(message.filter), message.limit)


def _source_message(source: dict) -> generation_pb2.CollectionSource:
    message = generation_pb2.CollectionSource(collection=source["collection"], limit=source["limit"])
    json_format.ParseDict(source["filter"], message.filter)
    return message


def _voice_message(voice: VoiceRecord, *, full: bool = True) -> generation_pb2.VoiceProfile:
    message = generation_pb2.VoiceProfile(
        name=voice.name,
        version=voice.version,
        description=voice.description,
        preferred_terms=voice.preferred_terms,
        banned_terms=voice.banned_terms,
        embedding_model=_model_ref(voice.model),
        corpus_sha256=voice.corpus_sha256,
        create_subject=voice.create_subject,
        create_time=_timestamp(voice.created_at),
        withdraw_time=_timestamp(voice.withdrawn_at) if voice.withdrawn_at else None,
    )
    if voice.source_collection is not None:
        message.source_collection.CopyFrom(_source_message(voice.source_collection))
    if full:
        message.exemplars.extend(
            generation_pb2.Exemplar(text=e.text, document_id=e.document_id, centrality=e.centrality)
            for e in voice.exemplars
        )
    profile = voice.lexical
    if profile is None:  # withdrawn: what it learned is deleted
        return message
    lengths, register = profile.sentence_length, profile.register
    message.languages.extend(profile.languages)
    message.document_count = profile.document_count
    message.sentence_count = profile.sentence_count
    message.sentence_length.CopyFrom(
        generation_pb2.SentenceLengthStats(
            mean=lengths.mean, stddev=lengths.stddev, p10=lengths.p10, p50=lengths.p50, p90=lengths.p90
        )
    )
    message.register.CopyFrom(
        generation_pb2.RegisterMarkers(
            second_person_rate=register.second_person_rate,
            first_person_plural_rate=register.first_person_plural_rate,
            contraction_rate=register.contraction_rate,
            exclamation_rate=register.exclamation_rate,
            question_rate=register.question_rate,
            emoji_rate=register.emoji_rate,
            formality=register.formality,
            address=ADDRESS_FORMS[register.address],
        )
    )
    if full:
        message.signature_terms.extend(
            generation_pb2.SignatureTerm(term=term.term, weight=term.weight, count=term.count)
            for term in profile.signature_terms
        )
    return message


def _document_input(document: generation_pb2.SourceDocument) -> DocumentInput:
    policy = document.policy
    return DocumentInput(
        document.id,
        document.text,
        DataClass(policy.data_class) if policy.data_class else None,
        frozenset(policy.consented_purposes),
        policy.source,
        policy.subject_id,
    )


def _flag_message(flag: Flag) -> common_pb2.ContentFlag:
    return common_pb2.ContentFlag(
        code=flag.code,
        message=flag.message,
        severity=SEVERITIES[flag.severity],
        spans=[common_pb2.TextSpan(start=start, end=end) for start, end in flag.spans],
    )


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, core: GenerationCore) -> None:
        self._core = core

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.GenerateResponse:
        outcome = await self._core.generate(current_call(), _generate_input(request))
        report_records(models=[(outcome.model.id, outcome.model.version)])
        response = _generate_response(outcome)
        response.provenance.source_record_ids.extend(_source_ids(request.facts))
        return response

    async def GenerateStream(
        self, request: generation_pb2.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[generation_pb2.GenerateStreamResponse]:
        # An async generator: when the client cancels, gRPC closes it and the core stops the backend.
        events = self._core.generate_stream(current_call(), _generate_input(request))
        try:
            async for event in events:
                if isinstance(event, str):
                    yield generation_pb2.GenerateStreamResponse(text_delta=event)
                else:
                    report_records(models=[(event.model.id, event.model.version)])
                    result = _generate_response(event)
                    result.provenance.source_record_ids.extend(_source_ids(request.facts))
                    yield generation_pb2.GenerateStreamResponse(result=result)
        finally:
            await events.aclose()

    async def ListModels(
        self, request: generation_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.ListModelsResponse:
        models, default = self._core.list_models(current_call())
        return generation_pb2.ListModelsResponse(
            models=[_model_message(model, model.name == default) for model in models]
        )

    async def CreatePromptTemplate(
        self, request: generation_pb2.CreatePromptTemplateRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.CreatePromptTemplateResponse:
        template, created = await self._core.create_template(
            current_call(), request.name, request.description, request.system, request.template
        )
        return generation_pb2.CreatePromptTemplateResponse(template=_template_message(template), created=created)

    async def GetPromptTemplate(
        self, request: generation_pb2.GetPromptTemplateRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.GetPromptTemplateResponse:
        template = await self._core.get_template(current_call(), request.name, request.version)
        return generation_pb2.GetPromptTemplateResponse(template=_template_message(template))

    async def ListPromptTemplates(
        self, request: generation_pb2.ListPromptTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.ListPromptTemplatesResponse:
        page = await self._core.list_templates(current_call(), request.name, request.page_size, request.page_token)
        return generation_pb2.ListPromptTemplatesResponse(
            templates=[_template_message(template) for template in page.items],
            next_page_token=self._core.page_token("templates", page, request.name),
        )

    async def LearnVoice(
        self, request: generation_pb2.LearnVoiceRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.LearnVoiceResponse:
        voice = await self._core.learn_voice(
            current_call(),
            name=request.name,
            description=request.description,
            documents=[_document_input(document) for document in request.documents],
            preferred_terms=list(request.preferred_terms),
            banned_terms=list(request.banned_terms),
            exemplar_count=request.exemplar_count,
            collection=_collection_source(request.collection) if request.HasField("collection") else None,
        )
        return generation_pb2.LearnVoiceResponse(profile=_voice_message(voice))

    async def GetVoiceProfile(
        self, request: generation_pb2.GetVoiceProfileRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.GetVoiceProfileResponse:
        voice = await self._core.get_voice(current_call(), request.name, request.version)
        return generation_pb2.GetVoiceProfileResponse(profile=_voice_message(voice))

    async def ListVoiceProfiles(
        self, request: generation_pb2.ListVoiceProfilesRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.ListVoiceProfilesResponse:
        page = await self._core.list_voices(current_call(), request.name, request.page_size, request.page_token)
        return generation_pb2.ListVoiceProfilesResponse(
            profiles=[_voice_message(voice, full=False) for voice in page.items],
            next_page_token=self._core.page_token("voices", page, request.name),
        )

    async def ScoreVoice(
        self, request: generation_pb2.ScoreVoiceRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.ScoreVoiceResponse:
        outcome = await self._core.score_voice(current_call(), request.voice, request.version, request.text)
        return generation_pb2.ScoreVoiceResponse(
            score=outcome.score,
            components=generation_pb2.VoiceScoreComponents(
                sentence_length=outcome.sentence_length,
                register=outcome.register,
                vocabulary=outcome.vocabulary,
                semantic=outcome.semantic,
            ),
            flags=[_flag_message(flag) for flag in outcome.flags],
            voice=outcome.voice.name,
            version=outcome.voice.version,
            model=_model_ref(outcome.model),
        )

    async def EraseSubject(
        self, request: generation_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.EraseSubjectResponse:
        erased = await self._core.erase_subject(current_call(), request.subject_id)
        report_records(subjects=[request.subject_id])
        return generation_pb2.EraseSubjectResponse(
            erased_exemplars=erased.exemplars,
            erased_sources=erased.sources,
            erased_voice_profiles=erased.withdrawn_versions,
        )

    async def DescribeSubject(
        self, request: generation_pb2.DescribeSubjectRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.DescribeSubjectResponse:
        holdings = await self._core.describe_subject(current_call(), request.subject_id)
        report_records(exported_classes(holdings), subjects=[request.subject_id])
        return generation_pb2.DescribeSubjectResponse(holdings=holding_messages(holdings))
