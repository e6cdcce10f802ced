"""Refused requests: the right status, field violations, no model time spent, and the service keeps serving."""

import grpc
import pytest
from google.protobuf import struct_pb2

from matcha.generation.v1 import generation_pb2
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass


def _params(**kwargs) -> generation_pb2.GenerationParameters:
    return generation_pb2.GenerationParameters(**kwargs)


def _schema(values: dict) -> struct_pb2.Struct:
    schema = struct_pb2.Struct()
    schema.update(values)
    return schema


CHAT_ENDING_WITH_ASSISTANT = generation_pb2.Chat(
    messages=[
        generation_pb2.ChatMessage(role=generation_pb2.CHAT_ROLE_USER, content="Hi"),
        generation_pb2.ChatMessage(role=generation_pb2.CHAT_ROLE_ASSISTANT, content="Hello"),
    ]
)

INVALID = [
    (generation_pb2.GenerateRequest(), {"input"}),
    (generation_pb2.GenerateRequest(prompt="   "), {"prompt"}),
    (generation_pb2.GenerateRequest(prompt="x" * 70_000), {"prompt"}),
    (
        generation_pb2.GenerateRequest(prompt="Hi", parameters=_params(max_new_tokens=5000)),
        {"parameters.max_new_tokens"},
    ),
    (
        generation_pb2.GenerateRequest(
            prompt="Hi",
            parameters=_params(temperature=3.0, top_p=0.0, repetition_penalty=0.5, stop=["", "a", "b", "c", "d"]),
        ),
        {
            "parameters.temperature",
            "parameters.top_p",
            "parameters.repetition_penalty",
            "parameters.stop",
            "parameters.stop[0]",
        },
    ),
    (generation_pb2.GenerateRequest(chat=CHAT_ENDING_WITH_ASSISTANT), {"chat.messages[1].role"}),
    (
        generation_pb2.GenerateRequest(chat=generation_pb2.Chat(messages=[generation_pb2.ChatMessage(content="Hi")])),
        {"chat.messages[0].role"},
    ),
    (generation_pb2.GenerateRequest(prompt="Hi", json_schema=_schema({"type": "nonsense"})), {"json_schema"}),
    (
        generation_pb2.GenerateRequest(prompt="Hi", voice=generation_pb2.VoiceSelection(name="v", exemplar_count=9)),
        {"voice.exemplar_count"},
    ),
]


@pytest.mark.parametrize(("request_message", "fields"), INVALID)
async def test_invalid_generate_requests_name_every_bad_field(stub_for, tenant, request_message, fields):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for(tenant).Generate(request_message)
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(details.field_violations) == fields


async def test_prompt_longer_than_the_context_is_refused_before_generating(stub_for, tenant, local_model):
    long_prompt = "Tell me about coffee roasting and grinding. " * 150  # about 1,300 tokens, context is 1,024
    for request in (
        generation_pb2.GenerateRequest(prompt=long_prompt, parameters=_params(max_new_tokens=8)),
        generation_pb2.GenerateStreamRequest(prompt=long_prompt, parameters=_params(max_new_tokens=8)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            if isinstance(request, generation_pb2.GenerateRequest):
                await stub_for(tenant).Generate(request)
            else:
                async for _ in stub_for(tenant).GenerateStream(request):
                    pass
        details = error_details(raised.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert details.reason == "CONTEXT_LENGTH_EXCEEDED" and set(details.field_violations) == {"prompt"}
    assert local_model.pending == 0


async def test_unknown_model_is_not_found(stub_for, tenant):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for(tenant).Generate(generation_pb2.GenerateRequest(model="gpt-9", prompt="Hi"))
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert details.reason == "MODEL_NOT_FOUND" and set(details.field_violations) == {"model"}


async def test_personal_data_never_goes_to_a_model_outside_the_boundary(stub_for, tenant, tgi_server):
    stub = stub_for(tenant, data_class=DataClass.PERSONAL)
    sent_before = len(tgi_server[1].requests)
    for model in ("tgi", "vllm"):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Generate(
                generation_pb2.GenerateRequest(model=model, prompt="Write to Jane Doe, jane@example.com")
            )
        details = error_details(raised.value)
        assert details.code == grpc.StatusCode.PERMISSION_DENIED
        assert details.reason == "MODEL_CLEARANCE_EXCEEDED"
        assert details.metadata == {
            "model": model,
            "data_class": "PERSONAL",
            "clearance": "INTERNAL",
            "inside_trust_boundary": "false",
        }
    assert len(tgi_server[1].requests) == sent_before
    # The local model is cleared for personal data.
    reply = await stub.Generate(
        generation_pb2.GenerateRequest(prompt="Say hi to Jane.", parameters=_params(max_new_tokens=3))
    )
    assert reply.usage.completion_tokens >= 1
