"""The TEI backend against a server speaking text-embeddings-inference's protocol."""

import grpc
import numpy as np
import pytest

from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import error_details
from tests.fakes.tei import MAX_CLIENT_BATCH_SIZE, TeiServer


@pytest.fixture
def tei(local_encoder):
    server = TeiServer(local_encoder).start()
    yield server
    server.stop()


@pytest.fixture
async def tei_service(tei, embedding_settings, serve):
    settings = embedding_settings(embedding_backend="tei", embedding_tei_url=tei.url)
    async with serve(build_embedding_service(settings), settings) as server:
        yield server


async def test_embeds_through_tei_and_reports_its_model(tei_service, tei, connect, local_encoder, tenant):
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(tei_service, tenant))
    reply = await stub.Embed(embedding_pb2.EmbedRequest(texts=["hello", "world"]))
    assert (reply.model.id, reply.model.version, reply.dimension) == (tei.model_id, "test-sha", 384)
    expected = local_encoder.encode_now(["hello", "world"])
    assert np.allclose([list(e.values) for e in reply.embeddings], expected, atol=1e-5)
    assert tei.requests[-1]["normalize"] is True and tei.requests[-1]["truncate"] is True


async def test_large_upserts_are_sent_in_tei_sized_chunks(tei_service, tei, connect, tenant):
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(tei_service, tenant))
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="notes"))
    documents = [embedding_pb2.Document(id=str(i), text=f"note number {i}") for i in range(100)]
    reply = await stub.Upsert(embedding_pb2.UpsertRequest(collection="notes", documents=documents))
    assert reply.inserted == 100
    assert max(len(request["inputs"]) for request in tei.requests) <= MAX_CLIENT_BATCH_SIZE
    found = await stub.Search(embedding_pb2.SearchRequest(collection="notes", text="note number 42", top_k=1))
    assert found.results[0].id == "42"


async def test_overload_maps_to_resource_exhausted_with_retry_info(tei_service, tei, connect, tenant):
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(tei_service, tenant))
    tei.overloaded = True
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Embed(embedding_pb2.EmbedRequest(texts=["busy?"]))
    details = error_details(caught.value)
    assert (details.code, details.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "BACKEND_OVERLOADED")
    assert details.retry_after_seconds == pytest.approx(1.0)
    tei.overloaded = False
    assert len((await stub.Embed(embedding_pb2.EmbedRequest(texts=["better"]))).embeddings) == 1


async def test_unreachable_tei_maps_to_unavailable(tei_service, tei, connect, tenant):
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(tei_service, tenant))
    tei.stop()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Embed(embedding_pb2.EmbedRequest(texts=["anyone?"]))
    details = error_details(caught.value)
    assert (details.code, details.reason) == (grpc.StatusCode.UNAVAILABLE, "BACKEND_UNREACHABLE")
    assert details.retry_after_seconds is not None
