"""Local backend through GenerateStream against the same model called in-process, in the same run.

Targets: tokens/s at least 0.9x in-process; time to first token at most 20 ms over in-process.
Both sides decode greedily the same prompt with the same sampling settings, alternating
which goes first, after a warm-up, so the KV prefix cache helps both alike.
"""

import asyncio
import statistics
import time

import pytest

from matcha.generation.app import build_generation_service
from matcha.generation.backend import BackendRequest, ChatMessage
from matcha.generation.local import LocalBackend
from matcha.generation.quality import LANGUAGE_INSTRUCTIONS
from matcha.generation.settings import GenerationSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.runtime.governance import Clearance, DataClass

PROMPT = "Write a long, detailed story about a coffee roaster who travels to Ethiopia to meet farmers."
MAX_NEW_TOKENS = 96
ROUNDS = 5

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
async def bench_model():
    model = LocalBackend("local", clearance=Clearance(DataClass.PERSONAL, True), context_length=1024, threads=1)
    await model.load()
    yield model
    await model.close()


def _in_process(model: LocalBackend) -> tuple[float, float, int, str]:
    """Time to first token (s), tokens/s, tokens, text: llama-cpp-python's own streaming API."""
    # The service adds the draft's language (the brief's) as a system instruction: the same prompt here.
    messages = (ChatMessage("system", LANGUAGE_INSTRUCTIONS["en"]), ChatMessage("user", PROMPT))
    prompt = model.chat_prompt(BackendRequest(messages, None))
    started = time.perf_counter()
    first, parts, tokens = None, [], 0
    for chunk in model.llm.create_completion(
        prompt, max_tokens=MAX_NEW_TOKENS, temperature=0.0, top_k=0, min_p=0.0, top_p=1.0, stream=True
    ):
        text = chunk["choices"][0]["text"]
        if chunk["choices"][0]["finish_reason"] is None:
            tokens += 1
        if text and first is None:
            first = time.perf_counter() - started
        parts.append(text)
    elapsed = time.perf_counter() - started
    return first, tokens / elapsed, tokens, "".join(parts)


async def _through_service(stub) -> tuple[float, float, int, str, float]:
    request = generation_pb2.GenerateStreamRequest(
        prompt=PROMPT, parameters=generation_pb2.GenerationParameters(max_new_tokens=MAX_NEW_TOKENS, temperature=0.0)
    )
    started = time.perf_counter()
    first, last, result = None, None, None
    async for message in stub.GenerateStream(request):
        if message.text_delta:
            last = time.perf_counter() - started
            first = first if first is not None else last
        if message.HasField("result"):
            result = message.result
    # The rate runs to the last token, as in-process; the scores of the draft come after it, timed apart.
    scoring = time.perf_counter() - started - last
    return first, result.usage.completion_tokens / last, result.usage.completion_tokens, result.text, scoring


async def test_local_stream_keeps_up_with_the_model_in_process(
    bench_model, local_encoder, postgres_url, state_dir, serve, connect, tenant
):
    settings = GenerationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    definition = build_generation_service(settings, encoder=local_encoder, shared_backends={"local": bench_model})
    async with serve(definition, settings) as server:
        stub = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
        await _through_service(stub)  # warm-up: prompt in the KV cache, channel connected
        direct, service = [], []
        for round_index in range(ROUNDS):
            pair = [lambda: asyncio.to_thread(_in_process, bench_model), lambda: _through_service(stub)]
            outcomes = [await run() for run in (pair if round_index % 2 == 0 else pair[::-1])]
            direct.append(outcomes[0] if round_index % 2 == 0 else outcomes[1])
            service.append(outcomes[1] if round_index % 2 == 0 else outcomes[0])

    assert service[0][3] == direct[0][3], "both sides must generate the same text"
    direct_rate = statistics.median(outcome[1] for outcome in direct)
    service_rate = statistics.median(outcome[1] for outcome in service)
    direct_ttft = statistics.median(outcome[0] for outcome in direct)
    service_ttft = statistics.median(outcome[0] for outcome in service)
    ratio = service_rate / direct_rate
    scoring_ms = statistics.median(outcome[4] for outcome in service) * 1000
    overhead_ms = (service_ttft - direct_ttft) * 1000
    print(
        f"\nlocal generation, {service[0][2]} tokens, median of {ROUNDS}: "
        f"in-process {direct_rate:.1f} tok/s, TTFT {direct_ttft * 1000:.1f} ms; "
        f"GenerateStream {service_rate:.1f} tok/s ({ratio:.2f}x), TTFT {service_ttft * 1000:.1f} ms "
        f"(+{overhead_ms:.1f} ms); the scored result {scoring_ms:.0f} ms after the last token"
    )
    assert ratio >= 0.9
    assert overhead_ms <= 20
