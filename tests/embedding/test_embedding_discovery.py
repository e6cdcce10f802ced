"""Data discovery on Upsert: a document whose text holds personal data is stored as PERSONAL, whatever was declared."""

from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import DataClass

NOTE = "Camille Martin asked for a refund; she lives at 12 rue des Lilas, 69003 Lyon."
REVIEW = "The battery lasts all day and charging is fast."


async def test_personal_data_raises_the_class_that_every_read_then_carries(embedding_server, connect, tenant):
    writer = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="notes"))
    # An attack on the class: personal data declared INTERNAL so that INTERNAL readers (and models) get it.
    reply = await writer.Upsert(
        embedding_pb2.UpsertRequest(
            collection="notes",
            documents=[
                embedding_pb2.Document(id="note", text=NOTE),
                embedding_pb2.Document(id="review", text=REVIEW),
                embedding_pb2.Document(
                    id="declared",
                    text="Loves hiking boots",
                    policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_PUBLIC),
                ),
            ],
        )
    )
    assert (reply.inserted, reply.raised_to_personal) == (3, 1)

    # Reads are capped at the declared class: INTERNAL readers no longer see the note...
    internal = await writer.Search(embedding_pb2.SearchRequest(collection="notes", text="refund request", top_k=5))
    assert "note" not in {hit.id for hit in internal.results}
    personal = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, data_class=DataClass.PERSONAL))
    found = await personal.Search(embedding_pb2.SearchRequest(collection="notes", text="refund request", top_k=5))
    # ...and those who declare PERSONAL see its class.
    assert {hit.id: hit.policy.data_class for hit in found.results}["note"] == common_pb2.DATA_CLASS_PERSONAL
    auditor = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, data_class=DataClass.PERSONAL))
    listed = await auditor.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="notes"))
    classes = {document.id: document.policy.data_class for document in listed.documents}
    assert classes == {
        "note": common_pb2.DATA_CLASS_PERSONAL,
        "review": common_pb2.DATA_CLASS_INTERNAL,
        "declared": common_pb2.DATA_CLASS_PUBLIC,
    }

    # The same upsert again changes nothing: the raised class is what is stored, and it is counted again.
    again = await writer.Upsert(
        embedding_pb2.UpsertRequest(collection="notes", documents=[embedding_pb2.Document(id="note", text=NOTE)])
    )
    assert (again.unchanged, again.raised_to_personal) == (1, 1)


async def test_a_declared_class_is_never_lowered(embedding_server, connect, tenant):
    writer = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, data_class=DataClass.PERSONAL))
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="crm"))
    reply = await writer.Upsert(
        embedding_pb2.UpsertRequest(
            collection="crm", documents=[embedding_pb2.Document(id="plain", text="Prefers linen shirts in summer")]
        )
    )
    assert reply.raised_to_personal == 0
    listed = await writer.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="crm"))
    assert [document.policy.data_class for document in listed.documents] == [common_pb2.DATA_CLASS_PERSONAL]
