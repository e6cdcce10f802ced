"""ListDocuments: a collection read back page by page, with Search's visibility rules, over real gRPC and PostgreSQL."""

import json

import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass
from tests.support import struct


@pytest.fixture
def stub_for(embedding_server, connect):
    def make(tenant, **kwargs):
        return embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, **kwargs))

    return make


async def _fill(stub, name: str, count: int) -> None:
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name=name))
    documents = [
        embedding_pb2.Document(
            id=f"doc-{index:03d}",
            text=f"Review number {index}: the parcel arrived {'late' if index % 2 else 'on time'}.",
            metadata=struct({"stars": index % 5 + 1, "lang": "en" if index % 3 else "fr"}),
        )
        for index in range(count)
    ]
    await stub.Upsert(embedding_pb2.UpsertRequest(collection=name, documents=documents))


async def _list_all(stub, page_token="", **fields) -> list[embedding_pb2.StoredDocument]:
    documents, token = [], page_token
    while True:
        page = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(page_token=token, **fields))
        documents.extend(page.documents)
        token = page.next_page_token
        if not token:
            return documents


async def test_pages_cover_the_collection_once_in_id_order(stub_for, tenant):
    stub = stub_for(tenant)
    await _fill(stub, "reviews", 25)

    first = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews", page_size=10))
    assert [document.id for document in first.documents] == [f"doc-{index:03d}" for index in range(10)]
    assert first.next_page_token
    assert first.model.id == "sentence-transformers/all-MiniLM-L6-v2"
    document = first.documents[4]
    assert document.text == "Review number 4: the parcel arrived on time."
    assert document.metadata["stars"] == 5 and document.metadata["lang"] == "en"
    assert document.policy.data_class == common_pb2.DATA_CLASS_INTERNAL
    assert list(document.policy.consented_purposes) == ["campaign"]
    assert document.update_time.seconds > 0
    assert not document.HasField("embedding")

    everything = await _list_all(stub, collection="reviews", page_size=10)
    assert [document.id for document in everything] == [f"doc-{index:03d}" for index in range(25)]
    last = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews", page_size=25))
    assert len(last.documents) == 25 and last.next_page_token == ""


async def test_a_document_written_between_pages_is_not_skipped_nor_repeated(stub_for, tenant):
    stub = stub_for(tenant)
    await _fill(stub, "reviews", 6)
    first = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews", page_size=3))
    await stub.Upsert(
        embedding_pb2.UpsertRequest(
            collection="reviews",
            documents=[
                embedding_pb2.Document(id="doc-000a", text="Written behind the reader."),
                embedding_pb2.Document(id="doc-004a", text="Written ahead of the reader."),
            ],
        )
    )
    rest = await _list_all(stub, collection="reviews", page_size=3, page_token=first.next_page_token)
    assert [document.id for document in rest] == ["doc-003", "doc-004", "doc-004a", "doc-005"]


async def test_filter_uses_searchs_syntax(stub_for, tenant):
    stub = stub_for(tenant)
    await _fill(stub, "reviews", 20)
    documents = await _list_all(
        stub, collection="reviews", filter=json.dumps({"lang": "en", "stars": {"$lte": 2}}), page_size=3
    )
    expected = [f"doc-{index:03d}" for index in range(20) if index % 3 and index % 5 + 1 <= 2]
    assert [document.id for document in documents] == expected


async def test_vectors_only_when_asked(stub_for, tenant):
    stub = stub_for(tenant)
    await _fill(stub, "reviews", 2)
    page = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews", include_vectors=True))
    query = await stub.Embed(embedding_pb2.EmbedRequest(texts=[page.documents[0].text]))
    stored = page.documents[0].embedding.values
    assert len(stored) == 384
    assert stored == pytest.approx(list(query.embeddings[0].values), abs=1e-5)


async def test_only_documents_visible_to_the_purpose_and_under_the_ceiling(stub_for, tenant):
    writer = stub_for(tenant, data_class=DataClass.PERSONAL, purpose="campaign")
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="customers"))

    def document(key, data_class, purposes=()):
        policy = common_pb2.RecordPolicy(data_class=data_class, consented_purposes=list(purposes))
        return embedding_pb2.Document(id=key, text=f"Text of {key}.", policy=policy)

    await writer.Upsert(
        embedding_pb2.UpsertRequest(
            collection="customers",
            documents=[
                document("public", common_pb2.DATA_CLASS_PUBLIC),
                document("internal-listening", common_pb2.DATA_CLASS_INTERNAL, ["campaign", "listening"]),
                document("personal-listening", common_pb2.DATA_CLASS_PERSONAL, ["campaign", "listening"]),
                document("personal-campaign", common_pb2.DATA_CLASS_PERSONAL, ["campaign"]),
            ],
        )
    )
    # Declared PERSONAL: a listing is capped at the declared class as well as at max_data_class.
    listener = stub_for(tenant, purpose="listening", data_class=DataClass.PERSONAL)
    seen = await _list_all(listener, collection="customers")
    assert [document.id for document in seen] == ["internal-listening", "personal-listening", "public"]
    capped = await _list_all(listener, collection="customers", max_data_class=common_pb2.DATA_CLASS_INTERNAL)
    assert [document.id for document in capped] == ["internal-listening", "public"]
    public_only = await _list_all(stub_for(tenant, purpose="pricing"), collection="customers")
    assert [document.id for document in public_only] == ["public"]


async def test_another_tenants_collection_does_not_exist(stub_for, tenant):
    await _fill(stub_for(tenant), "reviews", 1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub_for(f"{tenant}-other").ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(refused.value).reason == "COLLECTION_NOT_FOUND"


async def _violations(stub, **fields) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(**fields))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return error_details(refused.value).field_violations


async def test_bad_requests_name_their_fields(stub_for, tenant):
    stub = stub_for(tenant)
    await _fill(stub, "reviews", 3)
    violations = await _violations(
        stub, collection="Bad Name", page_size=5000, page_token="not-a-token", filter="[1]", max_data_class=9
    )
    assert set(violations) == {"collection", "page_size", "page_token", "filter", "max_data_class"}
    assert set(await _violations(stub, collection="reviews", filter="{not json")) == {"filter"}
    assert set(await _violations(stub, collection="reviews", filter='{"stars": {"$near": 3}}')) == {
        "filter.stars.$near"
    }
    assert set(await _violations(stub, collection="reviews", page_size=-1)) == {"page_size"}
    assert set(await _violations(stub, collection="reviews", filter="[" * 5000 + "]" * 5000)) == {"filter"}
    assert set(await _violations(stub, collection="reviews", filter='{"a": "' + "x" * 20000 + '"}')) == {"filter"}
    assert set(await _violations(stub, collection="reviews", filter='{"lang": "e\\u0000n"}')) == {"filter"}


async def test_a_page_token_only_continues_its_own_listing(stub_for, tenant):
    stub = stub_for(tenant)
    await _fill(stub, "reviews", 4)
    page = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews", page_size=2))
    other_filter = await _violations(
        stub, collection="reviews", page_size=2, page_token=page.next_page_token, filter='{"lang": "en"}'
    )
    assert set(other_filter) == {"page_token"}
    # Another page size is the same listing.
    rest = await _list_all(stub, collection="reviews", page_size=1, page_token=page.next_page_token)
    assert [document.id for document in rest] == ["doc-002", "doc-003"]


async def test_pages_stay_under_the_message_limit(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="bulky"))
    # Metadata is not embedded: bulky documents that are quick to store.
    notes = struct({"notes": "Opening hours, allergens and the roasting calendar. " * 290})  # ~15 KB of JSON
    for start in range(0, 250, 125):
        await stub.Upsert(
            embedding_pb2.UpsertRequest(
                collection="bulky",
                documents=[
                    embedding_pb2.Document(id=f"p{index:04d}", text=f"Page {index}.", metadata=notes)
                    for index in range(start, start + 125)
                ],
            )
        )
    page = await stub.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="bulky", page_size=1000))
    assert 0 < len(page.documents) < 250 and page.next_page_token
    assert page.ByteSize() < 4 * 1024 * 1024
    everything = await _list_all(stub, collection="bulky", page_size=1000)
    assert [document.id for document in everything] == [f"p{index:04d}" for index in range(250)]
