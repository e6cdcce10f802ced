"""Every store that keeps data about people, running for real on one database, and a subject's data put in each.

The erasure and data-map attacks both need the whole mesh: the five capability services and a conductor whose
catalog reaches them all. `running_mesh` starts them on one fresh database; `seed_subject` gives one data subject
records in every store, each marked with the subject's own words so a test can tell whose data it reads.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2

from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2, classification_pb2_grpc
from matcha.common.v1 import common_pb2
from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.app import build_generation_service
from matcha.generation.settings import BackendSettings, GenerationSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.governance import DataClass
from matcha.runtime.server import MatchaServer
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc
from tests.generation.brand_pages import BANK_PAGES
from tests.review.conftest import draft, eventually
from tests.support import struct

EMBEDDING = "matcha.embedding.v1.EmbeddingService"
CLASSIFICATION = "matcha.classification.v1.ClassificationService"
GENERATION = "matcha.generation.v1.GenerationService"
SEGMENTATION = "matcha.segmentation.v1.SegmentationService"
REVIEW = "matcha.review.v1.ReviewService"
CONDUCTOR = "matcha.conductor.v1.ConductorService"
CAPABILITIES = (EMBEDDING, CLASSIFICATION, GENERATION, SEGMENTATION, REVIEW)
PERSONAL = common_pb2.DATA_CLASS_PERSONAL


@dataclass
class Mesh:
    servers: dict[str, MatchaServer]
    publish_dir: Path
    connect: Callable[..., grpc.aio.Channel]

    def stub(self, service: str, tenant: str, **kwargs):
        channel = self.connect(self.servers[service], tenant, **kwargs)
        stubs = {
            EMBEDDING: embedding_pb2_grpc.EmbeddingServiceStub,
            CLASSIFICATION: classification_pb2_grpc.ClassificationServiceStub,
            GENERATION: generation_pb2_grpc.GenerationServiceStub,
            SEGMENTATION: segmentation_pb2_grpc.SegmentationServiceStub,
            REVIEW: review_pb2_grpc.ReviewServiceStub,
            CONDUCTOR: conductor_pb2_grpc.ConductorServiceStub,
        }
        return stubs[service](channel)


@asynccontextmanager
async def running_mesh(
    *,
    serve,
    connect,
    database_url: str,
    state_dir: Path,
    publish_dir: Path,
    local_encoder,
    local_model,
    embedding_settings,
    review_settings,
    start_review,
    conductor_settings,
) -> AsyncIterator[Mesh]:
    """The five capability services and a conductor reaching them, all on `database_url`."""
    common = {"database_url": database_url, "state_dir": state_dir, "listen_address": "127.0.0.1:0"}
    servers: dict[str, MatchaServer] = {}
    async with AsyncExitStack() as stack:
        settings = embedding_settings(database_url=database_url)
        servers[EMBEDDING] = await stack.enter_async_context(
            serve(build_embedding_service(settings, encoder=local_encoder), settings)
        )
        settings = ClassificationSettings(**common)
        servers[CLASSIFICATION] = await stack.enter_async_context(
            serve(build_classification_service(settings, encoder=local_encoder), settings)
        )
        settings = GenerationSettings(
            **common,
            generation_backends=[
                BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside")
            ],
        )
        definition = build_generation_service(settings, encoder=local_encoder, shared_backends={"local": local_model})
        servers[GENERATION] = await stack.enter_async_context(serve(definition, settings))
        settings = SegmentationSettings(**common)
        servers[SEGMENTATION] = await stack.enter_async_context(serve(build_segmentation_service(settings), settings))
        settings = review_settings(database_url=database_url, review_publish_dir=publish_dir)
        servers[REVIEW], _ = await stack.enter_async_context(start_review(settings))
        settings = conductor_settings(
            database_url=database_url,
            conductor_endpoints={service: f"127.0.0.1:{servers[service].port}" for service in CAPABILITIES},
        )
        servers[CONDUCTOR] = await stack.enter_async_context(serve(build_conductor_service(settings), settings))
        yield Mesh(servers, publish_dir, connect)


@dataclass(frozen=True)
class Seeded:
    """What `seed_subject` stored for one subject, by the names a test reads it back with."""

    subject: str
    marker: str
    classifier: str
    voice: str
    customer: str
    ingest_key: str
    review_item: str
    published_file: Path


def _policy(subject: str) -> common_pb2.RecordPolicy:
    return common_pb2.RecordPolicy(data_class=PERSONAL, consented_purposes=["campaign"], subject_id=subject)


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def seed_subject(mesh: Mesh, tenant: str, subject: str, marker: str) -> Seeded:
    """Records about `subject` in every store of `tenant`, each holding `marker` (a word only this subject has)."""
    writer = {"roles": ("analyst", "author", "operator"), "data_class": DataClass.PERSONAL}
    label = subject.replace("c-", "")

    embedding = mesh.stub(EMBEDDING, tenant, **writer)
    try:
        await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="crm"))
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    await embedding.Upsert(
        embedding_pb2.UpsertRequest(
            collection="crm",
            documents=[
                embedding_pb2.Document(
                    id=f"note-{label}", text=f"Prefers {marker} shirts in linen.", policy=_policy(subject)
                )
            ],
        )
    )

    classifier = f"intent-{label}"
    examples = [
        classification_pb2.LabeledExample(id=f"{subject}-1", text=f"My {marker} order never came.", label="complaint"),
        classification_pb2.LabeledExample(id=f"{subject}-2", text=f"Thanks, the {marker} fits.", label="praise"),
    ]
    for example in examples:
        example.policy.CopyFrom(_policy(subject))
    anonymous = [
        ("Where is my parcel? It is two weeks late.", "complaint"),
        ("The delivery was late and the box was damaged.", "complaint"),
        ("Lovely quality, I will buy again.", "praise"),
        ("Great service, very quick delivery.", "praise"),
    ]
    examples += [
        classification_pb2.LabeledExample(id=f"anon-{index}", text=text, label=value)
        for index, (text, value) in enumerate(anonymous)
    ]
    await mesh.stub(CLASSIFICATION, tenant, **writer).TrainClassifier(
        classification_pb2.TrainClassifierRequest(name=classifier, examples=examples, holdout_fraction=0.34)
    )

    voice = f"brand-{label}"
    documents = [generation_pb2.SourceDocument(id=name, text=text) for name, text in BANK_PAGES.items()]
    testimonial = generation_pb2.SourceDocument(
        id=f"testimonial-{label}",
        text=f"My adviser {marker} answered every question. I recommend the bank to my family.",
        policy=_policy(subject),
    )
    await mesh.stub(GENERATION, tenant, **writer).LearnVoice(
        generation_pb2.LearnVoiceRequest(name=voice, documents=[*documents, testimonial], exemplar_count=20)
    )

    segmentation = mesh.stub(SEGMENTATION, tenant, **writer)
    customer = f"cust-{label}"
    ingest_key = f"ingest/{tenant}/{subject}"
    await segmentation.IngestCustomers(
        segmentation_pb2.IngestCustomersRequest(
            customers=[
                segmentation_pb2.Customer(id=customer, attributes=struct({"nickname": marker}), policy=_policy(subject))
            ]
        ),
        metadata=(("x-matcha-idempotency-key", ingest_key),),
    )
    await segmentation.IngestTransactions(
        segmentation_pb2.IngestTransactionsRequest(
            transactions=[
                segmentation_pb2.Transaction(
                    id=f"t-{label}", customer_id=customer, time=_timestamp(datetime(2026, 3, 1, tzinfo=UTC)), amount=42
                )
            ]
        )
    )

    submitted = await mesh.stub(REVIEW, tenant, **writer).Submit(
        draft(content=f"Dear {marker}, your linen shirts are back in stock.\n", subject_ids=[subject])
    )
    item = submitted.item
    reviewer = mesh.stub(REVIEW, tenant, roles=("reviewer",), subject="reviewer-1", data_class=DataClass.PERSONAL)
    decided = await reviewer.Decide(
        review_pb2.DecideRequest(item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )
    publisher = mesh.stub(REVIEW, tenant, roles=("publisher",), subject="publisher-1", data_class=DataClass.PERSONAL)
    await publisher.Publish(
        review_pb2.PublishRequest(item_id=item.id, content_sha256=decided.item.approved_sha256, sinks=["files"])
    )
    published = mesh.publish_dir / tenant / f"{item.id}.json"

    async def written() -> bool:
        return await asyncio.to_thread(published.exists)

    await eventually(written)
    return Seeded(subject, marker, classifier, voice, customer, ingest_key, item.id, published)


@pytest.fixture
async def mesh(
    serve,
    connect,
    isolated_database,
    state_dir,
    tmp_path,
    local_encoder,
    local_model,
    embedding_settings,
    review_settings,
    start_review,
    conductor_settings,
) -> AsyncIterator[Mesh]:
    """The whole mesh on a database of its own (its review service delivers only this test's outbox)."""
    async with running_mesh(
        serve=serve,
        connect=connect,
        database_url=isolated_database,
        state_dir=state_dir,
        publish_dir=tmp_path / "published",
        local_encoder=local_encoder,
        local_model=local_model,
        embedding_settings=embedding_settings,
        review_settings=review_settings,
        start_review=start_review,
        conductor_settings=conductor_settings,
    ) as running:
        yield running
