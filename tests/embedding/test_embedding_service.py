"""The embedding service over real gRPC, real PostgreSQL and the real model."""

import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass
from tests.support import struct

REVIEWS = {
    "r1": "The battery lasts all day and charging is fast.",
    "r2": "Delivery was late and the box arrived crushed.",
    "r3": "Customer support answered my question within minutes.",
    "r4": "The phone screen cracked after one week.",
}


@pytest.fixture
def stub_for(embedding_server, connect):
    def make(tenant, **kwargs):
        return embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, **kwargs))

    return make


async def _collection_with_reviews(stub, name="reviews"):
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name=name, description="product reviews"))
    documents = [
        embedding_pb2.Document(id=key, text=text, metadata=struct({"stars": stars, "lang": "en"}))
        for (key, text), stars in zip(REVIEWS.items(), [5, 1, 5, 1], strict=True)
    ]
    return await stub.Upsert(embedding_pb2.UpsertRequest(collection=name, documents=documents))


async def test_embed_returns_normalised_vectors_and_the_model(stub_for, tenant):
    reply = await stub_for(tenant).Embed(embedding_pb2.EmbedRequest(texts=["hello world", "bonjour le monde"]))
    assert reply.dimension == 384
    assert reply.model.id == "sentence-transformers/all-MiniLM-L6-v2"
    assert "sha256." in reply.model.version
    assert len(reply.embeddings) == 2
    norm = sum(value * value for value in reply.embeddings[0].values) ** 0.5
    assert norm == pytest.approx(1.0, abs=1e-4)


async def test_upsert_then_search_finds_the_semantically_closest(stub_for, tenant):
    stub = stub_for(tenant)
    outcome = await _collection_with_reviews(stub)
    assert (outcome.inserted, outcome.updated, outcome.unchanged) == (4, 0, 0)

    reply = await stub.Search(embedding_pb2.SearchRequest(collection="reviews", text="shipping was slow", top_k=2))
    assert len(reply.results) == 2 and reply.results[0].id == "r2"
    assert reply.results[0].score > reply.results[1].score
    assert reply.results[0].metadata["stars"] == 1
    assert reply.results[0].policy.data_class == common_pb2.DATA_CLASS_INTERNAL
    assert reply.model.id == "sentence-transformers/all-MiniLM-L6-v2"


async def test_upsert_is_idempotent_by_id(stub_for, tenant):
    stub = stub_for(tenant)
    await _collection_with_reviews(stub)
    again = await _collection_with_reviews_documents_only(stub)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)

    changed = await stub.Upsert(
        embedding_pb2.UpsertRequest(
            collection="reviews",
            documents=[embedding_pb2.Document(id="r1", text="The battery died after two hours.")],
        )
    )
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 0)
    collection = await stub.GetCollection(embedding_pb2.GetCollectionRequest(name="reviews"))
    assert collection.collection.document_count == 4
    reply = await stub.Search(embedding_pb2.SearchRequest(collection="reviews", text="battery dies quickly", top_k=1))
    assert reply.results[0].id == "r1" and "two hours" in reply.results[0].text


async def _collection_with_reviews_documents_only(stub):
    documents = [
        embedding_pb2.Document(id=key, text=text, metadata=struct({"stars": stars, "lang": "en"}))
        for (key, text), stars in zip(REVIEWS.items(), [5, 1, 5, 1], strict=True)
    ]
    return await stub.Upsert(embedding_pb2.UpsertRequest(collection="reviews", documents=documents))


async def test_metadata_filters(stub_for, tenant):
    stub = stub_for(tenant)
    await _collection_with_reviews(stub)

    async def ids(filter_document):
        reply = await stub.Search(
            embedding_pb2.SearchRequest(
                collection="reviews", text="product quality", top_k=10, filter=struct(filter_document)
            )
        )
        return sorted(result.id for result in reply.results)

    assert await ids({"stars": 5}) == ["r1", "r3"]
    assert await ids({"stars": {"$lt": 3}}) == ["r2", "r4"]
    assert await ids({"$or": [{"stars": {"$gte": 5}}, {"lang": {"$in": ["fr"]}}]}) == ["r1", "r3"]
    assert await ids({"lang": {"$ne": "en"}}) == []
    assert await ids({"missing": {"$exists": False}, "stars": {"$nin": [1]}}) == ["r1", "r3"]


async def test_search_by_vector_and_min_score(stub_for, tenant):
    stub = stub_for(tenant)
    await _collection_with_reviews(stub)
    embedded = await stub.Embed(embedding_pb2.EmbedRequest(texts=[REVIEWS["r3"]]))
    reply = await stub.Search(
        embedding_pb2.SearchRequest(collection="reviews", vector=embedded.embeddings[0], top_k=4, min_score=0.99)
    )
    assert [result.id for result in reply.results] == ["r3"]
    assert not reply.HasField("model")


async def test_delete_by_id_and_collection_lifecycle(stub_for, tenant):
    stub = stub_for(tenant)
    await _collection_with_reviews(stub)
    deleted = await stub.Delete(embedding_pb2.DeleteRequest(collection="reviews", ids=["r1", "r2", "nope"]))
    assert deleted.deleted == 2
    listed = await stub.ListCollections(embedding_pb2.ListCollectionsRequest())
    assert [(c.name, c.document_count) for c in listed.collections] == [("reviews", 2)]
    # Dropping a whole collection is the tenant admin's.
    dropped = await stub_for(tenant, roles=("admin",)).DeleteCollection(
        embedding_pb2.DeleteCollectionRequest(name="reviews")
    )
    assert dropped.deleted_documents == 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetCollection(embedding_pb2.GetCollectionRequest(name="reviews"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_erasure_of_a_subject_across_collections_needs_admin(stub_for, tenant):
    analyst, admin = stub_for(tenant, data_class=DataClass.PERSONAL), stub_for(tenant, roles=("admin",))
    for name in ("crm-notes", "support-tickets"):
        await analyst.CreateCollection(embedding_pb2.CreateCollectionRequest(name=name))
        await analyst.Upsert(
            embedding_pb2.UpsertRequest(
                collection=name,
                documents=[
                    embedding_pb2.Document(
                        id="a",
                        text="Alice asked for a refund",
                        policy=common_pb2.RecordPolicy(
                            data_class=common_pb2.DATA_CLASS_PERSONAL,
                            consented_purposes=["campaign"],
                            subject_id="alice",
                        ),
                    ),
                    embedding_pb2.Document(
                        id="b",
                        text="Bob praised the new app",
                        policy=common_pb2.RecordPolicy(
                            data_class=common_pb2.DATA_CLASS_PERSONAL,
                            consented_purposes=["campaign"],
                            subject_id="bob",
                        ),
                    ),
                ],
            )
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await analyst.EraseSubject(embedding_pb2.EraseSubjectRequest(subject_id="alice"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(caught.value).reason == "MISSING_ROLE"

    erased = await admin.EraseSubject(embedding_pb2.EraseSubjectRequest(subject_id="alice"))
    assert erased.erased_documents == 2
    assert list(erased.collections) == ["crm-notes", "support-tickets"]
    reply = await analyst.Search(embedding_pb2.SearchRequest(collection="crm-notes", text="refund", top_k=5))
    assert [result.id for result in reply.results] == ["b"]


async def test_search_only_returns_records_consented_for_the_purpose(stub_for, tenant):
    writer = stub_for(tenant, data_class=DataClass.PERSONAL, purpose="campaign")
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="customers"))
    await writer.Upsert(
        embedding_pb2.UpsertRequest(
            collection="customers",
            documents=[
                embedding_pb2.Document(
                    id="consented",
                    text="Loves hiking boots",
                    policy=common_pb2.RecordPolicy(
                        data_class=common_pb2.DATA_CLASS_PERSONAL,
                        consented_purposes=["campaign", "listening"],
                    ),
                ),
                embedding_pb2.Document(
                    id="campaign-only",
                    text="Loves hiking trails",
                    policy=common_pb2.RecordPolicy(
                        data_class=common_pb2.DATA_CLASS_PERSONAL, consented_purposes=["campaign"]
                    ),
                ),
                embedding_pb2.Document(
                    id="public",
                    text="Hiking gear catalogue",
                    policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_PUBLIC),
                ),
            ],
        )
    )
    listener = stub_for(tenant, purpose="listening", data_class=DataClass.PERSONAL)
    reply = await listener.Search(embedding_pb2.SearchRequest(collection="customers", text="hiking", top_k=10))
    assert sorted(result.id for result in reply.results) == ["consented", "public"]
