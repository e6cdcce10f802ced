"""gRPC adapter of the classification service: protobuf in, core call, protobuf out."""

from datetime import datetime, timedelta

from google.protobuf import json_format, timestamp_pb2

from matcha.classification.core import (
    ClassificationCore,
    CustomTask,
    Example,
    ExampleCollection,
    Instant,
    PostCollection,
    RawPost,
    SentimentTask,
    SignalRequest,
    TopicsTask,
    classifier_model,
)
from matcha.classification.sentiment import ModelRef
from matcha.classification.signals import Strength, Topic
from matcha.classification.store import ClassifierRecord
from matcha.classification.topics import TopicLabel
from matcha.classification.training import Metrics
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.common.v1 import common_pb2
from matcha.runtime.collections import CollectionSource
from matcha.runtime.data_map import exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.governance import DataClass
from matcha.runtime.interceptors import current_call, report_records

_SENTIMENT = {
    "negative": pb.SENTIMENT_NEGATIVE,
    "neutral": pb.SENTIMENT_NEUTRAL,
    "positive": pb.SENTIMENT_POSITIVE,
}
_STRENGTH = {
    Strength.NOISE: pb.SIGNAL_STRENGTH_NOISE,
    Strength.WEAK: pb.SIGNAL_STRENGTH_WEAK,
    Strength.STRONG: pb.SIGNAL_STRENGTH_STRONG,
}


def _label_scores(scores) -> list[pb.LabelScore]:
    return [pb.LabelScore(label=score.label, score=score.score, assigned=score.assigned) for score in scores]


def _model_ref(model: ModelRef) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(id=model.id, version=model.version)


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def _instant(message, present: bool) -> Instant | None:
    return Instant(message.seconds, message.nanos) if present else None


def _task(message: pb.ClassificationTask):
    kind = message.WhichOneof("task")
    if kind == "sentiment":
        return SentimentTask()
    if kind == "topics":
        topics = message.topics
        return TopicsTask(
            labels=[TopicLabel(label.name, label.description, list(label.examples)) for label in topics.labels],
            threshold=topics.threshold if topics.HasField("threshold") else None,
            single_label=topics.single_label,
        )
    if kind == "custom":
        return CustomTask(message.custom.classifier, message.custom.version)
    return None


def _examples(messages) -> list[Example]:
    return [
        Example(
            example.id,
            example.text,
            example.label,
            DataClass(example.policy.data_class) if example.policy.data_class else None,
            frozenset(example.policy.consented_purposes),
            example.policy.source,
            example.policy.subject_id,
        )
        for example in messages
    ]


def _example_collection(request) -> ExampleCollection | None:
    """TrainClassifierRequest and EvaluateClassifierRequest share the field."""
    if not request.HasField("collection"):
        return None
    message = request.collection
    source = CollectionSource(message.collection, json_format.MessageToDict(message.filter), message.limit)
    return ExampleCollection(source, message.label_field)


def _post_collection(request: pb.DetectSignalsRequest) -> PostCollection | None:
    if not request.HasField("collection"):
        return None
    message = request.collection
    source = CollectionSource(message.collection, json_format.MessageToDict(message.filter), message.limit)
    return PostCollection(source, message.time_field, message.source_field)


def _lineage(record: ClassifierRecord, *, summary: bool) -> pb.ClassifierLineage:
    lineage = record.lineage
    message = pb.ClassifierLineage(
        training_set_sha256=lineage.training_set_sha256,
        example_count=lineage.example_count,
        example_ids=[] if summary else lineage.example_ids,
        embedding_model=_model_ref(lineage.embedding_model),
        train_subject=lineage.train_subject,
        seed=lineage.seed,
    )
    if lineage.collection is not None:
        message.collection = lineage.collection["collection"]
        message.label_field = lineage.collection["label_field"]
        json_format.ParseDict(lineage.collection["filter"], message.collection_filter)
    return message


def _metrics(metrics: Metrics, *, with_confusion: bool = True) -> pb.EvaluationMetrics:
    message = pb.EvaluationMetrics(
        example_count=metrics.example_count,
        accuracy=metrics.accuracy,
        macro_f1=metrics.macro_f1,
        macro_f1_ci_low=metrics.macro_f1_ci[0],
        macro_f1_ci_high=metrics.macro_f1_ci[1],
        per_label=[
            pb.LabelMetrics(
                label=quality.label,
                precision=quality.precision,
                recall=quality.recall,
                f1=quality.f1,
                support=quality.support,
            )
            for quality in metrics.per_label
        ],
    )
    if with_confusion:
        message.confusion.labels.extend(metrics.labels)
        message.confusion.rows.extend(pb.ConfusionRow(counts=row) for row in metrics.confusion)
    return message


def _classifier(record: ClassifierRecord, *, summary: bool = False) -> pb.Classifier:
    return pb.Classifier(
        name=record.name,
        version=record.version,
        description=record.description,
        labels=sorted(record.labels),
        method=record.method,
        model=_model_ref(classifier_model(record)),
        holdout_metrics=_metrics(record.holdout, with_confusion=not summary),
        lineage=_lineage(record, summary=summary),
        create_time=_timestamp(record.created_at),
        withdraw_time=_timestamp(record.withdrawn_at) if record.withdrawn_at else None,
    )


def _signal_request(request: pb.DetectSignalsRequest) -> SignalRequest:
    thresholds = request.thresholds
    return SignalRequest(
        posts=[
            RawPost(post.id, post.text, _instant(post.time, post.HasField("time")), post.source)
            for post in request.posts
        ],
        window=_instant(request.window, request.HasField("window")),
        look_back=_instant(request.look_back, request.HasField("look_back")),
        end_time=_instant(request.end_time, request.HasField("end_time")),
        min_topic_size=thresholds.min_topic_size,
        strong_share=thresholds.strong_share if thresholds.HasField("strong_share") else None,
        min_active_windows=thresholds.min_active_windows,
        min_growth_slope=thresholds.min_growth_slope if thresholds.HasField("min_growth_slope") else None,
        max_topics=request.max_topics,
        representative_count=request.representative_count if request.HasField("representative_count") else None,
        seed=request.seed,
        skip_sentiment=request.skip_sentiment,
        collection=_post_collection(request),
    )


def _topic(topic: Topic, start: datetime, window: timedelta) -> pb.SignalTopic:
    message = pb.SignalTopic(
        id=topic.id,
        label=topic.label,
        terms=topic.terms,
        strength=_STRENGTH[topic.strength],
        post_count=topic.post_count,
        share=topic.share,
        counts=[
            pb.WindowCount(start_time=_timestamp(start + window * index), count=count)
            for index, count in enumerate(topic.counts)
        ],
        growth_slope=topic.growth_slope,
        first_seen=_timestamp(topic.first_seen),
        last_seen=_timestamp(topic.last_seen),
        source_count=topic.source_count,
        source_diversity=topic.source_diversity,
        sentiment_shift=topic.sentiment_shift,
        representative_posts=[
            pb.RepresentativePost(
                id=chosen.post.id,
                text=chosen.post.text,
                time=_timestamp(chosen.post.time),
                source=chosen.post.source,
                centrality=chosen.centrality,
            )
            for chosen in topic.representatives
        ],
    )
    if topic.sentiment_mix is not None:
        negative, neutral, positive = topic.sentiment_mix
        message.sentiment_mix.CopyFrom(pb.SentimentMix(negative=negative, neutral=neutral, positive=positive))
    return message


class ClassificationServicer(classification_pb2_grpc.ClassificationServiceServicer):
    def __init__(self, core: ClassificationCore) -> None:
        self._core = core

    async def Classify(self, request, context):
        outcome = await self._core.classify(
            current_call(), list(request.texts), [_task(task) for task in request.tasks], request.language
        )
        results = []
        for result in outcome.results:
            message = pb.TextClassification(
                language=result.language.code, language_confidence=result.language.confidence
            )
            if result.sentiment is not None:
                score = result.sentiment
                message.sentiment.CopyFrom(
                    pb.SentimentResult(
                        label=_SENTIMENT[score.label],
                        negative=score.negative,
                        neutral=score.neutral,
                        positive=score.positive,
                        model=_model_ref(score.model),
                    )
                )
            if result.topics is not None:
                message.topics.CopyFrom(pb.TopicsResult(labels=_label_scores(result.topics)))
            message.custom.extend(
                pb.CustomResult(
                    classifier=prediction.classifier,
                    version=prediction.version,
                    label=prediction.label,
                    confidence=prediction.confidence,
                    scores=_label_scores(prediction.scores),
                )
                for prediction in result.custom
            )
            results.append(message)
        report_records(models=[(model.id, model.version) for model in outcome.models])
        return pb.ClassifyResponse(results=results, models=[_model_ref(model) for model in outcome.models])

    async def TrainClassifier(self, request, context):
        record = await self._core.train(
            current_call(),
            request.name,
            request.description,
            _examples(request.examples),
            request.holdout_fraction if request.HasField("holdout_fraction") else None,
            request.seed,
            _example_collection(request),
        )
        return pb.TrainClassifierResponse(classifier=_classifier(record))

    async def EvaluateClassifier(self, request, context):
        record, metrics = await self._core.evaluate(
            current_call(), request.name, request.version, _examples(request.examples), _example_collection(request)
        )
        return pb.EvaluateClassifierResponse(
            metrics=_metrics(metrics), version=record.version, model=_model_ref(classifier_model(record))
        )

    async def GetClassifier(self, request, context):
        record = await self._core.get_classifier(
            current_call(), request.name, request.version, request.include_example_ids
        )
        return pb.GetClassifierResponse(classifier=_classifier(record))

    async def ListClassifiers(self, request, context):
        page = await self._core.list_classifiers(current_call(), request.name, request.page_size, request.page_token)
        return pb.ListClassifiersResponse(
            classifiers=[_classifier(record, summary=True) for record in page.classifiers],
            next_page_token=page.next_page_token,
        )

    async def DeleteClassifier(self, request, context):
        deleted = await self._core.delete_classifier(current_call(), request.name, request.version)
        return pb.DeleteClassifierResponse(deleted_versions=deleted)

    async def EraseSubject(self, request, context):
        erased = await self._core.erase_subject(current_call(), request.subject_id)
        report_records(subjects=[request.subject_id])
        return pb.EraseSubjectResponse(
            erased_examples=erased.examples, erased_classifier_heads=erased.withdrawn_versions
        )

    async def DescribeSubject(self, request, context):
        holdings = await self._core.describe_subject(current_call(), request.subject_id)
        report_records(exported_classes(holdings), subjects=[request.subject_id])
        return pb.DescribeSubjectResponse(holdings=holding_messages(holdings))

    async def DetectSignals(self, request, context):
        outcome = await self._core.detect_signals(current_call(), _signal_request(request))
        return pb.DetectSignalsResponse(
            topics=[_topic(topic, outcome.start, outcome.window) for topic in outcome.report.topics],
            post_count=outcome.report.post_count,
            unclustered_post_count=outcome.report.unclustered_post_count,
            start_time=_timestamp(outcome.start),
            end_time=_timestamp(outcome.end),
            models=[_model_ref(model) for model in outcome.models],
        )
