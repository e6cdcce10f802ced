"""Attack: declare a low data class to read records of a higher one. Reads are capped at the declared class,
and the reply says the highest class among the records it returned."""

import grpc

from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.governance import DERIVED_CLASS_HEADER, DataClass


def document(doc_id: str, text: str, data_class) -> embedding_pb2.Document:
    policy = common_pb2.RecordPolicy(data_class=data_class, consented_purposes=["campaign"])
    return embedding_pb2.Document(id=doc_id, text=text, policy=policy)


async def search(stub, **kwargs) -> tuple[list[str], str]:
    call = stub.Search(embedding_pb2.SearchRequest(collection="notes", text="walking shoes", top_k=10, **kwargs))
    reply = await call
    trailers = {key: value for key, value in await call.trailing_metadata() or ()}
    return sorted(result.id for result in reply.results), trailers.get(DERIVED_CLASS_HEADER, "")


async def test_a_public_declaration_returns_no_internal_record(embedding_server, connect, tenant):
    writer = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, data_class=DataClass.INTERNAL))
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="notes"))
    await writer.Upsert(
        embedding_pb2.UpsertRequest(
            collection="notes",
            documents=[
                document("public", "Our walking shoes are on sale.", common_pb2.DATA_CLASS_PUBLIC),
                document("internal", "Walking shoes margin is thin this quarter.", common_pb2.DATA_CLASS_INTERNAL),
            ],
        )
    )
    liar = embedding_pb2_grpc.EmbeddingServiceStub(
        connect(embedding_server, tenant, roles=("analyst",), data_class=DataClass.PUBLIC)
    )
    assert await search(liar) == (["public"], "PUBLIC")
    listed = await liar.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="notes"))
    assert [item.id for item in listed.documents] == ["public"]

    honest = embedding_pb2_grpc.EmbeddingServiceStub(
        connect(embedding_server, tenant, roles=("analyst",), data_class=DataClass.INTERNAL)
    )
    assert await search(honest) == (["internal", "public"], "INTERNAL")


async def test_a_reply_without_records_says_public(embedding_server, connect, tenant):
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="notes"))
    assert await search(stub) == ([], "PUBLIC")
    # Calls that return no records carry no derived class at all.
    call = stub.ListCollections(embedding_pb2.ListCollectionsRequest())
    await call
    assert DERIVED_CLASS_HEADER not in {key for key, _ in await call.trailing_metadata() or ()}
    assert await call.code() == grpc.StatusCode.OK


async def test_review_replies_state_the_class_of_the_items_they_return(review_server, connect, tenant):
    author = review_pb2_grpc.ReviewServiceStub(
        connect(review_server, tenant, roles=("author",), data_class=DataClass.CONFIDENTIAL)
    )
    submitted = await author.Submit(
        review_pb2.SubmitRequest(title="Offer", content="Ten percent off.", channel=review_pb2.CHANNEL_SMS)
    )
    for call in (
        author.Get(review_pb2.GetRequest(item_id=submitted.item.id)),
        author.List(review_pb2.ListRequest()),
    ):
        await call
        assert dict(await call.trailing_metadata())[DERIVED_CLASS_HEADER] == "CONFIDENTIAL"
