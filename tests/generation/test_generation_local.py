"""Generation with the real local model over real gRPC: replies, streaming, stops, cancellation, queueing."""

import asyncio
import re

import grpc
import pytest
from google.protobuf import struct_pb2

from matcha.common.v1 import common_pb2
from matcha.generation.backend import BackendRequest, ChatMessage
from matcha.generation.quality import LANGUAGE_INSTRUCTIONS
from matcha.generation.v1 import generation_pb2
from matcha.runtime.client import error_details

BRIEF = "Write one sentence inviting customers to taste our new Ethiopian coffee."


def _greedy(max_new_tokens: int, **kwargs) -> generation_pb2.GenerationParameters:
    return generation_pb2.GenerationParameters(max_new_tokens=max_new_tokens, temperature=0.0, **kwargs)


async def _idle_soon(model, seconds: float = 5.0) -> bool:
    """Whether the model has nothing running or queued within `seconds` (its thread reports back asynchronously)."""
    for _ in range(int(seconds / 0.05)):
        if model.pending == 0:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_list_models_describes_each_backend(stub_for, tenant):
    reply = await stub_for(tenant).ListModels(generation_pb2.ListModelsRequest())
    models = {model.name: model for model in reply.models}
    assert set(models) == {"local", "tgi", "vllm"}
    local = models["local"]
    assert local.default and local.backend == generation_pb2.BACKEND_KIND_LOCAL
    assert local.model.id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert re.fullmatch(r"0\.1\.2\+sha256\.[0-9a-f]{16}", local.model.version)
    assert (local.clearance, local.inside_trust_boundary) == (common_pb2.DATA_CLASS_PERSONAL, True)
    assert local.context_length == 1024 and local.supports_json_schema
    assert models["tgi"].backend == generation_pb2.BACKEND_KIND_TGI
    assert models["tgi"].model.id == local.model.id  # as the TGI server's /info reports it
    assert (models["tgi"].clearance, models["tgi"].inside_trust_boundary) == (common_pb2.DATA_CLASS_INTERNAL, False)
    assert models["vllm"].backend == generation_pb2.BACKEND_KIND_OPENAI
    assert models["vllm"].model.id == "smollm2-135m-instruct"


async def test_generate_matches_the_model_called_in_process(stub_for, tenant, local_model):
    reply = await stub_for(tenant).Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=_greedy(12)))
    # The service adds the draft's language (the brief's) as a system instruction.
    messages = (ChatMessage("system", LANGUAGE_INSTRUCTIONS["en"]), ChatMessage("user", BRIEF))
    prompt = local_model.chat_prompt(BackendRequest(messages, None))
    direct = await asyncio.to_thread(
        local_model.llm.create_completion, prompt, max_tokens=12, temperature=0.0, top_k=0, min_p=0.0, top_p=1.0
    )
    assert reply.text == direct["choices"][0]["text"]
    assert reply.usage.completion_tokens == direct["usage"]["completion_tokens"]
    assert reply.usage.prompt_tokens == len(local_model.tokenize(prompt))
    assert reply.finish_reason in (generation_pb2.FINISH_REASON_LENGTH, generation_pb2.FINISH_REASON_END_OF_TEXT)
    assert reply.backend == generation_pb2.BACKEND_KIND_LOCAL
    assert reply.model.id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert reply.provenance.model == reply.model
    assert re.fullmatch(r"[0-9a-f]{32}", reply.provenance.trace_id)
    assert reply.provenance.create_time.seconds > 0


async def test_same_seed_same_text(stub_for, tenant):
    stub = stub_for(tenant)
    parameters = generation_pb2.GenerationParameters(max_new_tokens=10, temperature=1.0, seed=42)
    first = await stub.Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=parameters))
    second = await stub.Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=parameters))
    assert first.text == second.text and first.text


async def test_stream_yields_deltas_that_add_up_to_the_result(stub_for, tenant):
    deltas, results = [], []
    async for message in stub_for(tenant).GenerateStream(
        generation_pb2.GenerateStreamRequest(prompt=BRIEF, parameters=_greedy(12))
    ):
        if message.HasField("result"):
            results.append(message.result)
            assert message.text_delta == ""
        else:
            deltas.append(message.text_delta)
    assert len(results) == 1 and len(deltas) >= 3
    assert "".join(deltas) == results[0].text
    assert results[0].usage.completion_tokens <= 12


async def test_stop_sequence_cuts_the_text_before_it(stub_for, tenant):
    stub = stub_for(tenant)
    full = (await stub.Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=_greedy(16)))).text
    words = full.split()
    assert len(words) >= 4
    stop = words[2]
    reply = await stub.Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=_greedy(16, stop=[stop])))
    assert reply.finish_reason == generation_pb2.FINISH_REASON_STOP_SEQUENCE
    assert reply.text == full[: full.index(stop)]


async def test_cancelling_a_stream_stops_the_model(stub_for, tenant, local_model):
    call = stub_for(tenant).GenerateStream(
        generation_pb2.GenerateStreamRequest(
            prompt=BRIEF, parameters=generation_pb2.GenerationParameters(max_new_tokens=400)
        )
    )
    received = 0
    async for _ in call:
        received += 1
        if received == 2:
            break
    call.cancel()
    # 400 tokens would keep the model busy for many seconds; a stopped generation frees it at once.
    assert await _idle_soon(local_model)


async def test_a_full_queue_refuses_with_retry_info(stub_for, tenant, local_model):
    stub = stub_for(tenant)
    parameters = generation_pb2.GenerationParameters(max_new_tokens=24)
    calls = [stub.Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=parameters)) for _ in range(5)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    refused = [outcome for outcome in outcomes if isinstance(outcome, grpc.aio.AioRpcError)]
    served = [outcome for outcome in outcomes if isinstance(outcome, generation_pb2.GenerateResponse)]
    assert len(served) == 3 and len(refused) == 2  # one running, two queued (queue_size=2)
    details = error_details(refused[0])
    assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "LOCAL_QUEUE_FULL" and details.retry_after_seconds > 0
    assert await _idle_soon(local_model)


async def test_json_schema_output_is_parsed_and_valid(stub_for, tenant):
    schema = struct_pb2.Struct()
    schema.update(
        {
            "type": "object",
            "properties": {"headline": {"type": "string", "maxLength": 40}, "urgent": {"type": "boolean"}},
            "required": ["headline", "urgent"],
        }
    )
    reply = await stub_for(tenant).Generate(
        generation_pb2.GenerateRequest(prompt="Headline for a coffee sale.", json_schema=schema, parameters=_greedy(60))
    )
    value = reply.structured_output.struct_value
    assert set(value.fields) == {"headline", "urgent"}
    assert isinstance(value["urgent"], bool) and len(value["headline"]) <= 40


async def test_output_still_invalid_after_repair_is_a_failed_precondition(stub_for, tenant):
    # Grammars cannot express multipleOf: the model writes some integer, the validator refuses it twice.
    schema = struct_pb2.Struct()
    schema.update({"type": "integer", "minimum": 1000, "multipleOf": 7919})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for(tenant).Generate(
            generation_pb2.GenerateRequest(prompt="Pick a number.", json_schema=schema, parameters=_greedy(8))
        )
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "OUTPUT_SCHEMA_VIOLATION"
    assert any("multiple of 7919" in description for description in details.field_violations.values())
