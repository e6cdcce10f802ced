"""The generation service's core: validation, governance, prompt assembly, voices and templates.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
"""

import asyncio
import hashlib
import json
import math
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import jsonschema
import numpy as np

from matcha.embedding.reader import CollectionReader, CollectionSource, check_collection_source
from matcha.generation.backend import (
    Backend,
    BackendKind,
    BackendRequest,
    ChatMessage,
    Completion,
    FinishReason,
    GenerationResult,
    ModelDescription,
    ModelRef,
    SamplingParameters,
    TextDelta,
)
from matcha.generation.facts import FactsInput, check_facts, grounding_texts, render_facts
from matcha.generation.quality import (
    CHECKED_LANGUAGES,
    LANGUAGE_INSTRUCTIONS,
    QualityReport,
    Sources,
    Thresholds,
    assess,
    below_threshold_flag,
    brief_language,
)
from matcha.generation.records import (
    ExemplarRecord,
    NewVoice,
    Page,
    SubjectErasure,
    TemplateRecord,
    VoiceRecord,
    VoiceSource,
)
from matcha.generation.store import GenerationStore
from matcha.generation.templates import TemplateSyntaxError, content_digest, render, template_variables
from matcha.generation.voice import (
    AddressForm,
    Flag,
    LexicalProfile,
    Passage,
    SemanticReference,
    lexical_profile,
    passages_of,
    score_draft,
    semantic_reference,
    split_sentences,
)
from matcha.models.encoders import Encoder, ModelInfo
from matcha.review.attestation import AttestationSigner, AttestedFlag
from matcha.runtime import page_tokens
from matcha.runtime.batching import MicroBatcher
from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, require_describer
from matcha.runtime.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MatchaError,
    NotFound,
    PermissionDenied,
    Violations,
)
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy
from matcha.runtime.pii import PiiEngine

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
ERASURE_ROLE = "admin"
NAME_RULE = "1-63 lowercase letters, digits, '-' or '_', starting with a letter"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int = 64 * 1024
    max_chat_messages: int = 64
    default_max_new_tokens: int = 256
    max_stop_sequences: int = 4
    max_stop_chars: int = 64
    max_exemplars_in_prompt: int = 5
    default_exemplars_in_prompt: int = 3
    max_description_chars: int = 1000
    max_documents: int = 2000
    default_collection_documents: int = 2000
    max_collection_documents: int = 10_000
    max_document_chars: int = 64 * 1024
    max_terms: int = 200
    max_term_chars: int = 100
    min_sentences: int = 5
    default_exemplars: int = 8
    max_exemplars: int = 20
    # Passages embedded to learn a voice: an even sample beyond this.
    max_passages: int = 2000
    default_page_size: int = 50
    max_page_size: int = 200
    # Candidates of one Generate: each costs a full generation.
    max_best_of: int = 5
    max_target_words: int = 1000


@dataclass(frozen=True)
class TemplateCall:
    name: str
    version: int
    variables: dict[str, str]


@dataclass(frozen=True)
class VoiceCall:
    name: str
    version: int
    exemplar_count: int | None


@dataclass(frozen=True)
class ParametersInput:
    """As the caller gave them: 0 and None mean "use the default"."""

    max_new_tokens: int = 0
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class GenerateInput:
    model: str = ""
    prompt: str | None = None
    chat: tuple[ChatMessage, ...] | None = None
    template: TemplateCall | None = None
    voice: VoiceCall | None = None
    parameters: ParametersInput = field(default_factory=ParametersInput)
    json_schema: dict[str, Any] | None = None
    facts: FactsInput | None = None
    language: str = ""
    best_of: int = 0
    target_words: int = 0


@dataclass(frozen=True)
class CandidateOutcome:
    text: str
    quality: QualityReport
    seed: int | None
    finish_reason: FinishReason
    completion_tokens: int
    selected: bool


@dataclass(frozen=True)
class GenerateOutcome:
    text: str
    structured_output: Any
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    model: ModelRef
    backend: BackendKind
    template: TemplateRecord | None
    voice: VoiceRecord | None
    repaired: bool
    create_time: datetime
    # Unset for JSON outputs, which are data rather than drafts.
    quality: QualityReport | None = None
    flags: list[Flag] = field(default_factory=list)
    candidates: list[CandidateOutcome] = field(default_factory=list)
    below_threshold: bool = False
    attestation: str = ""


@dataclass(frozen=True)
class VoiceScoreOutcome:
    score: float
    sentence_length: float
    register: float
    vocabulary: float
    semantic: float
    flags: list[Flag]
    voice: VoiceRecord
    model: ModelInfo


@dataclass(frozen=True)
class DocumentInput:
    id: str
    text: str
    # The text's policy; unset class and purposes are the call's.
    data_class: DataClass | None = None
    consented_purposes: frozenset[str] = frozenset()
    source: str = ""
    subject_id: str = ""


@dataclass
class _Prepared:
    """A validated generation request, ready for its backend."""

    backend: Backend
    request: BackendRequest
    template: TemplateRecord | None
    voice: VoiceRecord | None
    input_field: str
    language: str = "en"
    sources: Sources = field(default_factory=lambda: Sources(()))
    target_words: int = 0
    best_of: int = 1


class GenerationCore:
    def __init__(
        self,
        backends: dict[str, Backend],
        default_model: str,
        store: GenerationStore,
        encoder: Encoder,
        batcher: MicroBatcher[str, np.ndarray],
        limits: Limits,
        collections: CollectionReader,
        *,
        languages: dict[str, tuple[str, ...]] | None = None,
        thresholds: dict[str, Thresholds] | None = None,
        signer: AttestationSigner | None = None,
        pii: PiiEngine | None = None,
    ) -> None:
        self._pii = pii
        self._backends = backends
        # Per model: the languages it may be asked to write in.
        self._languages = languages or {}
        # Per tenant, "*" for every other tenant.
        self._thresholds = thresholds or {}
        self._signer = signer
        self._default_model = default_model
        self._store = store
        self._encoder = encoder
        self._batcher = batcher
        self.limits = limits
        self._collections = collections

    # Models

    def list_models(self, call: CallContext) -> tuple[list[ModelDescription], str]:
        return [backend.description for backend in self._backends.values()], self._default_model

    # Generation

    async def generate(self, call: CallContext, generation: GenerateInput) -> GenerateOutcome:
        prepared = await self._prepare(call, generation)
        if generation.json_schema is not None:
            return await self._generate_json(prepared, generation.json_schema)
        candidates: list[tuple[str, GenerationResult, QualityReport, int | None]] = []
        for index in range(prepared.best_of):
            candidates.append(await self._candidate(call, prepared, index))
        # Selection found no draft in the language asked, or none fluent enough: draw again, at most as many
        # more. Once every draft is in the wrong language, the reply is begun in the right one for the model.
        redraws = prepared.best_of if prepared.best_of > 1 else 0
        for index in range(prepared.best_of, prepared.best_of + redraws):
            kept = min(candidates, key=lambda candidate: candidate[2].rank)[2]
            if kept.language_match and "quality.unknown_words" not in kept.failed:
                break
            opening = ""
            if prepared.backend.description.supports_reply_opening and not any(
                candidate[2].language_match for candidate in candidates
            ):
                openings = REPLY_OPENINGS[prepared.language]
                opening = openings[(index - prepared.best_of) % len(openings)]
            candidates.append(await self._candidate(call, prepared, index, opening))
        best = min(range(len(candidates)), key=lambda index: candidates[index][2].rank)
        text, result, report, _ = candidates[best]
        return self._outcome(
            call,
            prepared,
            text,
            report,
            finish_reason=result.completion.finish_reason,
            prompt_tokens=sum(candidate[1].completion.prompt_tokens for candidate in candidates),
            completion_tokens=sum(candidate[1].completion.completion_tokens for candidate in candidates),
            candidates=[
                CandidateOutcome(
                    text=candidate_text,
                    quality=quality,
                    seed=seed,
                    finish_reason=candidate_result.completion.finish_reason,
                    completion_tokens=candidate_result.completion.completion_tokens,
                    selected=index == best,
                )
                for index, (candidate_text, candidate_result, quality, seed) in enumerate(candidates)
            ],
        )

    async def _candidate(
        self, call: CallContext, prepared: _Prepared, index: int, opening: str = ""
    ) -> tuple[str, GenerationResult, QualityReport, int | None]:
        base = prepared.request.parameters
        seed = None if base.seed is None else base.seed + index
        request = replace(prepared.request, parameters=replace(base, seed=seed), reply_opening=opening)
        result = await self._backend_call(prepared, prepared.backend.generate(request))
        text = opening + result.text
        if prepared.target_words:
            text = complete_sentences(text, result.completion.finish_reason)
        return text, result, await self._assess(call, prepared, text), seed

    async def _generate_json(self, prepared: _Prepared, schema: dict[str, Any]) -> GenerateOutcome:
        result = await self._backend_call(prepared, prepared.backend.generate(prepared.request))
        prompt_tokens, completion_tokens = result.completion.prompt_tokens, result.completion.completion_tokens
        text = result.text
        structured, problems = _check_output(text, schema)
        repaired = False
        if problems:
            repaired = True
            repair = _repair_request(prepared.request, text, problems)
            result = await self._backend_call(prepared, prepared.backend.generate(repair))
            text = result.text
            prompt_tokens += result.completion.prompt_tokens
            completion_tokens += result.completion.completion_tokens
            structured, problems = _check_output(text, schema)
            if problems:
                raise _invalid_output(problems)
        return GenerateOutcome(
            text=text,
            structured_output=structured,
            finish_reason=result.completion.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=prepared.backend.description.model,
            backend=prepared.backend.description.kind,
            template=prepared.template,
            voice=prepared.voice,
            repaired=repaired,
            create_time=datetime.now(UTC),
        )

    def _outcome(
        self,
        call: CallContext,
        prepared: _Prepared,
        text: str,
        report: QualityReport,
        *,
        finish_reason: FinishReason,
        prompt_tokens: int,
        completion_tokens: int,
        candidates: list[CandidateOutcome],
    ) -> GenerateOutcome:
        """The kept draft with its flags, marked when it still fails a check, and signed."""
        flags = list(report.flags)
        if report.failed:
            flags.append(below_threshold_flag(report, len(candidates)))
        model = prepared.backend.description.model
        attestation = ""
        if self._signer is not None:
            attestation = self._signer.sign(
                tenant=call.tenant,
                content=text,
                voice_score=report.voice_score,
                flags=[AttestedFlag(flag.code, flag.severity, tuple(flag.spans)) for flag in flags],
                model=f"{model.id}@{model.version}",
            )
        return GenerateOutcome(
            text=text,
            structured_output=None,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=model,
            backend=prepared.backend.description.kind,
            template=prepared.template,
            voice=prepared.voice,
            repaired=False,
            create_time=datetime.now(UTC),
            quality=report,
            flags=flags,
            candidates=candidates,
            below_threshold=bool(report.failed),
            attestation=attestation,
        )

    async def _assess(self, call: CallContext, prepared: _Prepared, text: str) -> QualityReport:
        voice_score, voice_flags = None, []
        if prepared.voice is not None:
            if text.strip():
                score = await self._voice_score(prepared.voice, text)
                voice_score, voice_flags = score.score, score.flags
            else:
                voice_score = 0.0
        thresholds = self._thresholds.get(call.tenant) or self._thresholds.get("*") or Thresholds()
        return await asyncio.to_thread(
            assess,
            text,
            language=prepared.language,
            sources=prepared.sources,
            thresholds=thresholds,
            target_words=prepared.target_words,
            voice_score=voice_score,
            voice_flags=voice_flags,
            personal_data=self._pii.analyze if self._pii is not None else lambda text: [],
        )

    async def generate_stream(
        self, call: CallContext, generation: GenerateInput
    ) -> AsyncGenerator[str | GenerateOutcome, None]:
        """Text deltas as they come, then the outcome. Closing the iterator stops the backend."""
        prepared = await self._prepare(call, generation)
        parts: list[str] = []
        completion: Completion | None = None
        stream = prepared.backend.stream(prepared.request)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    yield event.text
                else:
                    completion = event
        except InvalidArgument as error:
            raise _with_input_field(error, prepared.input_field) from None
        finally:
            await stream.aclose()
        if completion is None:
            raise RuntimeError(f"backend {prepared.backend.description.name!r} ended its stream without a completion")
        text = "".join(parts)
        structured = None
        if generation.json_schema is None:
            report = await self._assess(call, prepared, text)
            yield self._outcome(
                call,
                prepared,
                text,
                report,
                finish_reason=completion.finish_reason,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                candidates=[
                    CandidateOutcome(
                        text,
                        report,
                        prepared.request.parameters.seed,
                        completion.finish_reason,
                        completion.completion_tokens,
                        True,
                    )
                ],
            )
            return
        structured, problems = _check_output(text, generation.json_schema)
        if problems:
            raise _invalid_output(problems)
        yield GenerateOutcome(
            text=text,
            structured_output=structured,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            model=prepared.backend.description.model,
            backend=prepared.backend.description.kind,
            template=prepared.template,
            voice=prepared.voice,
            repaired=False,
            create_time=datetime.now(UTC),
        )

    async def _backend_call(self, prepared: _Prepared, call):
        try:
            return await call
        except InvalidArgument as error:
            raise _with_input_field(error, prepared.input_field) from None

    async def _prepare(self, call: CallContext, generation: GenerateInput) -> _Prepared:
        violations = Violations()
        model_name = generation.model or self._default_model
        backend = self._backends.get(model_name)
        inputs = [
            path
            for path, value in (
                ("prompt", generation.prompt),
                ("chat", generation.chat),
                ("template", generation.template),
            )
            if value is not None
        ]
        if len(inputs) != 1:
            violations.add("input", "give exactly one of prompt, chat or template")
        if generation.prompt is not None:
            self._check_prompt_text(violations, "prompt", generation.prompt)
        if generation.chat is not None:
            self._check_chat(violations, generation.chat)
        if generation.template is not None:
            violations.check(bool(NAME.match(generation.template.name)), "template.name", NAME_RULE)
            violations.check(generation.template.version >= 0, "template.version", "0 (latest) or a version number")
        if generation.voice is not None:
            self._check_voice_call(violations, generation.voice)
        if generation.facts is not None:
            check_facts(violations, generation.facts)
        best_of = generation.best_of or 1
        violations.check(1 <= best_of <= self.limits.max_best_of, "best_of", f"between 1 and {self.limits.max_best_of}")
        if generation.json_schema is not None:
            violations.check(best_of == 1, "best_of", "1 with json_schema (a JSON output is validated, not ranked)")
        violations.check(
            0 <= generation.target_words <= self.limits.max_target_words,
            "target_words",
            f"between 0 (none) and {self.limits.max_target_words}",
        )
        languages = self._languages.get(model_name, CHECKED_LANGUAGES)
        if generation.language:
            violations.check(
                generation.language in languages,
                "language",
                f"one of {', '.join(languages)} for model {model_name!r}",
            )
        if backend is not None:
            parameters = self._parameters(
                violations, generation.parameters, backend.description, generation.target_words
            )
        if generation.json_schema is not None:
            try:
                jsonschema.validators.validator_for(generation.json_schema).check_schema(generation.json_schema)
            except jsonschema.SchemaError as error:
                violations.add("json_schema", f"not a valid JSON Schema: {error.message}")
        violations.raise_if_any()
        if backend is None:
            raise NotFound(
                f"model {model_name!r} is not configured",
                violations=[FieldViolation("model", f"one of {', '.join(sorted(self._backends))}")],
                reason="MODEL_NOT_FOUND",
                metadata={"model": model_name},
            )
        self._admit(call, backend.description)

        template = None
        template_values: dict[str, str] = {}
        if generation.template is not None:
            template = await self._store.get_template(
                call.tenant, generation.template.name, generation.template.version
            )
            template_values = generation.template.variables
            _check_variables(template, template_values)
        voice = None
        exemplar_count: int | None = None
        if generation.voice is not None:
            voice = await self._usable_voice(call, generation.voice.name, generation.voice.version)
            exemplar_count = generation.voice.exemplar_count

        system_parts: list[str] = []
        if template is not None:
            values = template_values
            if template.system:
                system_parts.append(render(template.system, values))
            conversation = [ChatMessage("user", render(template.template, values))]
            input_field = "template"
        elif generation.chat is not None:
            system_parts.extend(message.content for message in generation.chat if message.role == "system")
            conversation = [message for message in generation.chat if message.role != "system"]
            input_field = "chat"
        else:
            # Validation admitted exactly one of prompt, chat and template.
            assert generation.prompt is not None
            conversation = [ChatMessage("user", generation.prompt)]
            input_field = "prompt"
        brief = conversation[-1].content
        language = generation.language or brief_language(brief, languages)
        if voice is not None:
            count = self.limits.default_exemplars_in_prompt if exemplar_count is None else exemplar_count
            exemplars = await self._closest_exemplars(voice, brief, count)
            system_parts.insert(0, voice_instructions(voice, exemplars))
        if generation.facts is not None and (rendered := render_facts(generation.facts, language)):
            system_parts.append(rendered)
        if generation.json_schema is not None:
            system_parts.append(
                "Reply with only a JSON value, no prose and no code fence, that satisfies this JSON Schema: "
                + json.dumps(generation.json_schema, separators=(",", ":"))
            )
        else:
            if generation.target_words:
                system_parts.append(_length_instruction(generation.target_words, language))
            # Last, nearest the brief: the small local model follows the instruction it read last.
            system_parts.append(LANGUAGE_INSTRUCTIONS[language])
        messages = ([ChatMessage("system", "\n\n".join(system_parts))] if system_parts else []) + conversation
        request = BackendRequest(tuple(messages), parameters, generation.json_schema)
        sources = [*(message.content for message in messages if message.role != "system")]
        if generation.facts is not None:
            sources += grounding_texts(generation.facts)
        if voice is not None:
            sources += [voice.name.replace("-", " "), *voice.preferred_terms]
            sources += [exemplar.text for exemplar in voice.exemplars]
            sources += [term.term for term in learned_profile(voice)[0].signature_terms]
        return _Prepared(
            backend,
            request,
            template,
            voice,
            input_field,
            language=language,
            sources=Sources(tuple(sources)),
            target_words=generation.target_words,
            best_of=best_of,
        )

    @staticmethod
    def _admit(call: CallContext, model: ModelDescription) -> None:
        if call.data_class > model.clearance.max_data_class:
            raise PermissionDenied(
                f"payload class {call.data_class.name} exceeds the clearance {model.clearance.max_data_class.name} "
                f"of model {model.name!r}",
                reason="MODEL_CLEARANCE_EXCEEDED",
                metadata={
                    "model": model.name,
                    "data_class": call.data_class.name,
                    "clearance": model.clearance.max_data_class.name,
                    "inside_trust_boundary": str(model.clearance.inside_trust_boundary).lower(),
                },
            )

    def _check_prompt_text(self, violations: Violations, path: str, text: str) -> None:
        if not text.strip():
            violations.add(path, "must not be empty")
        elif len(text) > self.limits.max_prompt_chars:
            violations.add(path, f"at most {self.limits.max_prompt_chars} characters (got {len(text)})")

    def _check_chat(self, violations: Violations, chat: tuple[ChatMessage, ...]) -> None:
        if not violations.check(
            0 < len(chat) <= self.limits.max_chat_messages,
            "chat.messages",
            f"between 1 and {self.limits.max_chat_messages} messages",
        ):
            return
        for index, message in enumerate(chat):
            path = f"chat.messages[{index}]"
            violations.check(message.role in ROLES, f"{path}.role", "system, user or assistant")
            self._check_prompt_text(violations, f"{path}.content", message.content)
        violations.check(
            chat[-1].role == "user", f"chat.messages[{len(chat) - 1}].role", "the last message must be the user's"
        )

    def _check_voice_call(self, violations: Violations, voice: VoiceCall) -> None:
        violations.check(bool(NAME.match(voice.name)), "voice.name", NAME_RULE)
        violations.check(voice.version >= 0, "voice.version", "0 (latest) or a version number")
        if voice.exemplar_count is not None:
            violations.check(
                0 <= voice.exemplar_count <= self.limits.max_exemplars_in_prompt,
                "voice.exemplar_count",
                f"between 0 and {self.limits.max_exemplars_in_prompt}",
            )

    def _parameters(
        self, violations: Violations, given: ParametersInput, model: ModelDescription, target_words: int = 0
    ) -> SamplingParameters:
        limit = model.max_new_tokens_limit
        default = self.limits.default_max_new_tokens
        if target_words:
            # About two tokens a word in French for small vocabularies, plus room to end the sentence.
            default = math.ceil(target_words * TOKENS_PER_WORD) + 16
        max_new_tokens = given.max_new_tokens or min(default, limit)
        violations.check(
            1 <= max_new_tokens <= limit, "parameters.max_new_tokens", f"between 1 and {limit} for model {model.name!r}"
        )
        temperature = 0.7 if given.temperature is None else given.temperature
        violations.check(0.0 <= temperature <= 2.0, "parameters.temperature", "between 0.0 and 2.0")
        top_p = 1.0 if given.top_p is None else given.top_p
        violations.check(0.0 < top_p <= 1.0, "parameters.top_p", "in (0.0, 1.0]")
        penalty = 1.0 if given.repetition_penalty is None else given.repetition_penalty
        violations.check(1.0 <= penalty <= 2.0, "parameters.repetition_penalty", "between 1.0 and 2.0")
        violations.check(
            len(given.stop) <= self.limits.max_stop_sequences,
            "parameters.stop",
            f"at most {self.limits.max_stop_sequences} sequences",
        )
        for index, stop in enumerate(given.stop):
            violations.check(
                0 < len(stop) <= self.limits.max_stop_chars,
                f"parameters.stop[{index}]",
                f"1 to {self.limits.max_stop_chars} characters",
            )
        return SamplingParameters(max_new_tokens, temperature, top_p, penalty, tuple(given.stop), given.seed)

    async def _closest_exemplars(self, voice: VoiceRecord, brief: str, count: int) -> list[ExemplarRecord]:
        if count == 0 or not voice.exemplars:
            return []
        (brief_vector,) = await self._batcher.submit([brief])
        similarities = np.stack([exemplar.embedding for exemplar in voice.exemplars]) @ brief_vector
        return [voice.exemplars[index] for index in np.argsort(-similarities)[:count]]

    # Prompt templates

    async def create_template(
        self, call: CallContext, name: str, description: str, system: str, template: str
    ) -> tuple[TemplateRecord, bool]:
        violations = Violations()
        violations.check(bool(NAME.match(name)), "name", NAME_RULE)
        violations.check(
            len(description) <= self.limits.max_description_chars,
            "description",
            f"at most {self.limits.max_description_chars} characters",
        )
        variables: set[str] = set()
        for path, text, required in (("system", system, False), ("template", template, True)):
            if required and not text.strip():
                violations.add(path, "must not be empty")
                continue
            if len(text) > self.limits.max_prompt_chars:
                violations.add(path, f"at most {self.limits.max_prompt_chars} characters")
                continue
            try:
                variables |= template_variables(text)
            except TemplateSyntaxError as error:
                violations.add(path, str(error))
        violations.raise_if_any()
        return await self._store.create_template(
            call.tenant,
            name=name,
            description=description,
            system=system,
            template=template,
            variables=sorted(variables),
            sha256=content_digest(system, template),
            subject=call.principal.subject,
        )

    async def get_template(self, call: CallContext, name: str, version: int) -> TemplateRecord:
        self._require_name_and_version(name, version)
        return await self._store.get_template(call.tenant, name, version)

    async def list_templates(self, call: CallContext, name: str, page_size: int, page_token: str) -> Page:
        size, after = self._page_request("templates", name, page_size, page_token)
        return await self._store.list_templates(call.tenant, name, size, after)

    # Voices

    async def learn_voice(
        self,
        call: CallContext,
        *,
        name: str,
        description: str,
        documents: list[DocumentInput],
        preferred_terms: list[str],
        banned_terms: list[str],
        exemplar_count: int,
        collection: CollectionSource | None = None,
    ) -> VoiceRecord:
        """Learns from `documents`, or from the documents of `collection` the caller may see."""
        exemplar_count = exemplar_count or self.limits.default_exemplars
        self._validate_voice_request(
            call,
            name,
            description,
            documents,
            preferred_terms,
            banned_terms,
            exemplar_count,
            from_collection=collection,
        )
        if call.idempotency_key:
            earlier = await self._store.voice_for_idempotency_key(call.tenant, call.idempotency_key)
            if earlier is not None:
                return earlier
        source_field, source_collection = "documents", None
        if collection is not None:
            source_field = "collection"
            contents = await self._collections.read(
                call,
                collection,
                field_path="collection",
                default_limit=self.limits.default_collection_documents,
                max_limit=self.limits.max_collection_documents,
            )
            if not contents.documents:
                raise InvalidArgument(
                    "no document to learn a voice from",
                    violations=[
                        FieldViolation(
                            "collection",
                            f"no document of {collection.collection!r} matches the filter and may be read for "
                            f"purpose {call.purpose!r} at data class {call.data_class.name} or below",
                        )
                    ],
                )
            documents = [
                DocumentInput(
                    document.id,
                    document.text,
                    document.policy.data_class,
                    document.policy.consented_purposes,
                    document.policy.source,
                    document.policy.subject_id,
                )
                for document in contents.documents
            ]
            source_collection = collection.as_record(contents.limit)
        lexical, passages = await asyncio.to_thread(lexical_profile, [(d.id, d.text) for d in documents])
        if lexical.sentence_count < self.limits.min_sentences:
            raise InvalidArgument(
                "too little text to learn a voice from",
                violations=[
                    FieldViolation(
                        source_field,
                        f"at least {self.limits.min_sentences} sentences in all (got {lexical.sentence_count})",
                    )
                ],
            )
        passages = _even_sample(passages, self.limits.max_passages)
        vectors = np.stack(await self._batcher.submit([passage.text for passage in passages]))
        reference, centrality = semantic_reference(vectors)
        exemplars: list[ExemplarRecord] = []
        seen: set[str] = set()
        for index in np.argsort(-centrality):
            passage = passages[index]
            if passage.text not in seen:
                seen.add(passage.text)
                exemplars.append(
                    ExemplarRecord(passage.text, passage.document_id, float(centrality[index]), vectors[index])
                )
            if len(exemplars) == exemplar_count:
                break
        corpus = hashlib.sha256()
        for document in documents:
            corpus.update(hashlib.sha256(document.text.encode()).digest())
        voice = NewVoice(
            name=name,
            description=description,
            lexical=lexical,
            preferred_terms=preferred_terms,
            banned_terms=banned_terms,
            exemplars=exemplars,
            reference=reference,
            model=self._encoder.info,
            corpus_sha256=corpus.hexdigest(),
            source_collection=source_collection,
            sources=tuple(
                VoiceSource(
                    document.id,
                    RecordPolicy.submitted(
                        call, document.data_class, document.consented_purposes, document.source, document.subject_id
                    ),
                )
                for document in documents
                if document.subject_id
            ),
        )
        return await self._store.create_voice(
            call.tenant, voice, subject=call.principal.subject, idempotency_key=call.idempotency_key
        )

    def _validate_voice_request(
        self,
        call: CallContext,
        name: str,
        description: str,
        documents: list[DocumentInput],
        preferred_terms: list[str],
        banned_terms: list[str],
        exemplar_count: int,
        *,
        from_collection: CollectionSource | None,
    ) -> None:
        limits = self.limits
        violations = Violations()
        violations.check(bool(NAME.match(name)), "name", NAME_RULE)
        violations.check(
            len(description) <= limits.max_description_chars,
            "description",
            f"at most {limits.max_description_chars} characters",
        )
        if from_collection is not None:
            violations.check(not documents, "documents", "give documents or a collection, not both")
            check_collection_source(
                violations, "collection", from_collection, max_limit=limits.max_collection_documents
            )
        else:
            violations.check(
                0 < len(documents) <= limits.max_documents,
                "documents",
                f"between 1 and {limits.max_documents} documents, or a collection",
            )
        first_seen: dict[str, int] = {}
        for index, document in enumerate(documents):
            path = f"documents[{index}]"
            if not document.id:
                violations.add(f"{path}.id", "must not be empty")
            elif document.id in first_seen:
                violations.add(f"{path}.id", f"duplicates documents[{first_seen[document.id]}].id")
            else:
                first_seen[document.id] = index
            if not document.text.strip():
                violations.add(f"{path}.text", "must not be empty")
            elif len(document.text) > limits.max_document_chars:
                violations.add(f"{path}.text", f"at most {limits.max_document_chars} characters")
            self._check_document_policy(call, violations, path, document)
        for path, terms in (("preferred_terms", preferred_terms), ("banned_terms", banned_terms)):
            violations.check(len(terms) <= limits.max_terms, path, f"at most {limits.max_terms} terms")
            for index, term in enumerate(terms):
                violations.check(
                    0 < len(term.strip()) <= limits.max_term_chars,
                    f"{path}[{index}]",
                    f"1 to {limits.max_term_chars} characters",
                )
        preferred = {term.strip().lower() for term in preferred_terms}
        for index, term in enumerate(banned_terms):
            violations.check(
                term.strip().lower() not in preferred, f"banned_terms[{index}]", f"{term!r} is also a preferred term"
            )
        violations.check(
            1 <= exemplar_count <= limits.max_exemplars, "exemplar_count", f"between 1 and {limits.max_exemplars}"
        )
        violations.raise_if_any()

    @staticmethod
    def _check_document_policy(call: CallContext, violations: Violations, path: str, document: DocumentInput) -> None:
        """A document's policy cannot claim more than the call declared, nor a purpose it was not given for."""
        if document.data_class is not None and document.data_class > call.data_class:
            violations.add(
                f"{path}.policy.data_class",
                f"{document.data_class.name} exceeds the call's declared data class {call.data_class.name}",
            )
        elif document.consented_purposes and (document.data_class or call.data_class) > DataClass.PUBLIC:
            violations.check(
                call.purpose in document.consented_purposes,
                f"{path}.policy.consented_purposes",
                f"the call's purpose {call.purpose!r} is not among them",
            )

    async def _usable_voice(self, call: CallContext, name: str, version: int) -> VoiceRecord:
        voice = await self._store.get_voice(call.tenant, name, version)
        if voice.withdrawn_at is not None:
            raise _withdrawn(voice)
        return voice

    # Data subjects

    async def erase_subject(self, call: CallContext, subject_id: str) -> SubjectErasure:
        check_subject_id(subject_id)
        call.require_role(ERASURE_ROLE)
        return await self._store.erase_subject(call.tenant, subject_id)

    async def describe_subject(self, call: CallContext, subject_id: str) -> list[SubjectHolding]:
        check_subject_id(subject_id)
        require_describer(call)
        return cap_exports(await self._store.describe_subject(call.tenant, subject_id, call.data_class))

    async def get_voice(self, call: CallContext, name: str, version: int) -> VoiceRecord:
        self._require_name_and_version(name, version)
        return await self._store.get_voice(call.tenant, name, version)

    async def list_voices(self, call: CallContext, name: str, page_size: int, page_token: str) -> Page:
        size, after = self._page_request("voices", name, page_size, page_token)
        return await self._store.list_voices(call.tenant, name, size, after)

    async def score_voice(self, call: CallContext, name: str, version: int, text: str) -> VoiceScoreOutcome:
        violations = Violations()
        violations.check(bool(NAME.match(name)), "voice", NAME_RULE)
        violations.check(version >= 0, "version", "0 (latest) or a version number")
        self._check_prompt_text(violations, "text", text)
        violations.raise_if_any()
        voice = await self._usable_voice(call, name, version)
        score = await self._voice_score(voice, text)
        return VoiceScoreOutcome(
            score.score,
            score.sentence_length,
            score.register,
            score.vocabulary,
            score.semantic,
            score.flags,
            voice,
            self._encoder.info,
        )

    async def _voice_score(self, voice: VoiceRecord, text: str):
        model = self._encoder.info
        if (voice.model.id, voice.model.version) != (model.id, model.version):
            raise FailedPrecondition(
                f"voice {voice.name!r} version {voice.version} was learned with "
                f"{voice.model.id} {voice.model.version}; "
                f"this service runs {model.id} {model.version}: learn it again",
                reason="MODEL_MISMATCH",
                metadata={"voice_model": voice.model.id, "service_model": model.id},
            )
        passages = passages_of("draft", split_sentences(text)) or [Passage(text, "draft")]
        vectors = np.stack(await self._batcher.submit([passage.text for passage in passages]))
        profile, reference = learned_profile(voice)
        return await asyncio.to_thread(
            score_draft,
            text,
            profile=profile,
            preferred_terms=voice.preferred_terms,
            banned_terms=voice.banned_terms,
            reference=reference,
            passage_vectors=vectors,
        )

    # Shared checks

    def _require_name_and_version(self, name: str, version: int) -> None:
        violations = Violations()
        violations.check(bool(NAME.match(name)), "name", NAME_RULE)
        violations.check(version >= 0, "version", "0 (latest) or a version number")
        violations.raise_if_any()

    def _page_request(self, kind: str, name: str, page_size: int, page_token: str) -> tuple[int, str | None]:
        """Page size and position of a listing of `kind` (the versions of `name`, or every name)."""
        violations = Violations()
        if name:
            violations.check(bool(NAME.match(name)), "name", NAME_RULE)
        size = page_size or self.limits.default_page_size
        violations.check(
            1 <= size <= self.limits.max_page_size, "page_size", f"between 1 and {self.limits.max_page_size}"
        )
        after = page_tokens.decode(violations, page_token, page_tokens.listing_key(kind, name))
        if after is not None and not (isinstance(after, str) and (after.isdigit() if name else NAME.match(after))):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        return size, after

    @staticmethod
    def page_token(kind: str, page: Page, name: str) -> str:
        """The opaque token of the next page (empty on the last)."""
        if page.next_after is None:
            return ""
        return page_tokens.encode(page_tokens.listing_key(kind, name), page.next_after)


TOKENS_PER_WORD = 2.0
# How a redrawn reply begins when every draft came back in another language (the small local model
# answers a French voice's prompt in French whatever the instruction says).
REPLY_OPENINGS = {"en": ("We", "Our"), "fr": ("Nous", "Notre")}
SENTENCE_END = re.compile(r"[.!?…](?:[\"'»”)\]]*)(?=\s|$)")


def complete_sentences(text: str, finish_reason: FinishReason) -> str:
    """A draft of a requested length cut by the token limit ends at its last complete sentence
    (when that keeps most of it)."""
    if finish_reason is not FinishReason.LENGTH:
        return text
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= len(text) / 2:
        return text[: ends[-1]]
    return text


def _length_instruction(target_words: int, language: str) -> str:
    if language == "fr":
        return f"Écris environ {target_words} mots."
    return f"Write about {target_words} words."


def _withdrawn(voice: VoiceRecord) -> FailedPrecondition:
    return FailedPrecondition(
        f"voice {voice.name!r} version {voice.version} was withdrawn when a data subject it was learned "
        "from was erased; learn a new version",
        reason="VOICE_WITHDRAWN",
        metadata={"voice": voice.name, "version": str(voice.version)},
    )


def learned_profile(voice: VoiceRecord) -> tuple[LexicalProfile, SemanticReference]:
    """What a voice was learned as; only a withdrawn voice has lost it."""
    if voice.lexical is None or voice.reference is None:
        raise _withdrawn(voice)
    return voice.lexical, voice.reference


def voice_instructions(voice: VoiceRecord, exemplars: list[ExemplarRecord]) -> str:
    """The profile as system instructions: measurable rules first, then passages to imitate."""
    profile, _ = learned_profile(voice)
    register = profile.register
    lines = [
        "Write in the brand's tone of voice.",
        f"- Keep sentences around {profile.sentence_length.p50:.0f} words, "
        f"rarely over {profile.sentence_length.p90:.0f}.",
    ]
    if profile.languages[0] == "fr" and register.address in (AddressForm.FORMAL, AddressForm.INFORMAL):
        lines.append("- Address the reader as " + ('"vous".' if register.address is AddressForm.FORMAL else '"tu".'))
    elif register.second_person_rate >= 0.2:
        lines.append("- Speak directly to the reader.")
    if register.first_person_plural_rate >= 0.1:
        lines.append('- Speak as the brand, in the first person plural ("we").')
    lines.append("- Use contractions." if register.contraction_rate >= 0.15 else "- Avoid contractions.")
    if register.exclamation_rate < 0.02:
        lines.append("- Do not use exclamation marks.")
    if register.emoji_rate >= 0.1:
        lines.append("- Use an emoji now and then.")
    elif register.emoji_rate == 0:
        lines.append("- Never use emoji.")
    favoured = list(dict.fromkeys([*voice.preferred_terms, *(term.term for term in profile.signature_terms[:10])]))
    if favoured:
        lines.append("- Favour these words: " + ", ".join(favoured) + ".")
    if voice.banned_terms:
        lines.append("- Never use these words: " + ", ".join(voice.banned_terms) + ".")
    if exemplars:
        lines.append("Examples of the brand's writing:")
        lines.extend(f'"""{exemplar.text}"""' for exemplar in exemplars)
    return "\n".join(lines)


def _check_variables(template: TemplateRecord, values: dict[str, str]) -> None:
    violations = Violations()
    for variable in template.variables:
        violations.check(
            variable in values,
            f"template.variables[{variable}]",
            f"missing: template {template.name!r} version {template.version} uses it",
        )
    for variable in sorted(set(values) - set(template.variables)):
        violations.add(f"template.variables[{variable}]", f"not a variable of template {template.name!r}")
    violations.raise_if_any("template variables do not match the template")


FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _check_output(text: str, schema: dict) -> tuple[Any, list[FieldViolation]]:
    """The output parsed as JSON and every way it breaks the schema (empty when it satisfies it)."""
    fenced = FENCE.match(text)
    try:
        value = json.loads(fenced[1] if fenced else text)
    except json.JSONDecodeError as error:
        return None, [FieldViolation("text", f"not JSON: {error.msg} at character {error.pos}")]
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        FieldViolation("structured_output" + "".join(f"[{part}]" for part in error.absolute_path), error.message)
        for error in sorted(validator.iter_errors(value), key=lambda error: list(map(str, error.absolute_path)))
    ]
    return value, problems


def _repair_request(request: BackendRequest, text: str, problems: list[FieldViolation]) -> BackendRequest:
    complaint = "; ".join(f"{problem.field}: {problem.description}" for problem in problems)
    messages = (
        *request.messages,
        ChatMessage("assistant", text),
        ChatMessage("user", f"That reply is invalid ({complaint}). Reply again with only the corrected JSON."),
    )
    return BackendRequest(messages, request.parameters, request.json_schema)


def _invalid_output(problems: list[FieldViolation]) -> FailedPrecondition:
    return FailedPrecondition(
        "the model's output does not satisfy json_schema",
        violations=problems,
        reason="OUTPUT_SCHEMA_VIOLATION",
    )


def _with_input_field(error: InvalidArgument, input_field: str) -> MatchaError:
    """A backend's refusal of the prompt, pointed at the request field that carried it."""
    if error.violations:
        return error
    return InvalidArgument(
        error.message,
        violations=[FieldViolation(input_field, error.message)],
        reason=error.reason,
        metadata=error.metadata,
    )


def _even_sample(passages: list[Passage], limit: int) -> list[Passage]:
    if len(passages) <= limit:
        return passages
    return [passages[int(index)] for index in np.linspace(0, len(passages) - 1, limit)]
