"""The tgi backend's overhead per request over calling the same TGI-protocol server with the `text-generation` client.

Target: at most 5 ms per request. Each round sends the same greedy one-token request
both ways (alternating which goes first); the medians are compared.
"""

import statistics
import time

import pytest
from text_generation import AsyncClient

from matcha.generation.app import build_generation_service
from matcha.generation.backend import ChatMessage
from matcha.generation.chat_template import CHATML_TEMPLATE, ChatTemplate
from matcha.generation.local import LocalBackend
from matcha.generation.settings import BackendSettings, GenerationSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.runtime.governance import Clearance, DataClass
from tests.fakes.generation_servers import TgiProtocolServer, serving

PROMPT = "Name one coffee origin."
ROUNDS = 30

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
async def bench_model():
    model = LocalBackend("local", clearance=Clearance(DataClass.PERSONAL, True), context_length=512, threads=1)
    await model.load()
    yield model
    await model.close()


async def test_tgi_backend_overhead_per_request(
    bench_model, local_encoder, postgres_url, state_dir, serve, connect, tenant
):
    tgi = TgiProtocolServer(bench_model)
    async with serving(tgi.app) as url:
        settings = GenerationSettings(
            database_url=postgres_url,
            state_dir=state_dir,
            listen_address="127.0.0.1:0",
            generation_backends=[BackendSettings(name="tgi", kind="tgi", url=url)],
        )
        async with serve(build_generation_service(settings, encoder=local_encoder), settings) as server:
            stub = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
            client = AsyncClient(url)
            prompt = ChatTemplate(CHATML_TEMPLATE).render([ChatMessage("user", PROMPT)])
            request = generation_pb2.GenerateRequest(
                model="tgi",
                prompt=PROMPT,
                parameters=generation_pb2.GenerationParameters(max_new_tokens=1, temperature=0),
            )

            async def direct() -> float:
                started = time.perf_counter()
                await client.generate(prompt, max_new_tokens=1, decoder_input_details=True, stop_sequences=[])
                return time.perf_counter() - started

            async def through_service() -> float:
                started = time.perf_counter()
                await stub.Generate(request)
                return time.perf_counter() - started

            await direct()
            await through_service()
            direct_times, service_times = [], []
            for round_index in range(ROUNDS):
                if round_index % 2 == 0:
                    direct_times.append(await direct())
                    service_times.append(await through_service())
                else:
                    service_times.append(await through_service())
                    direct_times.append(await direct())

    direct_ms = statistics.median(direct_times) * 1000
    service_ms = statistics.median(service_times) * 1000
    overhead_ms = service_ms - direct_ms
    print(
        f"\ntgi backend, 1 new token, median of {ROUNDS}: text-generation client {direct_ms:.1f} ms, "
        f"Generate {service_ms:.1f} ms ({service_ms / direct_ms:.2f}x), overhead {overhead_ms:+.1f} ms"
    )
    assert overhead_ms <= 5
