"""Health tells the truth while starting and stopping; unbuilt methods answer UNIMPLEMENTED."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.embedding.app import SERVICE_NAME, build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import Clearance, DataClass
from matcha.runtime.server import MatchaServer, ServiceDefinition

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def server_for(definition: ServiceDefinition, verifier, port: int = 0) -> MatchaServer:
    return MatchaServer(
        definition,
        listen_address=f"127.0.0.1:{port}",
        verifier=verifier,
        clearance=Clearance(DataClass.PERSONAL, True),
        tracer_provider=TracerProvider(),
        access_ledger=None,
        grace_period_seconds=5,
        drain_seconds=0.5,
    )


async def health_of(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        return reply.status


async def test_not_serving_until_the_start_hook_finished(verifier, unused_tcp_port):
    release = asyncio.Event()

    async def slow_start():
        await release.wait()  # e.g. loading a model, migrating the database

    def register(server):
        embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(embedding_pb2_grpc.EmbeddingServiceServicer(), server)

    server = server_for(ServiceDefinition("slow", [SERVICE_NAME], register, slow_start), verifier, unused_tcp_port)
    starting = asyncio.create_task(server.start())
    for _ in range(100):
        try:
            assert await health_of(unused_tcp_port) == NOT_SERVING
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)  # not bound yet
    else:
        pytest.fail("the port was never bound while starting")
    release.set()
    await starting
    assert await health_of(unused_tcp_port) == SERVING
    await server.stop()


async def test_unbuilt_methods_answer_unimplemented(verifier, issuer, connect):
    def register(server):
        embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(embedding_pb2_grpc.EmbeddingServiceServicer(), server)

    server = server_for(ServiceDefinition("unbuilt", [SERVICE_NAME], register), verifier)
    await server.start()
    try:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(server, "acme"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Embed(embedding_pb2.EmbedRequest(texts=["x"]))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop()


async def test_graceful_shutdown_drains_in_flight_calls(embedding_settings, verifier, local_encoder, connect):
    class SlowEncoder:
        info = local_encoder.info
        entered = asyncio.Event()

        async def load(self):
            return None

        async def encode(self, texts):
            self.entered.set()
            await asyncio.sleep(1.0)
            return await local_encoder.encode(texts)

        async def close(self):
            return None

    encoder = SlowEncoder()
    server = server_for(build_embedding_service(embedding_settings(), encoder=encoder), verifier)
    await server.start()
    channel = connect(server, "acme")
    stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
    in_flight = asyncio.ensure_future(stub.Embed(embedding_pb2.EmbedRequest(texts=["still answered"])))
    await encoder.entered.wait()
    stopping = asyncio.create_task(server.stop())
    health = health_pb2_grpc.HealthStub(channel)
    while (await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))).status != NOT_SERVING:
        assert not in_flight.done(), "the in-flight call ended before the server reported NOT_SERVING"
        await asyncio.sleep(0.02)
    reply = await in_flight
    assert len(reply.embeddings) == 1
    await stopping
