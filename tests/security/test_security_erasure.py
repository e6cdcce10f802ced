"""Erasure with the shipped production settings: stores cleared below PERSONAL still forget a subject, because
the erasure hop is authorised by the admin role and the `erasure` purpose, not by its declared class."""

from pathlib import Path

import grpc
import yaml

from matcha.common.v1 import common_pb2
from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.governance import DataClass
from tests.conductor.support import EMBEDDING_SERVICE
from tests.support import refused

PRODUCTION = Path(__file__).parents[2] / "deploy" / "kubernetes" / "overlays" / "production" / "kustomization.yaml"


def production_settings() -> dict[str, dict[str, str]]:
    """The overlay's literals per config map: {"matcha-embedding": {"MATCHA_CLEARANCE": "CONFIDENTIAL"}, ...}."""
    overlay = yaml.safe_load(PRODUCTION.read_text())
    return {
        generator["name"]: dict(literal.split("=", 1) for literal in generator.get("literals", []))
        for generator in overlay["configMapGenerator"]
    }


async def test_erasure_succeeds_with_the_production_clearances(
    embedding_settings, local_encoder, conductor_settings, serve, connect, isolated_database, tenant
):
    literals = production_settings()
    clearance = literals["matcha-embedding"]["MATCHA_CLEARANCE"]
    assert DataClass[clearance] < DataClass.PERSONAL  # what made erasure fail before

    settings = embedding_settings(clearance=clearance, database_url=isolated_database)
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as embedding_server:
        conductor = conductor_settings(
            database_url=isolated_database,
            # No targets: the conductor reads the store's clearance from the store.
            conductor_endpoints={EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"},
        )
        async with serve(build_conductor_service(conductor), conductor) as conductor_server:
            store = embedding_pb2_grpc.EmbeddingServiceStub(
                connect(embedding_server, tenant, data_class=DataClass.CONFIDENTIAL)
            )
            await store.CreateCollection(embedding_pb2.CreateCollectionRequest(name="crm"))
            policy = common_pb2.RecordPolicy(
                data_class=common_pb2.DATA_CLASS_CONFIDENTIAL, consented_purposes=["campaign"], subject_id="c-42"
            )
            await store.Upsert(
                embedding_pb2.UpsertRequest(
                    collection="crm",
                    documents=[embedding_pb2.Document(id="n1", text="Prefers linen shirts.", policy=policy)],
                )
            )
            # Declaring PERSONAL for any other purpose is still refused by the store's clearance.
            personal = embedding_pb2_grpc.EmbeddingServiceStub(
                connect(embedding_server, tenant, roles=("admin",), data_class=DataClass.PERSONAL)
            )
            details = await refused(
                personal.EraseSubject(embedding_pb2.EraseSubjectRequest(subject_id="c-42")),
                grpc.StatusCode.PERMISSION_DENIED,
            )
            assert details.reason == "CLEARANCE_EXCEEDED"

            admin = conductor_pb2_grpc.ConductorServiceStub(
                connect(conductor_server, tenant, roles=("admin",), data_class=DataClass.PERSONAL)
            )
            reply = await admin.EraseSubject(conductor_pb2.EraseSubjectRequest(subject_id="c-42"))
            stores = {item.store: item for item in reply.stores}
            assert reply.complete, [(item.store, item.status.message) for item in reply.stores]
            assert stores[EMBEDDING_SERVICE].erased_records == 1
            left = await store.GetCollection(embedding_pb2.GetCollectionRequest(name="crm"))
            assert left.collection.document_count == 0
