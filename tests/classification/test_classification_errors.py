"""Every bad request is refused with field violations, writes nothing, and the service keeps serving."""

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from matcha.classification.app import build_classification_service
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.runtime.governance import DataClass
from tests.support import refused

SENTIMENT = pb.ClassificationTask(sentiment=pb.SentimentTask())
TICKETS = [
    pb.LabeledExample(id="a1", text="charged twice", label="billing"),
    pb.LabeledExample(id="a2", text="wrong invoice amount", label="billing"),
    pb.LabeledExample(id="b1", text="parcel never arrived", label="delivery"),
    pb.LabeledExample(id="b2", text="courier lost the box", label="delivery"),
]


async def assert_still_serving_and_nothing_stored(stub):
    listed = await stub.ListClassifiers(pb.ListClassifiersRequest())
    assert list(listed.classifiers) == []
    reply = await stub.Classify(pb.ClassifyRequest(texts=["Lovely service"], tasks=[SENTIMENT]))
    assert reply.results[0].sentiment.label == pb.SENTIMENT_POSITIVE


async def test_classify_batch_and_text_errors(stub):
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=[], tasks=[SENTIMENT])))
    assert details.field_violations == {"texts": "between 1 and 64 texts per call"}
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine", "  "], tasks=[SENTIMENT])))
    assert details.field_violations == {"texts[1]": "must not be empty"}
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["x" * 10_001], tasks=[SENTIMENT])))
    assert list(details.field_violations) == ["texts[0]"]
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["t"] * 65, tasks=[SENTIMENT])))
    assert list(details.field_violations) == ["texts"]
    await assert_still_serving_and_nothing_stored(stub)


async def test_classify_task_errors(stub):
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine"])))
    assert details.field_violations == {"tasks": "1 to 10 tasks"}
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine"], tasks=[pb.ClassificationTask()])))
    assert details.field_violations == {"tasks[0]": "choose sentiment, topics, aspects or custom"}
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine"], tasks=[SENTIMENT, SENTIMENT])))
    assert details.field_violations == {"tasks": "at most one SentimentTask"}
    no_labels = pb.ClassificationTask(topics=pb.TopicsTask())
    bad_threshold = pb.ClassificationTask(topics=pb.TopicsTask(labels=[pb.TopicLabel(name="a")], threshold=1.5))
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine"], tasks=[no_labels])))
    assert details.field_violations == {"tasks[0].topics.labels": "1 to 100 labels"}
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine"], tasks=[bad_threshold])))
    assert details.field_violations == {"tasks[0].topics.threshold": "between 0 and 1"}
    duplicate = pb.ClassificationTask(topics=pb.TopicsTask(labels=[pb.TopicLabel(name="a"), pb.TopicLabel(name="a")]))
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["fine"], tasks=[duplicate], language="french")))
    assert set(details.field_violations) == {"tasks[0].topics.labels[1].name", "language"}
    await assert_still_serving_and_nothing_stored(stub)


async def test_unknown_classifier_is_not_found(stub, stub_for, tenant):
    custom = pb.ClassificationTask(custom=pb.CustomTask(classifier="nope"))
    details = await refused(stub.Classify(pb.ClassifyRequest(texts=["x"], tasks=[custom])), grpc.StatusCode.NOT_FOUND)
    assert details.reason == "CLASSIFIER_NOT_FOUND"
    for call in (
        stub.GetClassifier(pb.GetClassifierRequest(name="nope")),
        stub_for(tenant, roles=("admin",)).DeleteClassifier(pb.DeleteClassifierRequest(name="nope")),
        stub.EvaluateClassifier(pb.EvaluateClassifierRequest(name="nope", examples=TICKETS)),
    ):
        assert (await refused(call, grpc.StatusCode.NOT_FOUND)).reason == "CLASSIFIER_NOT_FOUND"
    details = await refused(stub.GetClassifier(pb.GetClassifierRequest(name="Bad Name")))
    assert list(details.field_violations) == ["name"]
    await assert_still_serving_and_nothing_stored(stub)


async def test_another_tenants_classifier_is_not_found(stub, stub_for, tenant):
    await stub_for(f"{tenant}-owner").TrainClassifier(pb.TrainClassifierRequest(name="private", examples=TICKETS))
    custom = pb.ClassificationTask(custom=pb.CustomTask(classifier="private"))
    await refused(stub.Classify(pb.ClassifyRequest(texts=["x"], tasks=[custom])), grpc.StatusCode.NOT_FOUND)
    await refused(stub.GetClassifier(pb.GetClassifierRequest(name="private")), grpc.StatusCode.NOT_FOUND)
    await assert_still_serving_and_nothing_stored(stub)


def train(name="tickets", examples=TICKETS, **fields):
    return pb.TrainClassifierRequest(name=name, examples=examples, **fields)


async def test_degenerate_training_sets(stub):
    one_label = [example for example in TICKETS if example.label == "billing"]
    details = await refused(stub.TrainClassifier(train(examples=one_label)))
    assert details.field_violations == {"examples": "at least 2 distinct labels (got 1)"}

    lonely = [*TICKETS, pb.LabeledExample(id="c1", text="the app crashes", label="bugs")]
    details = await refused(stub.TrainClassifier(train(examples=lonely)))
    assert details.field_violations == {"examples[4].label": "the only example of 'bugs'; at least 2 per label"}

    blank = [*TICKETS, pb.LabeledExample(id="c1", text=" ", label="")]
    details = await refused(stub.TrainClassifier(train(examples=blank)))
    assert details.field_violations == {
        "examples[4].text": "must not be empty",
        "examples[4].label": "must not be empty",
    }

    duplicated = [*TICKETS[:3], pb.LabeledExample(id="a1", text="late parcel", label="delivery")]
    details = await refused(stub.TrainClassifier(train(examples=duplicated)))
    assert details.field_violations == {"examples[3].id": "duplicates examples[0].id"}

    many = [pb.LabeledExample(text=f"text {i}", label=f"label-{i // 2}") for i in range(202)]
    details = await refused(stub.TrainClassifier(train(examples=many)))
    assert details.field_violations == {"examples": "at most 100 labels (got 101)"}

    details = await refused(stub.TrainClassifier(train(name="9lives", holdout_fraction=0.9, description="d" * 1001)))
    assert set(details.field_violations) == {"name", "holdout_fraction", "description"}
    await assert_still_serving_and_nothing_stored(stub)


async def test_evaluation_with_a_label_the_classifier_does_not_know(stub):
    await stub.TrainClassifier(train())
    unknown = [*TICKETS, pb.LabeledExample(text="crash on start", label="bugs")]
    details = await refused(stub.EvaluateClassifier(pb.EvaluateClassifierRequest(name="tickets", examples=unknown)))
    assert details.field_violations == {"examples[4].label": "'tickets' does not predict 'bugs'"}
    details = await refused(stub.EvaluateClassifier(pb.EvaluateClassifierRequest(name="tickets")))
    assert details.field_violations == {"examples": "1 to 20000 examples"}


async def test_bad_page_token(stub):
    details = await refused(stub.ListClassifiers(pb.ListClassifiersRequest(page_token="garbage", page_size=500)))
    assert set(details.field_violations) == {"page_token", "page_size"}


def post(key, text="a post", seconds=1_600_000_000, nanos=0, with_time=True):
    message = pb.Post(id=key, text=text)
    if with_time:
        message.time.CopyFrom(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))
    return message


async def test_malformed_signal_requests(stub):
    details = await refused(stub.DetectSignals(pb.DetectSignalsRequest()))
    assert details.field_violations == {"posts": "1 to 50000 posts"}
    posts = [
        post("p1"),
        post("p2", with_time=False),
        post("p3", nanos=2_000_000_000),
        post("p4", seconds=300_000_000_000),
        post("p1", text=""),
    ]
    details = await refused(stub.DetectSignals(pb.DetectSignalsRequest(posts=posts)))
    assert details.field_violations == {
        "posts[1].time": "is required",
        "posts[2].time": "not a valid timestamp (years 1 to 9999, nanos in [0, 1e9))",
        "posts[3].time": "not a valid timestamp (years 1 to 9999, nanos in [0, 1e9))",
        "posts[4].id": "duplicates posts[0].id",
        "posts[4].text": "must not be empty",
    }
    out_of_range = pb.DetectSignalsRequest(
        posts=[post("p1")],
        window=duration_pb2.Duration(seconds=10),
        look_back=duration_pb2.Duration(seconds=20),
        thresholds=pb.SignalThresholds(min_topic_size=1, strong_share=0.0, min_active_windows=1),
        max_topics=500,
        representative_count=11,
    )
    details = await refused(stub.DetectSignals(out_of_range))
    assert set(details.field_violations) == {
        "window",
        "look_back",
        "thresholds.min_topic_size",
        "thresholds.strong_share",
        "thresholds.min_active_windows",
        "max_topics",
        "representative_count",
    }
    await assert_still_serving_and_nothing_stored(stub)


async def test_payload_above_the_service_clearance_is_denied(classification_settings, serve, local_encoder, connect):
    settings = classification_settings(clearance="INTERNAL")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        stub = classification_pb2_grpc.ClassificationServiceStub(
            connect(server, "tenant-clearance", data_class=DataClass.PERSONAL)
        )
        details = await refused(
            stub.Classify(pb.ClassifyRequest(texts=["my email is a@b.c"], tasks=[SENTIMENT])),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert details.reason == "CLEARANCE_EXCEEDED"
