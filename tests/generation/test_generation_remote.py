"""The tgi and openai backends against servers speaking those protocols, backed by the real local model."""

import grpc
import pytest

from matcha.generation.app import build_generation_service
from matcha.generation.settings import BackendSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.runtime.client import error_details
from tests.fakes.generation_servers import LoopbackSite, TgiProtocolServer

BRIEF = "Write one sentence about fresh coffee."


def _greedy(max_new_tokens: int, **kwargs) -> generation_pb2.GenerationParameters:
    return generation_pb2.GenerationParameters(max_new_tokens=max_new_tokens, temperature=0.0, **kwargs)


async def _stream(stub, request) -> tuple[list[str], generation_pb2.GenerateResponse | None]:
    deltas, result = [], None
    async for message in stub.GenerateStream(request):
        if message.HasField("result"):
            result = message.result
        else:
            deltas.append(message.text_delta)
    return deltas, result


@pytest.mark.parametrize(("model", "kind"), [("tgi", "BACKEND_KIND_TGI"), ("vllm", "BACKEND_KIND_OPENAI")])
async def test_remote_backends_generate_and_stream(stub_for, tenant, model, kind):
    stub = stub_for(tenant)
    reply = await stub.Generate(generation_pb2.GenerateRequest(model=model, prompt=BRIEF, parameters=_greedy(10)))
    assert reply.backend == getattr(generation_pb2, kind)
    assert reply.text and 1 <= reply.usage.completion_tokens <= 10
    assert reply.usage.prompt_tokens > 5
    assert reply.provenance.model == reply.model and reply.model.version

    deltas, result = await _stream(
        stub, generation_pb2.GenerateStreamRequest(model=model, prompt=BRIEF, parameters=_greedy(10))
    )
    assert len(deltas) >= 2 and "".join(deltas) == result.text
    assert result.text == reply.text  # greedy: the same text either way
    assert result.usage.prompt_tokens == reply.usage.prompt_tokens


@pytest.mark.parametrize("model", ["tgi", "vllm"])
async def test_remote_stop_sequences_are_honoured(stub_for, tenant, model):
    stub = stub_for(tenant)
    full = (await stub.Generate(generation_pb2.GenerateRequest(model=model, prompt=BRIEF, parameters=_greedy(16)))).text
    stop = full.split()[2]
    reply = await stub.Generate(
        generation_pb2.GenerateRequest(model=model, prompt=BRIEF, parameters=_greedy(16, stop=[stop]))
    )
    assert reply.finish_reason == generation_pb2.FINISH_REASON_STOP_SEQUENCE
    assert reply.text == full[: full.index(stop)]


async def test_tgi_receives_the_parameters_in_its_own_terms(stub_for, tenant, tgi_server):
    server = tgi_server[1]
    await stub_for(tenant).Generate(
        generation_pb2.GenerateRequest(
            model="tgi",
            prompt=BRIEF,
            parameters=generation_pb2.GenerationParameters(
                max_new_tokens=4, temperature=0.5, top_p=0.9, repetition_penalty=1.2, seed=7, stop=["\n\n"]
            ),
        )
    )
    sent = server.requests[-1]
    # The draft's language (the brief's, here) is the last system instruction, just before the brief.
    assert sent["inputs"].startswith(
        "<|im_start|>system\nWrite your reply in English only.<|im_end|>\n<|im_start|>user\n" + BRIEF
    )
    parameters = sent["parameters"]
    assert parameters["do_sample"] is True and parameters["temperature"] == 0.5
    assert parameters["top_p"] == pytest.approx(0.9) and parameters["repetition_penalty"] == pytest.approx(1.2)
    assert (parameters["seed"], parameters["stop"], parameters["max_new_tokens"]) == (7, ["\n\n"], 4)


async def test_tgi_overloaded_is_resource_exhausted_with_retry(stub_for, tenant, tgi_server):
    server = tgi_server[1]
    server.max_concurrent_requests = 0
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub_for(tenant).Generate(generation_pb2.GenerateRequest(model="tgi", prompt=BRIEF))
    finally:
        server.max_concurrent_requests = 128
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "BACKEND_OVERLOADED" and details.retry_after_seconds > 0


@pytest.mark.parametrize("model", ["tgi", "vllm"])
async def test_remote_validation_error_is_invalid_argument(stub_for, tenant, model):
    long_prompt = "Tell me about coffee roasting and grinding. " * 150
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for(tenant).Generate(
            generation_pb2.GenerateRequest(model=model, prompt=long_prompt, parameters=_greedy(8))
        )
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "BACKEND_VALIDATION" and set(details.field_violations) == {"prompt"}


async def test_tgi_vanishing_mid_stream_ends_the_stream_unavailable(stub_for, tenant, tgi_server):
    server = tgi_server[1]
    server.drop_stream_after_tokens = 2
    try:
        deltas = []
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for message in stub_for(tenant).GenerateStream(
                generation_pb2.GenerateStreamRequest(model="tgi", prompt=BRIEF, parameters=_greedy(30)),
                timeout=30,
            ):
                deltas.append(message.text_delta)
    finally:
        server.drop_stream_after_tokens = None
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.UNAVAILABLE and details.reason == "BACKEND_UNREACHABLE"
    assert details.retry_after_seconds > 0
    assert len(deltas) == 2


async def test_unreachable_tgi_is_unavailable_and_the_service_keeps_serving(
    generation_settings, serve, connect, local_encoder, local_model, tenant
):
    site = LoopbackSite(TgiProtocolServer(local_model).app)
    url = await site.start()
    settings = generation_settings(
        [
            BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside"),
            BackendSettings(name="tgi", kind="tgi", url=url),
        ]
    )
    definition = build_generation_service(settings, encoder=local_encoder, shared_backends={"local": local_model})
    async with serve(definition, settings) as server:
        await site.stop()  # the TGI server goes away after the service started
        stub = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Generate(generation_pb2.GenerateRequest(model="tgi", prompt=BRIEF, parameters=_greedy(4)))
        assert error_details(raised.value).code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _stream(stub, generation_pb2.GenerateStreamRequest(model="tgi", prompt=BRIEF, parameters=_greedy(4)))
        details = error_details(raised.value)
        assert details.code == grpc.StatusCode.UNAVAILABLE and details.reason == "BACKEND_UNREACHABLE"
        reply = await stub.Generate(generation_pb2.GenerateRequest(prompt=BRIEF, parameters=_greedy(3)))
        assert reply.text
