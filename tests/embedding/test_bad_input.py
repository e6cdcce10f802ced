"""Every bad request is refused with field violations, writes nothing, and the service keeps serving."""

import json

import grpc
import pytest
from google.protobuf import struct_pb2

from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import DataClass
from tests.support import refused


@pytest.fixture
def stub_for(embedding_server, connect):
    def make(tenant, **kwargs):
        return embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, **kwargs))

    return make


@pytest.fixture
async def stub(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="docs"))
    await stub.Upsert(
        embedding_pb2.UpsertRequest(
            collection="docs", documents=[embedding_pb2.Document(id="keep", text="an existing document")]
        )
    )
    return stub


async def assert_nothing_written(stub):
    collection = await stub.GetCollection(embedding_pb2.GetCollectionRequest(name="docs"))
    assert collection.collection.document_count == 1
    # ...and the service still answers.
    reply = await stub.Search(embedding_pb2.SearchRequest(collection="docs", text="existing", top_k=1))
    assert [result.id for result in reply.results] == ["keep"]


def docs(*pairs):
    return [embedding_pb2.Document(id=key, text=text) for key, text in pairs]


async def test_empty_text(stub):
    details = await refused(
        stub.Upsert(embedding_pb2.UpsertRequest(collection="docs", documents=docs(("a", "fine"), ("b", "   "))))
    )
    assert details.field_violations == {"documents[1].text": "must not be empty"}
    await assert_nothing_written(stub)


async def test_over_long_text(stub):
    details = await refused(
        stub.Upsert(embedding_pb2.UpsertRequest(collection="docs", documents=docs(("a", "fine"), ("b", "x" * 9000))))
    )
    assert list(details.field_violations) == ["documents[1].text"]
    assert "8192" in details.field_violations["documents[1].text"]
    await assert_nothing_written(stub)


async def test_too_many_items(stub):
    details = await refused(
        stub.Upsert(
            embedding_pb2.UpsertRequest(collection="docs", documents=docs(*[(str(i), "text") for i in range(257)]))
        )
    )
    assert "documents" in details.field_violations
    details = await refused(stub.Embed(embedding_pb2.EmbedRequest(texts=["t"] * 257)))
    assert "texts" in details.field_violations
    await assert_nothing_written(stub)


async def test_duplicate_ids_within_one_call(stub):
    details = await refused(
        stub.Upsert(
            embedding_pb2.UpsertRequest(collection="docs", documents=docs(("a", "one"), ("b", "two"), ("a", "three")))
        )
    )
    assert details.field_violations == {"documents[2].id": "duplicates documents[0].id"}
    await assert_nothing_written(stub)


async def test_every_violation_is_reported_at_once(stub):
    details = await refused(
        stub.Upsert(embedding_pb2.UpsertRequest(collection="docs", documents=docs(("", "text"), ("b", ""))))
    )
    assert set(details.field_violations) == {"documents[0].id", "documents[1].text"}


async def test_unknown_collection(stub):
    details = await refused(
        stub.Upsert(embedding_pb2.UpsertRequest(collection="nope", documents=docs(("a", "text")))),
        grpc.StatusCode.NOT_FOUND,
    )
    assert details.reason == "COLLECTION_NOT_FOUND"
    await refused(stub.Search(embedding_pb2.SearchRequest(collection="nope", text="x")), grpc.StatusCode.NOT_FOUND)


async def test_bad_collection_name(stub):
    details = await refused(stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="Bad Name!")))
    assert list(details.field_violations) == ["name"]


async def test_existing_collection(stub):
    details = await refused(
        stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="docs")),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert details.reason == "COLLECTION_EXISTS"


@pytest.mark.parametrize(
    ("filter_document", "field"),
    [
        ({"year": {"$near": 3}}, "filter.year.$near"),
        ({"$nor": []}, "filter.$nor"),
        ({"year": {"$gt": [1, 2]}}, "filter.year.$gt"),
        ({"tag": {"$in": "a"}}, "filter.tag.$in"),
        ({"$or": [{"a": 1}, "b"]}, "filter.$or[1]"),
        ({"bad field": 1}, "filter.bad field"),
        ({"x": {"$exists": "yes"}}, "filter.x.$exists"),
    ],
)
async def test_malformed_filter(stub, filter_document, field):
    query = struct_pb2.Struct()
    query.update(filter_document)
    details = await refused(stub.Search(embedding_pb2.SearchRequest(collection="docs", text="x", filter=query)))
    assert list(details.field_violations) == [field]


async def test_a_filter_of_twenty_thousand_clauses_is_refused_and_the_service_keeps_serving(stub):
    """Once past PostgreSQL's bind-parameter limit, such a filter was an internal error from the database."""
    query = struct_pb2.Struct()
    query.update({"$or": [{"year": year} for year in range(20_000)]})
    searched = await refused(stub.Search(embedding_pb2.SearchRequest(collection="docs", text="x", filter=query)))
    short = json.dumps({"$or": [{"y": year} for year in range(300)]})  # within ListDocuments' 16,384 characters
    listed = await refused(stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="docs", filter=short)))
    for details in (searched, listed):
        assert "at most 256 conditions" in details.field_violations["filter"]
    within = struct_pb2.Struct()
    within.update({"year": {"$in": list(range(20_000))}})
    assert (await stub.Search(embedding_pb2.SearchRequest(collection="docs", text="x", filter=within))).results == []


async def test_search_parameters(stub):
    details = await refused(stub.Search(embedding_pb2.SearchRequest(collection="docs", top_k=500)))
    assert set(details.field_violations) == {"query", "top_k"}
    details = await refused(
        stub.Search(embedding_pb2.SearchRequest(collection="docs", vector=embedding_pb2.Embedding(values=[0.1, 0.2])))
    )
    assert list(details.field_violations) == ["vector.values"]


async def test_other_tenants_collections_do_not_exist(stub, stub_for):
    intruder = stub_for("another-tenant")
    await refused(intruder.GetCollection(embedding_pb2.GetCollectionRequest(name="docs")), grpc.StatusCode.NOT_FOUND)
    await refused(
        intruder.Search(embedding_pb2.SearchRequest(collection="docs", text="existing")),
        grpc.StatusCode.NOT_FOUND,
    )
    await refused(
        intruder.Delete(embedding_pb2.DeleteRequest(collection="docs", ids=["keep"])),
        grpc.StatusCode.NOT_FOUND,
    )
    listed = await intruder.ListCollections(embedding_pb2.ListCollectionsRequest())
    assert "docs" not in [collection.name for collection in listed.collections]
    await assert_nothing_written(stub)


async def test_payload_class_above_the_declared_class(stub):
    details = await refused(
        stub.Upsert(
            embedding_pb2.UpsertRequest(
                collection="docs",
                documents=[
                    embedding_pb2.Document(
                        id="p",
                        text="Alice, 12 Main St",
                        policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_PERSONAL),
                    )
                ],
            )
        )
    )
    assert list(details.field_violations) == ["documents[0].policy.data_class"]
    await assert_nothing_written(stub)


async def test_personal_record_not_consented_for_the_call_purpose(stub_for, tenant, stub):
    personal = stub_for(tenant, data_class=DataClass.PERSONAL, purpose="listening")
    details = await refused(
        personal.Upsert(
            embedding_pb2.UpsertRequest(
                collection="docs",
                documents=[
                    embedding_pb2.Document(
                        id="p",
                        text="Alice likes boots",
                        policy=common_pb2.RecordPolicy(
                            data_class=common_pb2.DATA_CLASS_PERSONAL, consented_purposes=["campaign"]
                        ),
                    )
                ],
            )
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert details.reason == "PURPOSE_NOT_CONSENTED"
    await assert_nothing_written(stub)
