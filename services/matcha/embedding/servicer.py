"""gRPC adapter of the embedding service: protobuf in, core call, protobuf out."""

import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from matcha.common.v1 import common_pb2
from matcha.embedding.core import DocumentInput, EmbeddingCore
from matcha.embedding.records import CollectionRecord, SearchHit, StoredDocument
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.models.encoders import ModelInfo
from matcha.runtime.data_map import exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.governance import DataClass, RecordPolicy
from matcha.runtime.interceptors import current_call, report_records
from matcha.runtime.messages import data_class_message


def _model_ref(model: ModelInfo) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(id=model.id, version=model.version)


def _collection(name: str) -> tuple[str]:
    return (f"collection:{name}",)


def _struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def _policy_message(policy: RecordPolicy) -> common_pb2.RecordPolicy:
    return common_pb2.RecordPolicy(
        data_class=data_class_message(policy.data_class),
        consented_purposes=sorted(policy.consented_purposes),
        source=policy.source,
        subject_id=policy.subject_id,
    )


def _collection_message(collection: CollectionRecord) -> embedding_pb2.Collection:
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(collection.created_at)
    return embedding_pb2.Collection(
        name=collection.name,
        description=collection.description,
        model=_model_ref(collection.model),
        dimension=collection.model.dimension,
        document_count=collection.document_count,
        create_time=created,
    )


def _document_input(document: embedding_pb2.Document) -> DocumentInput:
    policy = document.policy
    return DocumentInput(
        id=document.id,
        text=document.text,
        metadata=json_format.MessageToDict(document.metadata),
        data_class=DataClass(policy.data_class) if policy.data_class else None,
        consented_purposes=frozenset(policy.consented_purposes),
        source=policy.source,
        subject_id=policy.subject_id,
    )


def _search_result(hit: SearchHit) -> embedding_pb2.SearchResult:
    return embedding_pb2.SearchResult(
        id=hit.external_id,
        score=hit.score,
        text=hit.text,
        metadata=_struct(hit.metadata),
        policy=_policy_message(hit.policy),
    )


def _stored_document(document: StoredDocument) -> embedding_pb2.StoredDocument:
    updated = timestamp_pb2.Timestamp()
    updated.FromDatetime(document.updated_at)
    message = embedding_pb2.StoredDocument(
        id=document.external_id,
        text=document.text,
        metadata=_struct(document.metadata),
        policy=_policy_message(document.policy),
        update_time=updated,
    )
    if document.embedding is not None:
        message.embedding.values.extend(document.embedding.tolist())
    return message


class EmbeddingServicer(embedding_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, core: EmbeddingCore) -> None:
        self._core = core

    async def Embed(
        self, request: embedding_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.EmbedResponse:
        vectors, model = await self._core.embed(current_call(), list(request.texts))
        report_records(models=[(model.id, model.version)])
        return embedding_pb2.EmbedResponse(
            embeddings=[embedding_pb2.Embedding(values=vector.tolist()) for vector in vectors],
            model=_model_ref(model),
            dimension=model.dimension,
        )

    async def CreateCollection(
        self, request: embedding_pb2.CreateCollectionRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.CreateCollectionResponse:
        collection = await self._core.create_collection(current_call(), request.name, request.description)
        return embedding_pb2.CreateCollectionResponse(collection=_collection_message(collection))

    async def GetCollection(
        self, request: embedding_pb2.GetCollectionRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.GetCollectionResponse:
        collection = await self._core.get_collection(current_call(), request.name)
        return embedding_pb2.GetCollectionResponse(collection=_collection_message(collection))

    async def ListCollections(
        self, request: embedding_pb2.ListCollectionsRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.ListCollectionsResponse:
        collections = await self._core.list_collections(current_call())
        return embedding_pb2.ListCollectionsResponse(collections=[_collection_message(c) for c in collections])

    async def DeleteCollection(
        self, request: embedding_pb2.DeleteCollectionRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.DeleteCollectionResponse:
        deleted = await self._core.delete_collection(current_call(), request.name)
        report_records(resources=_collection(request.name))
        return embedding_pb2.DeleteCollectionResponse(deleted_documents=deleted)

    async def Upsert(
        self, request: embedding_pb2.UpsertRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.UpsertResponse:
        documents = [_document_input(document) for document in request.documents]
        outcome = await self._core.upsert(current_call(), request.collection, documents)
        report_records(
            subjects=(document.subject_id for document in documents),
            resources=_collection(request.collection),
            models=[(outcome.model.id, outcome.model.version)],
        )
        return embedding_pb2.UpsertResponse(
            inserted=outcome.inserted,
            updated=outcome.updated,
            unchanged=outcome.unchanged,
            model=_model_ref(outcome.model),
            raised_to_personal=outcome.raised_to_personal,
        )

    async def Search(
        self, request: embedding_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.SearchResponse:
        query = request.WhichOneof("query")
        outcome = await self._core.search(
            current_call(),
            request.collection,
            text=request.text if query == "text" else None,
            vector=list(request.vector.values) if query == "vector" else None,
            top_k=request.top_k,
            metadata_filter=json_format.MessageToDict(request.filter),
            min_score=request.min_score if request.HasField("min_score") else -1.0,
        )
        report_records(
            (hit.policy.data_class for hit in outcome.hits),
            subjects=(hit.policy.subject_id for hit in outcome.hits),
            resources=_collection(request.collection),
            models=[(outcome.model.id, outcome.model.version)] if outcome.model else (),
        )
        return embedding_pb2.SearchResponse(
            results=[_search_result(hit) for hit in outcome.hits],
            model=_model_ref(outcome.model) if outcome.model else None,
        )

    async def ListDocuments(
        self, request: embedding_pb2.ListDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.ListDocumentsResponse:
        page = await self._core.list_documents(
            current_call(),
            request.collection,
            page_size=request.page_size,
            page_token=request.page_token,
            filter_json=request.filter,
            max_data_class=request.max_data_class,
            include_vectors=request.include_vectors,
        )
        report_records(
            (document.policy.data_class for document in page.documents),
            subjects=(document.policy.subject_id for document in page.documents),
            resources=_collection(request.collection),
        )
        return embedding_pb2.ListDocumentsResponse(
            documents=[_stored_document(document) for document in page.documents],
            next_page_token=page.next_page_token,
            model=_model_ref(page.model),
        )

    async def Delete(
        self, request: embedding_pb2.DeleteRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.DeleteResponse:
        deleted = await self._core.delete(current_call(), request.collection, list(request.ids))
        report_records(resources=_collection(request.collection))
        return embedding_pb2.DeleteResponse(deleted=deleted)

    async def EraseSubject(
        self, request: embedding_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.EraseSubjectResponse:
        erased, collections = await self._core.erase_subject(current_call(), request.subject_id)
        report_records(subjects=[request.subject_id], resources=[f"collection:{name}" for name in collections])
        return embedding_pb2.EraseSubjectResponse(erased_documents=erased, collections=collections)

    async def DescribeSubject(
        self, request: embedding_pb2.DescribeSubjectRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.DescribeSubjectResponse:
        holdings = await self._core.describe_subject(current_call(), request.subject_id)
        report_records(
            exported_classes(holdings),
            subjects=[request.subject_id],
            resources=[f"collection:{holding.scope}" for holding in holdings],
        )
        return embedding_pb2.DescribeSubjectResponse(holdings=holding_messages(holdings))
