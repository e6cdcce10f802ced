"""Collections as inputs of TrainClassifier, EvaluateClassifier and DetectSignals, read from a real embedding
service with the caller's own rights."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from matcha.classification.app import build_classification_service
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass
from matcha.runtime.server import MatchaServer
from tests.classification.test_signals import RECALL
from tests.support import struct

TICKETS = [
    ("t1", "I was charged twice for the same order", "billing"),
    ("t2", "Why is there an extra fee on my invoice?", "billing"),
    ("t3", "Please refund the payment you took by mistake", "billing"),
    ("t4", "My credit card was debited but the order was cancelled", "billing"),
    ("t5", "The parcel never arrived", "delivery"),
    ("t6", "Tracking says delivered but nothing is at my door", "delivery"),
    ("t7", "The courier left the box in the rain", "delivery"),
    ("t8", "Shipping took three weeks instead of three days", "delivery"),
]
HELD_OUT = [
    ("h1", "You billed my card two times this month", "billing"),
    ("h2", "The invoice total is wrong, please correct the charge", "billing"),
    ("h3", "My package is lost somewhere in transit", "delivery"),
    ("h4", "The delivery van never came to my street", "delivery"),
]
END = datetime(2026, 3, 1, tzinfo=UTC)
BACKGROUND = [
    "Loved the new espresso blend, rich and smooth",
    "The store opening hours changed again this week",
    "Great service at the counter this morning",
    "Parking near the shop is always a nightmare",
    "The loyalty card app crashed when I paid",
    "Tried the seasonal pastry, a bit too sweet for me",
    "Friendly barista remembered my order",
    "Wifi in the cafe was slow today",
    "The music was far too loud during lunch",
    "Prices went up without any notice",
    "New vegan sandwich is surprisingly good",
    "Queue was out the door at eight",
]


@pytest.fixture(scope="module")
async def reading_server(
    classification_settings, serve, local_encoder, embedding_server
) -> AsyncIterator[MatchaServer]:
    """A classification service wired to the session's embedding service, as `matcha up` wires them."""
    settings = classification_settings(classification_embedding_address=f"127.0.0.1:{embedding_server.port}")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
def classifier_for(reading_server, connect):
    def make(tenant, **kwargs) -> classification_pb2_grpc.ClassificationServiceStub:
        return classification_pb2_grpc.ClassificationServiceStub(connect(reading_server, tenant, **kwargs))

    return make


@pytest.fixture
def embedding_for(embedding_server, connect):
    def make(tenant, **kwargs) -> embedding_pb2_grpc.EmbeddingServiceStub:
        return embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, **kwargs))

    return make


async def _tickets(embedding, name="tickets", rows=TICKETS, extra=()) -> None:
    """Support tickets whose category sits in nested metadata; spam carries no category at all."""
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name=name))
    documents = [
        embedding_pb2.Document(id=key, text=text, metadata=struct({"ticket": {"category": label}, "kind": "ticket"}))
        for key, text, label in rows
    ]
    documents += list(extra)
    await embedding.Upsert(embedding_pb2.UpsertRequest(collection=name, documents=documents))


def _spam(key: str) -> embedding_pb2.Document:
    return embedding_pb2.Document(id=key, text="Win a free cruise, click here", metadata=struct({"kind": "spam"}))


def _examples_from(collection="tickets", filter_=None, **fields) -> pb.ExampleCollection:
    message = pb.ExampleCollection(collection=collection, **fields)
    if filter_ is not None:
        message.filter.CopyFrom(struct(filter_))
    return message


async def test_train_from_a_collection_learns_what_the_same_inline_examples_teach(
    classifier_for, embedding_for, tenant
):
    await _tickets(embedding_for(tenant), extra=[_spam("s1"), _spam("s2")])
    classifier = classifier_for(tenant)
    source = _examples_from(filter_={"kind": "ticket"}, label_field="ticket.category")
    trained = (
        await classifier.TrainClassifier(pb.TrainClassifierRequest(name="support", collection=source))
    ).classifier
    assert list(trained.labels) == ["billing", "delivery"]
    lineage = trained.lineage
    assert lineage.example_count == len(TICKETS)
    assert lineage.collection == "tickets" and lineage.label_field == "ticket.category"
    assert dict(lineage.collection_filter) == {"kind": "ticket"}

    inline = pb.TrainClassifierRequest(
        name="support-inline",
        examples=[pb.LabeledExample(id=key, text=text, label=label) for key, text, label in TICKETS],
    )
    same = (await classifier.TrainClassifier(inline)).classifier
    assert same.lineage.training_set_sha256 == lineage.training_set_sha256
    assert same.lineage.collection == "" and not same.lineage.HasField("collection_filter")

    stored = await classifier.GetClassifier(pb.GetClassifierRequest(name="support", include_example_ids=True))
    assert sorted(stored.classifier.lineage.example_ids) == sorted(key for key, _, _ in TICKETS)
    assert stored.classifier.lineage.collection == "tickets"

    reply = await classifier.Classify(
        pb.ClassifyRequest(
            texts=["The box never showed up", "I was billed twice"],
            tasks=[pb.ClassificationTask(custom=pb.CustomTask(classifier="support"))],
        )
    )
    assert [result.custom[0].label for result in reply.results] == ["delivery", "billing"]


async def test_evaluate_on_a_collection(classifier_for, embedding_for, tenant):
    embedding = embedding_for(tenant)
    await _tickets(embedding)
    await _tickets(embedding, name="held-out", rows=HELD_OUT)
    classifier = classifier_for(tenant)
    await classifier.TrainClassifier(
        pb.TrainClassifierRequest(name="support", collection=_examples_from(label_field="ticket.category"))
    )
    reply = await classifier.EvaluateClassifier(
        pb.EvaluateClassifierRequest(
            name="support", collection=_examples_from("held-out", label_field="ticket.category")
        )
    )
    assert reply.metrics.example_count == len(HELD_OUT)
    assert reply.metrics.accuracy >= 0.75
    assert (reply.version, reply.model.id) == (1, "matcha-classifier/support")

    await embedding.Upsert(
        embedding_pb2.UpsertRequest(
            collection="held-out",
            documents=[
                embedding_pb2.Document(
                    id="h9", text="Where is my order?", metadata=struct({"ticket": {"category": "tracking"}})
                )
            ],
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await classifier.EvaluateClassifier(
            pb.EvaluateClassifierRequest(
                name="support", collection=_examples_from("held-out", label_field="ticket.category")
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = error_details(refused.value).field_violations["collection.label_field"]
    assert "'h9'" in violation and "tracking" in violation


async def test_labels_may_be_numbers_and_unlabelled_documents_are_named(classifier_for, embedding_for, tenant):
    embedding = embedding_for(tenant)
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="reviews"))
    rows = [(key, text, 1 if label == "billing" else 5) for key, text, label in TICKETS]
    await embedding.Upsert(
        embedding_pb2.UpsertRequest(
            collection="reviews",
            documents=[
                embedding_pb2.Document(id=key, text=text, metadata=struct({"stars": stars}))
                for key, text, stars in rows
            ]
            + [_spam("s1")],
        )
    )
    classifier = classifier_for(tenant)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await classifier.TrainClassifier(
            pb.TrainClassifierRequest(name="stars", collection=_examples_from("reviews", label_field="stars"))
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = error_details(refused.value).field_violations["collection.label_field"]
    assert "'s1'" in violation and '{"stars": {"$exists": true}}' in violation

    source = _examples_from("reviews", label_field="stars", filter_={"stars": {"$exists": True}})
    trained = (await classifier.TrainClassifier(pb.TrainClassifierRequest(name="stars", collection=source))).classifier
    assert list(trained.labels) == ["1", "5"]


async def test_bad_collection_inputs_are_refused_before_reading(classifier_for, embedding_for, tenant):
    await _tickets(embedding_for(tenant))
    classifier = classifier_for(tenant)

    async def refusal(call) -> tuple[grpc.StatusCode, dict[str, str], str]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        details = error_details(refused.value)
        return refused.value.code(), details.field_violations, details.reason

    both = pb.TrainClassifierRequest(
        name="support",
        examples=[pb.LabeledExample(text="a", label="b")],
        collection=_examples_from(label_field="bad field!", limit=30_000),
    )
    code, violations, _ = await refusal(classifier.TrainClassifier(both))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations) == {"examples", "collection.label_field", "collection.limit"}

    code, violations, _ = await refusal(
        classifier.TrainClassifier(
            pb.TrainClassifierRequest(name="support", collection=_examples_from(filter_={"$where": "1"}))
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(violations) == {"collection.filter.$where"}

    code, _, reason = await refusal(
        classifier.TrainClassifier(
            pb.TrainClassifierRequest(name="support", collection=_examples_from("missing", label_field="x"))
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "COLLECTION_NOT_FOUND")

    code, _, reason = await refusal(
        classifier.TrainClassifier(
            pb.TrainClassifierRequest(name="support", collection=_examples_from(label_field="ticket.category", limit=5))
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "COLLECTION_TOO_LARGE")

    listing = await classifier.ListClassifiers(pb.ListClassifiersRequest())
    assert list(listing.classifiers) == []


async def test_without_an_embedding_service_collections_are_unavailable(stub):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.TrainClassifier(pb.TrainClassifierRequest(name="support", collection=_examples_from()))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(refused.value).reason == "EMBEDDING_NOT_CONFIGURED"


def _signal_posts() -> list[tuple[str, str, datetime, str]]:
    """A recall growing over the last weeks from three channels, and unrelated chatter spread evenly."""
    posts = []
    for index, text in enumerate(RECALL):
        week = [5, 6, 6, 7, 7, 7, 7, 7, 7][index]
        moment = END - timedelta(weeks=8 - week) + timedelta(hours=index)
        posts.append((f"recall-{index}", text, moment, ["news", "forum", "social"][index % 3]))
    for index, text in enumerate(BACKGROUND):
        posts.append((f"chatter-{index:02d}", text, END - timedelta(days=4 * index + 2), "reviews"))
    return posts


def _signals_request(**fields) -> pb.DetectSignalsRequest:
    end_time = timestamp_pb2.Timestamp()
    end_time.FromDatetime(END)
    return pb.DetectSignalsRequest(
        window=duration_pb2.Duration(seconds=7 * 86400),
        look_back=duration_pb2.Duration(seconds=8 * 7 * 86400),
        end_time=end_time,
        thresholds=pb.SignalThresholds(min_topic_size=3),
        seed=3,
        skip_sentiment=True,
        **fields,
    )


def _topics(reply: pb.DetectSignalsResponse) -> list[tuple]:
    return [
        (topic.strength, topic.post_count, topic.source_count, sorted(post.id for post in topic.representative_posts))
        for topic in reply.topics
    ]


async def test_detect_signals_in_a_collection_as_in_the_same_inline_posts(classifier_for, embedding_for, tenant):
    writer = embedding_for(tenant, purpose="listening")
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="posts"))
    documents = []
    for index, (key, text, moment, channel) in enumerate(_signal_posts()):
        # Times as RFC 3339 text, or as Unix seconds.
        time = moment.isoformat().replace("+00:00", "Z") if index % 2 else moment.timestamp()
        documents.append(embedding_pb2.Document(id=key, text=text, metadata=struct({"at": time, "channel": channel})))
    letter = embedding_pb2.Document(
        id="zz-private",
        text="Oat milk recall: my child was sick, here is my address",
        metadata=struct({"at": "2026-02-27T10:00:00+01:00", "channel": "email"}),
        policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_PERSONAL, consented_purposes=["support"]),
    )
    await writer.Upsert(embedding_pb2.UpsertRequest(collection="posts", documents=documents))
    support = embedding_for(tenant, purpose="support", data_class=DataClass.PERSONAL)
    await support.Upsert(embedding_pb2.UpsertRequest(collection="posts", documents=[letter]))

    listener = classifier_for(tenant, purpose="listening")
    from_collection = await listener.DetectSignals(
        _signals_request(collection=pb.PostCollection(collection="posts", time_field="at", source_field="channel"))
    )
    inline_posts = []
    # In id order, as the collection is read: clustering depends on the order of its input.
    for key, text, moment, channel in sorted(_signal_posts()):
        post = pb.Post(id=key, text=text, source=channel)
        post.time.FromDatetime(moment)
        inline_posts.append(post)
    inline = await listener.DetectSignals(_signals_request(posts=inline_posts))

    # The letter was not consented for listening: the embedding service never handed it over.
    assert from_collection.post_count == inline.post_count == len(RECALL) + len(BACKGROUND)
    assert _topics(from_collection) == _topics(inline)
    recall = next(topic for topic in from_collection.topics if "oat" in topic.terms or "milk" in topic.terms)
    # Sources come from the metadata field named.
    assert recall.source_count >= 3
    assert {post.source for post in recall.representative_posts} <= {"news", "forum", "social", "reviews"}


async def test_posts_need_a_time(classifier_for, embedding_for, tenant):
    embedding = embedding_for(tenant)
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="posts"))
    await embedding.Upsert(
        embedding_pb2.UpsertRequest(
            collection="posts",
            documents=[
                embedding_pb2.Document(id="p1", text="Fine coffee", metadata=struct({"time": "2026-02-01T10:00:00Z"})),
                embedding_pb2.Document(id="p2", text="Cold coffee", metadata=struct({"time": "yesterday"})),
                embedding_pb2.Document(id="p3", text="Slow queue", metadata=struct({"time": "2026-02-01T10:00:00"})),
            ],
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await classifier_for(tenant).DetectSignals(_signals_request(collection=pb.PostCollection(collection="posts")))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = error_details(refused.value).field_violations["collection.time_field"]
    assert "'p2'" in violation and "'p3'" in violation and "'p1'" not in violation
