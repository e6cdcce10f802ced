"""gRPC adapter of the classification service: protobuf in, core call, protobuf out."""

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2

from matcha.classification.aspects import Aspect, AspectSentiment
from matcha.classification.core import (
    AspectsTask,
    ClassificationCore,
    CustomTask,
    Example,
    ExampleCollection,
    Instant,
    PostCollection,
    RawPost,
    SentimentTask,
    SignalRequest,
    Task,
    TopicsTask,
    classifier_model,
)
from matcha.classification.listening import (
    Alert,
    ListeningCore,
    RawWatchPost,
    SourceSpec,
    TrackedSentiment,
    TrackedTopicSpec,
    WatchSpec,
    WatchView,
    WindowReport,
    source_from_snapshot,
)
from matcha.classification.records import ClassifierRecord
from matcha.classification.sentiment import ModelRef
from matcha.classification.signals import Representative, Strength, Topic
from matcha.classification.topics import TopicLabel
from matcha.classification.training import Metrics
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.classification.watch_store import SourceRow
from matcha.common.v1 import common_pb2
from matcha.embedding.reader import CollectionSource
from matcha.runtime.data_map import cap_exports, exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.governance import DataClass
from matcha.runtime.interceptors import current_call, report_records
from matcha.runtime.messages import data_class_message

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


def _task(message: pb.ClassificationTask) -> Task | None:
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
    if kind == "aspects":
        return AspectsTask([Aspect(aspect.label, tuple(aspect.terms)) for aspect in message.aspects.aspects])
    return None


def _aspect_sentiment(found: AspectSentiment) -> pb.AspectSentiment:
    return pb.AspectSentiment(
        aspect=found.aspect,
        label=_SENTIMENT[found.label],
        negative=found.negative,
        neutral=found.neutral,
        positive=found.positive,
        evidence=[pb.TextSpan(start=span.start, end=span.end) for span in found.evidence],
        model=_model_ref(found.model),
    )


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


def _representative_posts(representatives: Iterable[Representative]) -> list[pb.RepresentativePost]:
    return [
        pb.RepresentativePost(
            id=chosen.post.id,
            text=chosen.post.text,
            time=_timestamp(chosen.post.time),
            source=chosen.post.source,
            centrality=chosen.centrality,
        )
        for chosen in representatives
    ]


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
        representative_posts=_representative_posts(topic.representatives),
    )
    if topic.sentiment_mix is not None:
        negative, neutral, positive = topic.sentiment_mix
        message.sentiment_mix.CopyFrom(pb.SentimentMix(negative=negative, neutral=neutral, positive=positive))
    return message


_ALERT_TYPE = {"NEW_SIGNAL": pb.ALERT_TYPE_NEW_SIGNAL, "SENTIMENT_SHIFT": pb.ALERT_TYPE_SENTIMENT_SHIFT}
_WEBHOOK_STATE = {
    "NONE": pb.WEBHOOK_STATE_NONE,
    "PENDING": pb.WEBHOOK_STATE_PENDING,
    "DELIVERED": pb.WEBHOOK_STATE_DELIVERED,
    "FAILED": pb.WEBHOOK_STATE_FAILED,
}
_SOURCE_STATE = {"PENDING": pb.SOURCE_STATE_PENDING, "OK": pb.SOURCE_STATE_OK, "FAILING": pb.SOURCE_STATE_FAILING}


def _source_spec(message: pb.WatchSource) -> SourceSpec:
    kind = message.WhichOneof("kind") or ""
    if kind == "drop_folder":
        folder = message.drop_folder
        poll = _instant(folder.poll_interval, folder.HasField("poll_interval"))
        return SourceSpec(message.name, kind, path=folder.path, poll_interval=poll)
    if kind == "feed":
        feed = message.feed
        return SourceSpec(
            message.name, kind, url=feed.url, poll_interval=_instant(feed.poll_interval, feed.HasField("poll_interval"))
        )
    return SourceSpec(message.name, kind)


def _watch_spec(message: pb.Watch) -> WatchSpec:
    thresholds = message.thresholds
    return WatchSpec(
        name=message.name,
        description=message.description,
        sources=[_source_spec(source) for source in message.sources],
        window=_instant(message.window, message.HasField("window")),
        look_back_windows=message.look_back_windows,
        start_time=_instant(message.start_time, message.HasField("start_time")),
        grace=_instant(message.grace, message.HasField("grace")),
        tracked_topics=[TrackedTopicSpec(topic.name, tuple(topic.terms)) for topic in message.tracked_topics],
        min_topic_size=thresholds.min_topic_size,
        strong_share=thresholds.strong_share if thresholds.HasField("strong_share") else None,
        min_active_windows=thresholds.min_active_windows,
        min_growth_slope=thresholds.min_growth_slope if thresholds.HasField("min_growth_slope") else None,
        shift_threshold=message.sentiment_shift_threshold if message.HasField("sentiment_shift_threshold") else None,
        min_topic_posts=message.min_topic_posts,
        webhook_url=message.webhook_url,
    )


def _source_status(row: SourceRow) -> pb.SourceStatus:
    message = pb.SourceStatus(
        source=row.source,
        state=_SOURCE_STATE[row.state],
        accepted_posts=row.accepted_posts,
        duplicate_posts=row.duplicate_posts,
        rejected_posts=row.rejected_posts,
        last_rejection=row.last_rejection,
        last_error=row.last_error,
    )
    if row.last_attempt_at:
        message.last_attempt_time.CopyFrom(_timestamp(row.last_attempt_at))
    if row.last_success_at:
        message.last_success_time.CopyFrom(_timestamp(row.last_success_at))
    return message


def _duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=seconds))
    return message


def _watch(view: WatchView) -> pb.Watch:
    row = view.row
    sources = []
    for source in row.sources:
        message = pb.WatchSource(name=source["name"])
        if source["kind"] == "push":
            message.push.SetInParent()
        elif source["kind"] == "drop_folder":
            message.drop_folder.CopyFrom(
                pb.DropFolderSource(path=source["path"], poll_interval=_duration(source["poll_seconds"]))
            )
        else:
            message.feed.CopyFrom(pb.FeedSource(url=source["url"], poll_interval=_duration(source["poll_seconds"])))
        sources.append(message)
    thresholds = row.thresholds
    return pb.Watch(
        name=row.name,
        description=row.description,
        sources=sources,
        window=_duration(row.window_seconds),
        look_back_windows=row.look_back_windows,
        start_time=_timestamp(row.start_time),
        grace=_duration(row.grace_seconds),
        tracked_topics=[pb.TrackedTopic(name=topic["name"], terms=topic["terms"]) for topic in row.tracked_topics],
        thresholds=pb.SignalThresholds(
            min_topic_size=thresholds["min_topic_size"],
            strong_share=thresholds["strong_share"],
            min_active_windows=thresholds["min_active_windows"],
            min_growth_slope=thresholds["min_growth_slope"],
        ),
        sentiment_shift_threshold=row.shift_threshold,
        min_topic_posts=row.min_topic_posts,
        webhook_url=row.webhook_url,
        create_time=_timestamp(row.created_at),
        creator_subject=row.creator,
        next_window_end=_timestamp(row.next_window_end),
        source_statuses=[_source_status(source) for source in view.sources],
        post_count=view.post_count,
        last_alert_sequence=view.last_alert_sequence,
        report_count=row.report_count,
    )


def _tracked(tracked: TrackedSentiment) -> pb.TrackedTopicSentiment:
    message = pb.TrackedTopicSentiment(
        name=tracked.name,
        post_count=tracked.post_count,
        balance=tracked.balance,
        baseline_post_count=tracked.baseline_post_count,
        baseline_balance=tracked.baseline_balance,
        shift=tracked.shift,
        terms=tracked.terms,
        representative_posts=_representative_posts(tracked.representatives),
    )
    if tracked.mix is not None:
        negative, neutral, positive = tracked.mix
        message.sentiment_mix.CopyFrom(pb.SentimentMix(negative=negative, neutral=neutral, positive=positive))
    return message


def _report(report: WindowReport) -> pb.WatchReport:
    signals = report.signals
    return pb.WatchReport(
        watch=report.watch,
        window_start=_timestamp(report.window_start),
        window_end=_timestamp(report.window_end),
        close_time=_timestamp(report.closed_at),
        window_post_count=report.window_posts,
        signals=pb.DetectSignalsResponse(
            topics=[_topic(topic, report.look_back_start, report.window) for topic in signals.topics],
            post_count=signals.post_count,
            unclustered_post_count=signals.unclustered_post_count,
            start_time=_timestamp(report.look_back_start),
            end_time=_timestamp(report.window_end),
            models=[_model_ref(model) for model in report.models],
        ),
        tracked_topics=[_tracked(tracked) for tracked in report.tracked],
        alert_count=report.alert_count,
        source_statuses=[_source_status(source_from_snapshot(source)) for source in report.sources],
        data_class=data_class_message(report.data_class),
    )


def _alert(alert: Alert) -> pb.WatchAlert:
    message = pb.WatchAlert(
        sequence=alert.sequence,
        watch=alert.watch,
        type=_ALERT_TYPE[alert.type],
        create_time=_timestamp(alert.created_at),
        window_start=_timestamp(alert.window_start),
        window_end=_timestamp(alert.window_end),
        summary=alert.summary,
        webhook_state=_WEBHOOK_STATE[alert.webhook_state],
        webhook_attempts=alert.webhook_attempts,
        data_class=data_class_message(alert.data_class),
    )
    if alert.topic is not None:
        # A topic alert keeps the look-back its topic was found in.
        assert alert.look_back_start is not None
        message.topic.CopyFrom(_topic(alert.topic, alert.look_back_start, alert.window))
        message.previous_strength = _STRENGTH[alert.previous_strength]
    if alert.tracked is not None:
        message.tracked_topic.CopyFrom(_tracked(alert.tracked))
    return message


def alert_json(alert: Alert) -> dict:
    """An alert as a webhook receives it: the API's JSON of WatchAlert, without the posts' texts (a receiver
    outside the mesh gets the finding, not the data; it reads the posts through the API if it may)."""
    message = _alert(alert)
    for post in [*message.topic.representative_posts, *message.tracked_topic.representative_posts]:
        post.ClearField("text")
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class ClassificationServicer(classification_pb2_grpc.ClassificationServiceServicer):
    def __init__(self, core: ClassificationCore, listening: ListeningCore, *, alert_poll_seconds: float = 5.0) -> None:
        self._core = core
        self._listening = listening
        self._alert_poll = alert_poll_seconds

    async def Classify(self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext) -> pb.ClassifyResponse:
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
            if result.aspects is not None:
                message.aspects.CopyFrom(
                    pb.AspectsResult(aspects=[_aspect_sentiment(found) for found in result.aspects])
                )
            results.append(message)
        report_records(models=[(model.id, model.version) for model in outcome.models])
        return pb.ClassifyResponse(results=results, models=[_model_ref(model) for model in outcome.models])

    async def TrainClassifier(
        self, request: pb.TrainClassifierRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrainClassifierResponse:
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

    async def EvaluateClassifier(
        self, request: pb.EvaluateClassifierRequest, context: grpc.aio.ServicerContext
    ) -> pb.EvaluateClassifierResponse:
        record, metrics = await self._core.evaluate(
            current_call(), request.name, request.version, _examples(request.examples), _example_collection(request)
        )
        return pb.EvaluateClassifierResponse(
            metrics=_metrics(metrics), version=record.version, model=_model_ref(classifier_model(record))
        )

    async def GetClassifier(
        self, request: pb.GetClassifierRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetClassifierResponse:
        record = await self._core.get_classifier(
            current_call(), request.name, request.version, request.include_example_ids
        )
        return pb.GetClassifierResponse(classifier=_classifier(record))

    async def ListClassifiers(
        self, request: pb.ListClassifiersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClassifiersResponse:
        page = await self._core.list_classifiers(current_call(), request.name, request.page_size, request.page_token)
        return pb.ListClassifiersResponse(
            classifiers=[_classifier(record, summary=True) for record in page.classifiers],
            next_page_token=page.next_page_token,
        )

    async def DeleteClassifier(
        self, request: pb.DeleteClassifierRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteClassifierResponse:
        deleted = await self._core.delete_classifier(current_call(), request.name, request.version)
        return pb.DeleteClassifierResponse(deleted_versions=deleted)

    async def EraseSubject(
        self, request: pb.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.EraseSubjectResponse:
        call = current_call()
        erased = await self._core.erase_subject(call, request.subject_id)
        posts = await self._listening.erase_subject(call.tenant, request.subject_id)
        report_records(subjects=[request.subject_id])
        return pb.EraseSubjectResponse(
            erased_examples=erased.examples,
            erased_classifier_heads=erased.withdrawn_versions,
            erased_watch_posts=posts or None,
        )

    async def DescribeSubject(
        self, request: pb.DescribeSubjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.DescribeSubjectResponse:
        call = current_call()
        holdings = await self._core.describe_subject(call, request.subject_id)
        holdings = cap_exports(
            holdings + await self._listening.describe_subject(call.tenant, request.subject_id, call.data_class)
        )
        report_records(exported_classes(holdings), subjects=[request.subject_id])
        return pb.DescribeSubjectResponse(holdings=holding_messages(holdings))

    async def DetectSignals(
        self, request: pb.DetectSignalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectSignalsResponse:
        outcome = await self._core.detect_signals(current_call(), _signal_request(request))
        return pb.DetectSignalsResponse(
            topics=[_topic(topic, outcome.start, outcome.window) for topic in outcome.report.topics],
            post_count=outcome.report.post_count,
            unclustered_post_count=outcome.report.unclustered_post_count,
            start_time=_timestamp(outcome.start),
            end_time=_timestamp(outcome.end),
            models=[_model_ref(model) for model in outcome.models],
        )

    # Listening watches

    async def CreateWatch(
        self, request: pb.CreateWatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateWatchResponse:
        view = await self._listening.create_watch(current_call(), _watch_spec(request.watch))
        report_records(resources=[f"watch:{view.row.name}"])
        return pb.CreateWatchResponse(watch=_watch(view), webhook_secret=self._listening.webhook_secret(view.row))

    async def GetWatch(self, request: pb.GetWatchRequest, context: grpc.aio.ServicerContext) -> pb.GetWatchResponse:
        view = await self._listening.get_watch(current_call(), request.name)
        report_records(resources=[f"watch:{view.row.name}"])
        return pb.GetWatchResponse(watch=_watch(view))

    async def ListWatches(
        self, request: pb.ListWatchesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWatchesResponse:
        page = await self._listening.list_watches(current_call(), request.page_size, request.page_token)
        report_records(resources=[f"watch:{view.row.name}" for view in page.watches])
        return pb.ListWatchesResponse(
            watches=[_watch(view) for view in page.watches], next_page_token=page.next_page_token
        )

    async def DeleteWatch(
        self, request: pb.DeleteWatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteWatchResponse:
        posts, reports, alerts = await self._listening.delete_watch(current_call(), request.name)
        report_records(resources=[f"watch:{request.name}"])
        return pb.DeleteWatchResponse(deleted_posts=posts, deleted_reports=reports, deleted_alerts=alerts)

    async def IngestPosts(
        self, request: pb.IngestPostsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IngestPostsResponse:
        posts = [
            RawWatchPost(
                post.id,
                post.text,
                _instant(post.time, post.HasField("time")),
                post.source,
                DataClass(post.policy.data_class) if post.policy.data_class else None,
                frozenset(post.policy.consented_purposes),
                post.policy.subject_id,
            )
            for post in request.posts
        ]
        outcome = await self._listening.ingest(current_call(), request.watch, request.source, posts)
        report_records(subjects=outcome.subjects, resources=[f"watch:{request.watch}"])
        return pb.IngestPostsResponse(accepted=outcome.accepted, duplicates=outcome.duplicates, late=outcome.late)

    async def ListWatchReports(
        self, request: pb.ListWatchReportsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWatchReportsResponse:
        page = await self._listening.list_reports(current_call(), request.watch, request.page_size, request.page_token)
        report_records(
            [report.data_class for report in page.reports],
            resources=[f"watch:{request.watch}"],
            models={(model.id, model.version) for report in page.reports for model in report.models},
        )
        return pb.ListWatchReportsResponse(
            reports=[_report(report) for report in page.reports],
            next_page_token=page.next_page_token,
            withheld_count=page.withheld,
        )

    async def WatchAlerts(
        self, request: pb.WatchAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchAlertsResponse]:
        alerts = self._listening.watch_alerts(
            current_call(),
            request.watch,
            request.after_sequence,
            from_start=request.from_start,
            poll_seconds=self._alert_poll,
        )
        async for alert in alerts:
            report_records([alert.data_class], resources=[f"watch:{alert.watch}"])
            yield pb.WatchAlertsResponse(alert=_alert(alert))
