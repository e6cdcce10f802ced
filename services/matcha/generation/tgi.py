"""A text-generation-inference server, through the `text-generation` client.

TGI's `/generate` takes a raw prompt: chat messages are rendered with the
configured chat template (ChatML by default). Its errors become domain errors:
overloaded -> RESOURCE_EXHAUSTED, validation -> INVALID_ARGUMENT, unreachable or
failing mid-stream -> UNAVAILABLE, with RetryInfo where a retry can help.
"""

import asyncio
import json
import logging
from collections.abc import AsyncGenerator

import aiohttp
from text_generation import AsyncClient
from text_generation import errors as tgi_errors
from text_generation.types import Grammar, GrammarType

from matcha.generation.backend import (
    BackendKind,
    BackendRequest,
    Completion,
    FinishReason,
    GenerationResult,
    ModelDescription,
    ModelRef,
    SamplingParameters,
    StopScanner,
    TextDelta,
)
from matcha.generation.chat_template import CHATML_TEMPLATE, ChatTemplate
from matcha.runtime.errors import InvalidArgument, MatchaError, ResourceExhausted, Unavailable
from matcha.runtime.governance import Clearance

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1.0
FINISH_REASONS = {
    "length": FinishReason.LENGTH,
    "eos_token": FinishReason.END_OF_TEXT,
    "stop_sequence": FinishReason.STOP_SEQUENCE,
}


def _sampling(parameters: SamplingParameters) -> dict:
    """Our parameters in the client's terms: it refuses temperature 0, top_p 1 and unit penalties."""
    sampling = parameters.temperature > 0
    return {
        "do_sample": sampling,
        "max_new_tokens": parameters.max_new_tokens,
        "temperature": parameters.temperature if sampling else None,
        "top_p": parameters.top_p if sampling and parameters.top_p < 1.0 else None,
        "repetition_penalty": parameters.repetition_penalty if parameters.repetition_penalty != 1.0 else None,
        "stop_sequences": list(parameters.stop),
        "seed": parameters.seed,
    }


def backend_error(error: BaseException, url: str) -> MatchaError:
    """A client or transport failure in the terms a caller can act on."""
    if isinstance(error, (tgi_errors.OverloadedError, tgi_errors.RateLimitExceededError)):
        return ResourceExhausted(
            f"generation backend overloaded: {error}",
            reason="BACKEND_OVERLOADED",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    if isinstance(error, (tgi_errors.ValidationError, tgi_errors.BadRequestError)):
        return InvalidArgument(f"generation backend refused the request: {error}", reason="BACKEND_VALIDATION")
    if isinstance(error, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)):
        return Unavailable(
            f"generation backend unreachable or cut off: {type(error).__name__}",
            reason="BACKEND_UNREACHABLE",
            metadata={"url": url},
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    return Unavailable(
        f"generation backend failed: {type(error).__name__}: {error}",
        reason="BACKEND_ERROR",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


CLIENT_ERRORS = (
    tgi_errors.ValidationError,
    tgi_errors.GenerationError,
    tgi_errors.OverloadedError,
    tgi_errors.IncompleteGenerationError,
    tgi_errors.BadRequestError,
    tgi_errors.ShardNotReadyError,
    tgi_errors.ShardTimeoutError,
    tgi_errors.NotFoundError,
    tgi_errors.RateLimitExceededError,
    tgi_errors.UnknownError,
    aiohttp.ClientError,
    TimeoutError,
    json.JSONDecodeError,
)


class TgiBackend:
    def __init__(
        self,
        name: str,
        *,
        url: str,
        clearance: Clearance,
        chat_template: str | None = None,
        context_length: int = 4096,
        max_new_tokens_limit: int = 1024,
        timeout_seconds: float = 120.0,
    ) -> None:
        self._name = name
        self._url = url.rstrip("/")
        self._clearance = clearance
        self._template = ChatTemplate(chat_template or CHATML_TEMPLATE)
        self._context_length = context_length
        self._max_new_tokens_limit = max_new_tokens_limit
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._client = AsyncClient(self._url, timeout=int(timeout_seconds))
        self._session: aiohttp.ClientSession | None = None
        self._description: ModelDescription | None = None

    @property
    def description(self) -> ModelDescription:
        if self._description is None:
            raise RuntimeError("TGI server not reached yet")
        return self._description

    async def load(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        info = await self._get_json("/info")
        context_length = int(info.get("max_total_tokens") or self._context_length)
        self._description = ModelDescription(
            name=self._name,
            kind=BackendKind.TGI,
            model=ModelRef(
                info.get("model_id") or "unknown", info.get("model_sha") or info.get("version") or "unknown"
            ),
            context_length=context_length,
            max_new_tokens_limit=min(self._max_new_tokens_limit, context_length - 1),
            clearance=self._clearance,
            supports_json_schema=True,
            supports_reply_opening=True,
        )
        logger.info("TGI backend ready", extra={"model": self._description.model.id, "url": self._url})

    async def generate(self, request: BackendRequest) -> GenerationResult:
        try:
            response = await self._client.generate(
                self._template.render(request.messages) + request.reply_opening,
                decoder_input_details=True,
                grammar=_grammar(request),
                **_sampling(request.parameters),
            )
        except CLIENT_ERRORS as error:
            raise backend_error(error, self._url) from None
        details = response.details
        text, stopped = StopScanner(request.parameters.stop).feed(response.generated_text)
        finish = FinishReason.STOP_SEQUENCE if stopped else FINISH_REASONS[details.finish_reason.value]
        return GenerationResult(text, Completion(finish, len(details.prefill), details.generated_tokens))

    async def stream(self, request: BackendRequest) -> AsyncGenerator[TextDelta | Completion, None]:
        prompt = self._template.render(request.messages) + request.reply_opening
        # /generate_stream reports no prompt tokens: count them on the side while tokens flow.
        counting = asyncio.ensure_future(self._count_tokens(prompt))
        stops = StopScanner(request.parameters.stop)
        events = self._client.generate_stream(prompt, grammar=_grammar(request), **_sampling(request.parameters))
        try:
            async for event in events:
                if not event.token.special:
                    text, stopped = stops.feed(event.token.text)
                    if text:
                        yield TextDelta(text)
                    if stopped:
                        yield Completion(
                            FinishReason.STOP_SEQUENCE,
                            await counting,
                            event.details.generated_tokens if event.details else 0,
                        )
                        return
                if event.details is not None:
                    tail = stops.flush()
                    if tail:
                        yield TextDelta(tail)
                    finish = FINISH_REASONS[event.details.finish_reason.value]
                    yield Completion(finish, await counting, event.details.generated_tokens)
                    return
        except CLIENT_ERRORS as error:
            raise backend_error(error, self._url) from None
        finally:
            counting.cancel()
            await events.aclose()
        raise Unavailable(
            "generation backend ended the stream before its final event",
            reason="BACKEND_UNREACHABLE",
            metadata={"url": self._url},
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    def _loaded_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("backend not loaded")
        return self._session

    async def _count_tokens(self, prompt: str) -> int:
        try:
            async with self._loaded_session().post(f"{self._url}/tokenize", json={"inputs": prompt}) as response:
                if response.status == 200:
                    return len(await response.json())
                logger.warning("TGI /tokenize refused; prompt tokens unknown", extra={"status": response.status})
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("TGI /tokenize failed; prompt tokens unknown", extra={"error": type(error).__name__})
        return 0

    async def _get_json(self, path: str) -> dict:
        try:
            async with self._loaded_session().get(f"{self._url}{path}") as response:
                response.raise_for_status()
                return await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise backend_error(error, self._url) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _grammar(request: BackendRequest) -> Grammar | None:
    return Grammar(type=GrammarType.Json, value=request.json_schema) if request.json_schema else None
