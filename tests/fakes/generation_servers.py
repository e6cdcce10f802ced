"""Servers that speak TGI's and the OpenAI chat-completions HTTP protocols, backed by the real local model.

Remote inference servers cannot run here; these stand in for them on loopback,
with the request and response shapes, SSE framing and error payloads of the
real ones, and the real SmolLM2 generating every token.
"""

import json
import time
import uuid
from contextlib import asynccontextmanager

from aiohttp import web

from matcha.generation.backend import BackendRequest, ChatMessage, Completion, FinishReason, SamplingParameters
from matcha.generation.local import LocalBackend
from matcha.runtime.errors import InvalidArgument

TGI_FINISH = {
    FinishReason.LENGTH: "length",
    FinishReason.END_OF_TEXT: "eos_token",
    FinishReason.STOP_SEQUENCE: "stop_sequence",
}
EOS_TEXT = "<|im_end|>"


class LoopbackSite:
    """An aiohttp app on a free loopback port."""

    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app)

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


@asynccontextmanager
async def serving(app: web.Application):
    """Yields the base URL of the app served on loopback until the block ends."""
    site = LoopbackSite(app)
    url = await site.start()
    try:
        yield url
    finally:
        await site.stop()


class TgiProtocolServer:
    """`/generate`, `/generate_stream`, `/` (either, by `stream`), `/tokenize`, `/info`, `/health`.

    `max_concurrent_requests` refuses extra requests with TGI's overloaded error;
    `drop_stream_after_tokens` cuts the connection mid-stream, as a crashed server would.
    """

    def __init__(self, model: LocalBackend, *, max_concurrent_requests: int = 128) -> None:
        self.model = model
        self.max_concurrent_requests = max_concurrent_requests
        self.drop_stream_after_tokens: int | None = None
        self.requests: list[dict] = []
        self._in_flight = 0
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/info", self._info),
                web.get("/health", self._health),
                web.post("/tokenize", self._tokenize),
                web.post("/generate", self._generate),
                web.post("/generate_stream", self._generate_stream),
                web.post("/", self._compat),
            ]
        )

    async def _info(self, request: web.Request) -> web.Response:
        description = self.model.description
        return web.json_response(
            {
                "model_id": description.model.id,
                "model_sha": description.model.version,
                "model_dtype": "gguf",
                "model_device_type": "cpu",
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": self.max_concurrent_requests,
                "max_best_of": 1,
                "max_stop_sequences": 4,
                "max_input_tokens": description.context_length - 1,
                "max_total_tokens": description.context_length,
                "validation_workers": 1,
                "max_client_batch_size": 4,
                "router": "text-generation-router",
                "version": "3.3.6",
            }
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        ids = self.model.tokenize(body["inputs"])
        tokens, offset = [], 0
        for token_id in ids:
            text = self.model.llm.detokenize([token_id], special=True).decode(errors="replace")
            tokens.append({"id": token_id, "text": text, "start": offset, "stop": offset + len(text)})
            offset += len(text)
        return web.json_response(tokens)

    async def _compat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("stream"):
            return await self._stream(request, body)
        return await self._complete(body, as_list=True)

    async def _generate(self, request: web.Request) -> web.Response:
        return await self._complete(await request.json(), as_list=False)

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, await request.json())

    def _validate(self, body: dict) -> tuple[str, SamplingParameters, dict | None]:
        self.requests.append(body)
        inputs, parameters = body.get("inputs", ""), body.get("parameters") or {}
        if not inputs:
            raise _TgiError(422, "validation", "`inputs` cannot be empty")
        if parameters.get("temperature") is not None and parameters["temperature"] <= 0:
            raise _TgiError(422, "validation", "`temperature` must be strictly positive")
        if self._in_flight >= self.max_concurrent_requests:
            raise _TgiError(429, "overloaded", "Model is overloaded")
        sampling = parameters.get("do_sample", False)
        grammar = parameters.get("grammar")
        return (
            inputs,
            SamplingParameters(
                max_new_tokens=parameters.get("max_new_tokens") or 20,
                temperature=parameters.get("temperature") or 1.0 if sampling else 0.0,
                top_p=parameters.get("top_p") or 1.0,
                repetition_penalty=parameters.get("repetition_penalty") or 1.0,
                stop=tuple(parameters.get("stop") or ()),
                seed=parameters.get("seed"),
            ),
            grammar["value"] if grammar and grammar.get("type") == "json" else None,
        )

    async def _complete(self, body: dict, *, as_list: bool) -> web.Response:
        try:
            prompt, parameters, schema = self._validate(body)
            self._in_flight += 1
            try:
                parts, completion = [], None
                async for event in self.model.stream_prompt(prompt, parameters, schema):
                    if isinstance(event, Completion):
                        completion = event
                    else:
                        parts.append(event.text)
            finally:
                self._in_flight -= 1
        except _TgiError as error:
            return error.response()
        except InvalidArgument as error:
            return _TgiError(422, "validation", error.message).response()
        details = {
            "finish_reason": TGI_FINISH[completion.finish_reason],
            "generated_tokens": completion.completion_tokens,
            "seed": parameters.seed,
            "prefill": [],
            "tokens": [],
        }
        if (body.get("parameters") or {}).get("decoder_input_details"):
            details["prefill"] = [{"id": token, "text": "", "logprob": None} for token in self.model.tokenize(prompt)]
        reply = {"generated_text": "".join(parts), "details": details}
        # The compatibility route answers a list, /generate one object.
        return web.json_response([reply] if as_list else reply)

    async def _stream(self, request: web.Request, body: dict) -> web.StreamResponse:
        try:
            prompt, parameters, schema = self._validate(body)
        except _TgiError as error:
            return error.response()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        self._in_flight += 1
        try:
            index, parts = 0, []
            events = self.model.stream_prompt(prompt, parameters, schema)
            try:
                first = await anext(events)
            except InvalidArgument as error:
                return _TgiError(422, "validation", error.message).response()
            await response.prepare(request)
            event = first
            while True:
                if isinstance(event, Completion):
                    final_token = {
                        "id": index,
                        "text": EOS_TEXT if event.finish_reason is FinishReason.END_OF_TEXT else "",
                        "logprob": None,
                        "special": True,
                    }
                    payload = {
                        "index": index,
                        "token": final_token,
                        "generated_text": "".join(parts),
                        "details": {
                            "finish_reason": TGI_FINISH[event.finish_reason],
                            "generated_tokens": event.completion_tokens,
                            "seed": parameters.seed,
                        },
                    }
                    await response.write(_sse(payload))
                    break
                if self.drop_stream_after_tokens is not None and index >= self.drop_stream_after_tokens:
                    await events.aclose()
                    request.transport.close()
                    return response
                parts.append(event.text)
                payload = {
                    "index": index,
                    "token": {"id": index, "text": event.text, "logprob": None, "special": False},
                    "generated_text": None,
                    "details": None,
                }
                await response.write(_sse(payload))
                index += 1
                event = await anext(events)
        finally:
            self._in_flight -= 1
        await response.write_eof()
        return response


def _sse(payload: dict) -> bytes:
    return f"data:{json.dumps(payload)}\n\n".encode()


class _TgiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def response(self) -> web.Response:
        return web.json_response({"error": self.message, "error_type": self.error_type}, status=self.status)


class OpenAIProtocolServer:
    """`/v1/models` and `/v1/chat/completions` (complete or SSE stream, with usage), vLLM flavoured."""

    def __init__(self, model: LocalBackend, *, served_name: str = "smollm2-135m-instruct") -> None:
        self.model = model
        self.served_name = served_name
        self.requests: list[dict] = []
        self.app = web.Application()
        self.app.add_routes([web.get("/v1/models", self._models), web.post("/v1/chat/completions", self._chat)])

    async def _models(self, request: web.Request) -> web.Response:
        description = self.model.description
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.served_name,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": description.model.version,
                        "max_model_len": description.context_length,
                    }
                ],
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if body.get("model") != self.served_name:
            return _openai_error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.")
        if not body.get("messages"):
            return _openai_error(400, "BadRequestError", "messages must not be empty")
        backend_request = BackendRequest(
            tuple(ChatMessage(message["role"], message["content"]) for message in body["messages"]),
            SamplingParameters(
                max_new_tokens=body.get("max_tokens") or 16,
                temperature=body.get("temperature", 1.0),
                top_p=body.get("top_p", 1.0),
                repetition_penalty=body.get("repetition_penalty", 1.0),
                stop=tuple(body.get("stop") or ()),
                seed=body.get("seed"),
            ),
            ((body.get("response_format") or {}).get("json_schema") or {}).get("schema"),
        )
        events = self.model.stream(backend_request)
        try:
            first = await anext(events)
        except InvalidArgument as error:
            return _openai_error(400, "BadRequestError", error.message)
        identity = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": self.served_name}
        if not body.get("stream"):
            parts, event = [], first
            while not isinstance(event, Completion):
                parts.append(event.text)
                event = await anext(events)
            return web.json_response(
                {
                    **identity,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(parts)},
                            **_finish(event, body),
                        }
                    ],
                    "usage": _usage(event),
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        chunk = {**identity, "object": "chat.completion.chunk"}
        event = first
        while not isinstance(event, Completion):
            delta = {"index": 0, "delta": {"role": "assistant", "content": event.text}, "finish_reason": None}
            await response.write(_openai_sse({**chunk, "choices": [delta]}))
            event = await anext(events)
        await response.write(_openai_sse({**chunk, "choices": [{"index": 0, "delta": {}, **_finish(event, body)}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(_openai_sse({**chunk, "choices": [], "usage": _usage(event)}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _finish(completion: Completion, body: dict) -> dict:
    if completion.finish_reason is FinishReason.LENGTH:
        return {"finish_reason": "length", "stop_reason": None}
    if completion.finish_reason is FinishReason.STOP_SEQUENCE:
        # vLLM names the stop string that matched; the local model does not say which, so the first stands in.
        return {"finish_reason": "stop", "stop_reason": body["stop"][0]}
    return {"finish_reason": "stop", "stop_reason": None}


def _usage(completion: Completion) -> dict:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def _openai_sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _openai_error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response(
        {"object": "error", "message": message, "type": error_type, "param": None, "code": status}, status=status
    )
