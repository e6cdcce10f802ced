"""What every generation backend offers the core, in plain Python.

A backend takes chat messages and sampling parameters and yields text deltas,
then one `Completion` with the finish reason and token counts.
"""

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from matcha.runtime.governance import Clearance


class BackendKind(Enum):
    TGI = 1
    OPENAI = 2
    LOCAL = 3


class FinishReason(Enum):
    END_OF_TEXT = 1
    LENGTH = 2
    STOP_SEQUENCE = 3


@dataclass(frozen=True)
class ModelRef:
    id: str
    version: str


@dataclass(frozen=True)
class ModelDescription:
    name: str
    kind: BackendKind
    model: ModelRef
    context_length: int
    max_new_tokens_limit: int
    clearance: Clearance
    supports_json_schema: bool
    # Whether the backend can continue a reply already begun (`BackendRequest.reply_opening`).
    supports_reply_opening: bool = False


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class SamplingParameters:
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class BackendRequest:
    messages: tuple[ChatMessage, ...]
    parameters: SamplingParameters
    # Constrains decoding where the backend can; the core validates the output either way.
    json_schema: dict[str, Any] | None = None
    # The reply starts with this text and the model continues it; the returned text is the continuation.
    reply_opening: str = ""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Completion:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class GenerationResult:
    text: str
    completion: Completion


class StopScanner:
    """Cuts text at the first stop sequence, holding back what could be the start of one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns the text safe to emit, and whether a stop sequence was reached."""
        self._pending += text
        hits = [index for index in (self._pending.find(stop) for stop in self._stops) if index >= 0]
        if hits:
            emitted, self._pending = self._pending[: min(hits)], ""
            return emitted, True
        held = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(self._pending)), held, -1):
                if self._pending.endswith(stop[:length]):
                    held = length
                    break
        cut = len(self._pending) - held
        emitted, self._pending = self._pending[:cut], self._pending[cut:]
        return emitted, False

    def flush(self) -> str:
        emitted, self._pending = self._pending, ""
        return emitted


class Backend(Protocol):
    @property
    def description(self) -> ModelDescription: ...

    async def load(self) -> None: ...

    def stream(self, request: BackendRequest) -> AsyncGenerator[TextDelta | Completion, None]:
        """Deltas as they come, then exactly one Completion. Closing the iterator stops generation."""
        ...

    async def generate(self, request: BackendRequest) -> GenerationResult: ...

    async def close(self) -> None: ...


async def collect(stream: AsyncIterator[TextDelta | Completion]) -> GenerationResult:
    """Joins a stream into one result (for backends whose complete reply is their stream)."""
    parts, completion = [], None
    async for event in stream:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            completion = event
    if completion is None:
        raise RuntimeError("backend stream ended without a completion")
    return GenerationResult("".join(parts), completion)
