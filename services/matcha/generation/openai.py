"""Any OpenAI-compatible `/v1/chat/completions` server: vLLM, SGLang, TGI's messages API.

The server applies its own chat template. Streaming asks for the usage chunk
(`stream_options.include_usage`); vLLM's `stop_reason` tells a stop sequence
from the end of text, which the OpenAI protocol otherwise both call "stop".
"""

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from matcha.generation.backend import (
    BackendKind,
    BackendRequest,
    Completion,
    FinishReason,
    GenerationResult,
    ModelDescription,
    ModelRef,
    TextDelta,
)
from matcha.runtime.errors import InvalidArgument, MatchaError, ResourceExhausted, Unavailable
from matcha.runtime.governance import Clearance

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1.0


def _finish_reason(choice: dict) -> FinishReason:
    if choice.get("finish_reason") == "length":
        return FinishReason.LENGTH
    return FinishReason.STOP_SEQUENCE if isinstance(choice.get("stop_reason"), str) else FinishReason.END_OF_TEXT


def _error_message(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    error = payload.get("error", payload)
    return str(error.get("message", error) if isinstance(error, dict) else error)


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", RETRY_AFTER_SECONDS))
    except ValueError:
        return RETRY_AFTER_SECONDS


class OpenAIBackend:
    def __init__(
        self,
        name: str,
        *,
        url: str,
        clearance: Clearance,
        remote_model: str | None = None,
        api_key: str | None = None,
        context_length: int = 4096,
        max_new_tokens_limit: int = 1024,
        timeout_seconds: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._name = name
        self._url = url.rstrip("/")
        self._clearance = clearance
        self._remote_model = remote_model
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self._url, headers=headers, timeout=timeout_seconds, transport=transport
        )
        self._context_length = context_length
        self._max_new_tokens_limit = max_new_tokens_limit
        self._description: ModelDescription | None = None

    @property
    def description(self) -> ModelDescription:
        if self._description is None:
            raise RuntimeError("OpenAI-compatible server not reached yet")
        return self._description

    async def load(self) -> None:
        listing = (await self._request("GET", "/v1/models")).json().get("data", [])
        entry = next((model for model in listing if model.get("id") == self._remote_model), None)
        if entry is None:
            if self._remote_model is not None or not listing:
                raise RuntimeError(f"model {self._remote_model!r} is not served at {self._url} (it serves {listing})")
            entry = listing[0]
        self._remote_model = entry["id"]
        context_length = int(entry.get("max_model_len") or self._context_length)
        self._description = ModelDescription(
            name=self._name,
            kind=BackendKind.OPENAI,
            # vLLM reports the weights it loaded as `root`; other servers only name the model.
            model=ModelRef(entry["id"], str(entry.get("root") or entry.get("created") or "unversioned")),
            context_length=context_length,
            max_new_tokens_limit=min(self._max_new_tokens_limit, context_length - 1),
            clearance=self._clearance,
            supports_json_schema=True,
        )
        logger.info("OpenAI-compatible backend ready", extra={"model": entry["id"], "url": self._url})

    def _body(self, request: BackendRequest, *, stream: bool) -> dict:
        parameters = request.parameters
        body: dict[str, Any] = {
            "model": self._remote_model,
            "messages": [{"role": message.role, "content": message.content} for message in request.messages],
            "max_tokens": parameters.max_new_tokens,
            "temperature": parameters.temperature,
            "top_p": parameters.top_p,
            "stream": stream,
        }
        if parameters.stop:
            body["stop"] = list(parameters.stop)
        if parameters.seed is not None:
            body["seed"] = parameters.seed
        if parameters.repetition_penalty != 1.0:
            body["repetition_penalty"] = parameters.repetition_penalty  # vLLM and SGLang extension
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema},
            }
        return body

    async def generate(self, request: BackendRequest) -> GenerationResult:
        reply = (await self._request("POST", "/v1/chat/completions", json=self._body(request, stream=False))).json()
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        completion = Completion(
            _finish_reason(choice), usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        )
        return GenerationResult(choice["message"].get("content") or "", completion)

    async def stream(self, request: BackendRequest) -> AsyncGenerator[TextDelta | Completion, None]:
        finish: FinishReason | None = None
        usage: dict = {}
        deltas = 0
        try:
            async with self._client.stream(
                "POST", "/v1/chat/completions", json=self._body(request, stream=True)
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise self._status_error(response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise Unavailable(
                            f"generation backend failed mid-stream: {_error_message_of(chunk)}",
                            reason="BACKEND_ERROR",
                            retry_after_seconds=RETRY_AFTER_SECONDS,
                        )
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices", []):
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            deltas += 1
                            yield TextDelta(content)
                        if choice.get("finish_reason"):
                            finish = _finish_reason(choice)
        except (httpx.TransportError, json.JSONDecodeError) as error:
            raise self._transport_error(error) from None
        if finish is None:
            raise Unavailable(
                "generation backend ended the stream before its final event",
                reason="BACKEND_UNREACHABLE",
                metadata={"url": self._url},
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        # Servers that ignore include_usage: one delta is one token on every server we know.
        yield Completion(finish, usage.get("prompt_tokens", 0), usage.get("completion_tokens", deltas))

    async def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self._transport_error(error) from None
        if not response.is_success:
            raise self._status_error(response)
        return response

    def _transport_error(self, error: Exception) -> MatchaError:
        return Unavailable(
            f"generation backend unreachable or cut off: {type(error).__name__}",
            reason="BACKEND_UNREACHABLE",
            metadata={"url": self._url},
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    def _status_error(self, response: httpx.Response) -> MatchaError:
        message = _error_message(response)
        if response.status_code == 429:
            return ResourceExhausted(
                f"generation backend overloaded: {message}",
                reason="BACKEND_OVERLOADED",
                retry_after_seconds=_retry_after(response),
            )
        if response.status_code in (400, 413, 422):
            return InvalidArgument(f"generation backend refused the request: {message}", reason="BACKEND_VALIDATION")
        return Unavailable(
            f"generation backend failed ({response.status_code}): {message}",
            reason="BACKEND_ERROR",
            metadata={"status": str(response.status_code)},
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _error_message_of(chunk: dict) -> str:
    error = chunk["error"]
    return str(error.get("message", error) if isinstance(error, dict) else error)
