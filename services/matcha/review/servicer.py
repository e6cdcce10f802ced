"""gRPC adapter of the review service: protobuf in, core call, protobuf out."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import overload

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.rpc import status_pb2

from matcha.common.v1 import common_pb2
from matcha.review.audiences import AudienceSpec, ResolvedAudience
from matcha.review.core import ContentEdit, ReviewCore, ReviewSignal, ReviseInput, RunResume, SubmitInput
from matcha.review.experiment_store import AutoPromotionRule, ExperimentRow, VariantRow
from matcha.review.experiments import ArmResult, ExperimentCore, NewExperimentInput, OutcomeInput
from matcha.review.records import DecisionRow, DeliveryRow, EventRow, ItemDetails, PublicationRow, VersionRow
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.data_map import exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.governance import DataClass
from matcha.runtime.interceptors import current_call, report_records


def _name(enum, prefix: str, number: int) -> str:
    """The core's name of an enum value; unknown numbers pass as digits for the core to refuse."""
    try:
        return enum.Name(number).removeprefix(prefix)
    except ValueError:
        return str(number)


# Enum fields are set by their proto names: message constructors take them (and refuse unknown ones, as
# EnumTypeWrapper.Value does), while Value() is typed as returning a plain int.
def _status(name: str) -> str:
    return f"REVIEW_STATUS_{name}"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@overload
def _timestamp(value: datetime) -> timestamp_pb2.Timestamp: ...
@overload
def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None: ...
def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    since = value - EPOCH
    return timestamp_pb2.Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


def _as_dict(message) -> dict:
    """Stored form of provenance, audience and flags: their proto JSON, queryable in the database."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# Reading back uses the message constructors, which take that JSON as keyword arguments (enum names,
# nested dicts) except for timestamps, and are an order of magnitude faster than json_format.ParseDict:
# List converts every item of a page.
def _provenance(values: dict) -> common_pb2.Provenance:
    fields = dict(values)
    created = fields.pop("create_time", None)
    message = common_pb2.Provenance(**fields)
    if len(created or "") > len("2026-01-01T00:00:00.000000Z"):  # nanoseconds: beyond datetime
        message.create_time.FromJsonString(created)
    elif created:
        message.create_time.CopyFrom(_timestamp(datetime.fromisoformat(created)))
    return message


def _flags(values: list[dict]) -> list[common_pb2.ContentFlag]:
    return [common_pb2.ContentFlag(**flag) for flag in values]


def _resume(message: review_pb2.RunResume, present: bool) -> RunResume | None:
    return RunResume(message.run_id, message.signal_key, message.capability) if present else None


def _delivery(row: DeliveryRow | None) -> review_pb2.Delivery | None:
    if row is None:
        return None
    return review_pb2.Delivery(
        state=f"DELIVERY_STATE_{row.state}",
        attempts=row.attempts,
        last_error=status_pb2.Status(code=row.last_error_code, message=row.last_error)
        if row.last_error_code is not None
        else None,
        deliver_time=_timestamp(row.delivered_at),
    )


def _version(row: VersionRow) -> review_pb2.ContentVersion:
    return review_pb2.ContentVersion(
        number=row.number,
        title=row.title,
        content=row.content,
        content_sha256=row.content_sha256,
        origin=f"VERSION_ORIGIN_{row.origin}",
        author_subject=row.author,
        provenance=_provenance(row.provenance) if row.provenance else None,
        comment=row.comment,
        diff_from_previous=row.diff,
        create_time=_timestamp(row.created_at),
    )


def _decision(row: DecisionRow) -> review_pb2.Decision:
    return review_pb2.Decision(
        outcome=f"DECISION_OUTCOME_{row.outcome}",
        comment=row.comment,
        reviewer_subject=row.reviewer,
        role=row.role,
        decide_time=_timestamp(row.decided_at),
        version=row.version,
        content_sha256=row.content_sha256,
        provenance_sha256=row.provenance_sha256,
    )


def _publication(row: PublicationRow | None) -> review_pb2.Publication | None:
    if row is None:
        return None
    return review_pb2.Publication(
        id=row.id,
        version=row.version,
        content_sha256=row.content_sha256,
        publisher_subject=row.publisher,
        publish_time=_timestamp(row.published_at),
        sinks=[review_pb2.SinkDelivery(sink=sink.sink, delivery=_delivery(sink.delivery)) for sink in row.sinks],
        trace_id=row.trace_id,
    )


def _item(details: ItemDetails) -> review_pb2.ReviewItem:
    item = details.item
    claimed = item.claimed_by and item.claim_expires_at and item.claim_expires_at > datetime.now(UTC)
    return review_pb2.ReviewItem(
        id=item.id,
        status=_status(item.status),
        version=item.version,
        title=item.title,
        content=item.content,
        content_sha256=item.content_sha256,
        format=f"CONTENT_FORMAT_{item.format}",
        channel=f"CHANNEL_{item.channel}",
        target=item.target,
        audience=review_pb2.Audience(**item.audience),
        provenance=_provenance(item.provenance),
        voice_score=item.voice_score,
        flags=_flags(item.flags),
        # Stored as its number, one the core accepted.
        priority=review_pb2.Priority.Name(item.priority),
        due_time=_timestamp(item.due_at),
        four_eyes=item.four_eyes,
        submitter_subject=item.submitter,
        claim=review_pb2.ReviewClaim(
            reviewer_subject=item.claimed_by,
            claim_time=_timestamp(item.claimed_at),
            expire_time=_timestamp(item.claim_expires_at),
        )
        if claimed
        else None,
        versions=[_version(version) for version in details.versions],
        decisions=[_decision(decision) for decision in details.decisions],
        approved_version=item.approved_version or 0,
        approved_sha256=item.approved_sha256 or "",
        approved_provenance_sha256=item.approved_provenance_sha256 or "",
        approved_diff=item.approved_diff,
        resume=review_pb2.RunResume(run_id=item.resume_run_id, signal_key=item.resume_signal_key)
        if item.resume_run_id
        else None,
        resume_delivery=_delivery(details.resume_delivery),
        publication=_publication(details.publication),
        create_time=_timestamp(item.created_at),
        update_time=_timestamp(item.updated_at),
        subject_ids=item.subject_ids,
    )


def _audience_spec(message: review_pb2.AudienceSpec) -> AudienceSpec:
    chosen = message.WhichOneof("members")
    if chosen == "segment":
        segment = message.segment
        return AudienceSpec(segment.segmentation, segment.version, segment.segment_id)
    if chosen == "experiment_arm":
        return AudienceSpec(experiment_id=message.experiment_arm.experiment_id)
    # Neither set is an empty list, refused as such.
    return AudienceSpec(customer_ids=tuple(message.customers.customer_ids))


def _resolved_audience(audience: ResolvedAudience | None) -> review_pb2.ResolvedAudience | None:
    if audience is None:
        return None
    window = duration_pb2.Duration()
    window.FromTimedelta(audience.cap.window)
    return review_pb2.ResolvedAudience(
        segmentation=audience.segmentation,
        segmentation_version=audience.segmentation_version,
        segment_id=audience.segment_id,
        size=audience.size,
        members_sha256=audience.members_sha256,
        excluded_without_consent=audience.excluded_without_consent,
        excluded_opted_out=audience.excluded_opted_out,
        excluded_frequency_capped=audience.excluded_frequency_capped,
        frequency_cap_messages=audience.cap.messages,
        frequency_cap_window=window,
        experiment_id=audience.experiment_id,
        arm=audience.arm,
    )


def _event(row: EventRow) -> review_pb2.ReviewEvent:
    return review_pb2.ReviewEvent(
        sequence=row.sequence,
        time=_timestamp(row.at),
        type=f"REVIEW_EVENT_TYPE_{row.type}",
        item_id=row.item_id,
        status=_status(row.status),
        version=row.version,
        actor_subject=row.actor,
        decision=_decision(row.decision) if row.decision else None,
    )


def encode_signal(signal: ReviewSignal) -> dict:
    """The JSON form of the contract's ReviewSignal, every field present so plans can read any of them."""
    message = review_pb2.ReviewSignal(
        item_id=signal.item_id,
        status=_status(signal.status),
        version=signal.version,
        title=signal.title,
        content=signal.content,
        content_sha256=signal.content_sha256,
        comment=signal.comment,
        reviewer_subject=signal.reviewer_subject,
        decide_time=_timestamp(signal.decide_time),
        provenance_sha256=signal.provenance_sha256,
    )
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _experiment(row: ExperimentRow) -> review_pb2.Experiment:
    return review_pb2.Experiment(
        id=row.id,
        name=row.name,
        variants=[
            review_pb2.ExperimentVariant(
                label=variant.label, publication_id=variant.publication_id, item_id=variant.item_id
            )
            for variant in row.variants
        ],
        holdout_share=row.holdout_share,
        min_sample_per_arm=row.min_sample_per_arm,
        audience_size=row.audience_size,
        promoted_variant=row.promoted_variant or "",
        promoter_subject=row.promoter or "",
        promote_time=_timestamp(row.promoted_at),
        creator_subject=row.creator,
        create_time=_timestamp(row.created_at),
        auto_promote=(
            review_pb2.AutoPromotion(
                min_probability_best=row.auto_promote.min_probability_best,
                outcome=_outcome(row.auto_promote.outcome),
            )
            if row.auto_promote
            else None
        ),
    )


def _outcome(name: str) -> str:
    return f"OUTCOME_TYPE_{name}"


def _arm_result(arm: ArmResult, promoted: str | None) -> review_pb2.ArmResult:
    return review_pb2.ArmResult(
        arm=arm.arm,
        holdout=arm.holdout,
        publication_id=arm.publication_id,
        audience=arm.audience,
        outcomes=[
            review_pb2.OutcomeRate(
                type=_outcome(rate.outcome),
                customers=rate.customers,
                events=rate.events,
                rate=rate.rate,
                ci_low=rate.ci_low,
                ci_high=rate.ci_high,
                value_sum=rate.value_sum,
            )
            for rate in arm.outcomes
        ],
        lift=arm.lift,
        lift_absolute=arm.lift_absolute,
        probability_best=arm.probability_best,
        promoted=arm.arm == promoted,
    )


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, core: ReviewCore, experiments: ExperimentCore, *, watch_poll_seconds: float = 5.0) -> None:
        self._core = core
        self._experiments = experiments
        self._watch_poll = watch_poll_seconds

    async def Submit(
        self, request: review_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.SubmitResponse:
        details, created = await self._core.submit(
            current_call(),
            SubmitInput(
                title=request.title,
                content=request.content,
                format=_name(review_pb2.ContentFormat, "CONTENT_FORMAT_", request.format) if request.format else "",
                channel=_name(review_pb2.Channel, "CHANNEL_", request.channel),
                target=request.target,
                audience=_as_dict(request.audience),
                provenance=_as_dict(request.provenance),
                voice_score=request.voice_score if request.HasField("voice_score") else None,
                flags=[_as_dict(flag) for flag in request.flags],
                priority=request.priority,
                due_at=request.due_time.ToDatetime(tzinfo=UTC) if request.HasField("due_time") else None,
                four_eyes=request.four_eyes,
                resume=_resume(request.resume, request.HasField("resume")),
                quality_attestation=request.quality_attestation,
                subject_ids=list(request.subject_ids),
            ),
        )
        report_records(subjects=details.item.subject_ids)
        return review_pb2.SubmitResponse(item=_item(details), created=created)

    async def List(self, request: review_pb2.ListRequest, context: grpc.aio.ServicerContext) -> review_pb2.ListResponse:
        items, token = await self._core.list_items(
            current_call(),
            statuses=[_name(review_pb2.ReviewStatus, "REVIEW_STATUS_", status) for status in request.statuses],
            channel=_name(review_pb2.Channel, "CHANNEL_", request.channel) if request.channel else "",
            segment_id=request.segment_id,
            due_before=request.due_before.ToDatetime(tzinfo=UTC) if request.HasField("due_before") else None,
            claimed_by=request.claimed_by,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        report_records(
            (DataClass(details.item.data_class) for details in items),
            subjects=(subject for details in items for subject in details.item.subject_ids),
        )
        return review_pb2.ListResponse(items=[_item(item) for item in items], next_page_token=token)

    async def Get(self, request: review_pb2.GetRequest, context: grpc.aio.ServicerContext) -> review_pb2.GetResponse:
        details = await self._core.get(current_call(), request.item_id)
        report_records([DataClass(details.item.data_class)], subjects=details.item.subject_ids)
        return review_pb2.GetResponse(item=_item(details), history=[_event(event) for event in details.events])

    async def Claim(
        self, request: review_pb2.ClaimRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ClaimResponse:
        ttl = request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else None
        details = await self._core.claim(current_call(), request.item_id, ttl)
        return review_pb2.ClaimResponse(item=_item(details))

    async def Release(
        self, request: review_pb2.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ReleaseResponse:
        details = await self._core.release(current_call(), request.item_id)
        return review_pb2.ReleaseResponse(item=_item(details))

    async def Redeliver(
        self, request: review_pb2.RedeliverRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.RedeliverResponse:
        details, requeued = await self._core.redeliver(current_call(), request.item_id)
        return review_pb2.RedeliverResponse(item=_item(details), requeued=requeued)

    async def Decide(
        self, request: review_pb2.DecideRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.DecideResponse:
        details, decision = await self._core.decide(
            current_call(),
            request.item_id,
            version=request.version,
            outcome=_name(review_pb2.DecisionOutcome, "DECISION_OUTCOME_", request.outcome),
            comment=request.comment,
            edit=ContentEdit(request.edit.title, request.edit.content) if request.HasField("edit") else None,
        )
        return review_pb2.DecideResponse(item=_item(details), decision=_decision(decision))

    async def Revise(
        self, request: review_pb2.ReviseRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ReviseResponse:
        details = await self._core.revise(
            current_call(),
            request.item_id,
            ReviseInput(
                version=request.version,
                title=request.title,
                content=request.content,
                provenance=_as_dict(request.provenance) if request.HasField("provenance") else {},
                comment=request.comment,
                resume=_resume(request.resume, request.HasField("resume")),
                flags=[_as_dict(flag) for flag in request.flags] if request.flags else None,
                voice_score=request.voice_score if request.HasField("voice_score") else None,
            ),
        )
        return review_pb2.ReviseResponse(item=_item(details))

    async def Publish(
        self, request: review_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.PublishResponse:
        publication, already, audience = await self._core.publish(
            current_call(),
            request.item_id,
            request.content_sha256,
            list(request.sinks),
            _audience_spec(request.audience) if request.HasField("audience") else None,
            request.provenance_sha256,
        )
        if audience is not None:
            # The members are too many to name one by one on the access record; the digest names the list kept.
            report_records(resources=[f"audience:sha256:{audience.members_sha256}"])
        return review_pb2.PublishResponse(
            publication=_publication(publication), already_published=already, audience=_resolved_audience(audience)
        )

    async def WatchEvents(
        self, request: review_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[review_pb2.WatchEventsResponse]:
        events = self._core.watch(
            current_call(),
            item_id=request.item_id,
            types=[_name(review_pb2.ReviewEventType, "REVIEW_EVENT_TYPE_", value) for value in request.types],
            after_sequence=request.after_sequence,
            poll_seconds=self._watch_poll,
        )
        async for event in events:
            yield review_pb2.WatchEventsResponse(event=_event(event))

    async def EraseSubject(
        self, request: review_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.EraseSubjectResponse:
        erased = await self._core.erase_subject(current_call(), request.subject_id)
        report_records(subjects=[request.subject_id])
        return review_pb2.EraseSubjectResponse(
            erased_items=erased.items,
            erased_versions=erased.versions,
            erased_decisions=erased.decisions,
            erased_events=erased.events,
            erased_outbox_rows=erased.outbox_rows,
            erased_publications=erased.publications,
            erased_files=erased.files,
            erased_experiment_arms=erased.experiment_arms,
            erased_outcome_events=erased.outcome_events,
            erased_audience_memberships=erased.audience_memberships,
        )

    async def DescribeSubject(
        self, request: review_pb2.DescribeSubjectRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.DescribeSubjectResponse:
        holdings = await self._core.describe_subject(current_call(), request.subject_id)
        report_records(exported_classes(holdings), subjects=[request.subject_id])
        return review_pb2.DescribeSubjectResponse(holdings=holding_messages(holdings))

    async def CreateExperiment(
        self, request: review_pb2.CreateExperimentRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.CreateExperimentResponse:
        experiment, audience = await self._experiments.create(
            current_call(),
            NewExperimentInput(
                experiment_id=request.experiment_id,
                name=request.name,
                variants=[
                    VariantRow(variant.label, variant.publication_id, variant.item_id) for variant in request.variants
                ],
                holdout_share=request.holdout_share if request.HasField("holdout_share") else None,
                min_sample_per_arm=request.min_sample_per_arm,
                customer_ids=list(request.customer_ids),
                audience_publication_id=request.audience_publication_id,
                audience=_audience_spec(request.audience) if request.HasField("audience") else None,
                auto_promote=(
                    AutoPromotionRule(
                        request.auto_promote.min_probability_best,
                        _name(review_pb2.OutcomeType, "OUTCOME_TYPE_", request.auto_promote.outcome)
                        if request.auto_promote.outcome
                        else "",
                    )
                    if request.HasField("auto_promote")
                    else None
                ),
            ),
        )
        report_records(subjects=request.customer_ids)
        if audience is not None:
            report_records(resources=[f"audience:sha256:{audience.members_sha256}"])
        arms = [variant.label for variant in experiment.variants] + ["holdout"]
        return review_pb2.CreateExperimentResponse(
            experiment=_experiment(experiment),
            arms=[review_pb2.ArmSize(arm=arm, customers=experiment.arms.get(arm, 0)) for arm in arms],
            audience=_resolved_audience(audience),
        )

    async def AssignVariants(
        self, request: review_pb2.AssignVariantsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.AssignVariantsResponse:
        assignments, added = await self._experiments.assign(
            current_call(), request.experiment_id, list(request.customer_ids)
        )
        report_records(subjects=request.customer_ids)
        return review_pb2.AssignVariantsResponse(
            assignments=[review_pb2.VariantAssignment(customer_id=customer, arm=arm) for customer, arm in assignments],
            added=added,
        )

    async def IngestOutcomes(
        self, request: review_pb2.IngestOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.IngestOutcomesResponse:
        result = await self._experiments.ingest(
            current_call(),
            [
                OutcomeInput(
                    event_id=event.event_id,
                    experiment_id=event.experiment_id,
                    publication_id=event.publication_id,
                    customer_id=event.customer_id,
                    outcome=_name(review_pb2.OutcomeType, "OUTCOME_TYPE_", event.type),
                    value=event.value,
                    at=event.time.ToDatetime(tzinfo=UTC) if event.HasField("time") else None,
                )
                for event in request.events
            ],
        )
        report_records(subjects=[event.customer_id for event in request.events])
        return review_pb2.IngestOutcomesResponse(accepted=result.accepted, duplicates=result.duplicates)

    async def ListExperiments(
        self, request: review_pb2.ListExperimentsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ListExperimentsResponse:
        experiments, token = await self._experiments.list_experiments(
            current_call(), request.page_size, request.page_token
        )
        return review_pb2.ListExperimentsResponse(
            experiments=[_experiment(row) for row in experiments], next_page_token=token
        )

    async def GetCampaignResults(
        self, request: review_pb2.GetCampaignResultsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.GetCampaignResultsResponse:
        results = await self._experiments.results(
            current_call(),
            request.experiment_id,
            _name(review_pb2.OutcomeType, "OUTCOME_TYPE_", request.outcome) if request.outcome else "",
            include_series=request.include_series,
            bucket=request.bucket.ToTimedelta() if request.HasField("bucket") else None,
            require_winner=request.require_winner,
        )
        promoted = results.experiment.promoted_variant
        return review_pb2.GetCampaignResultsResponse(
            experiment=_experiment(results.experiment),
            outcome=_outcome(results.outcome),
            arms=[_arm_result(arm, promoted) for arm in results.arms],
            minimum_sample_reached=results.minimum_sample_reached,
            winner=promoted or "",
            winner_item_id=results.winner_item_id,
            series=[
                review_pb2.ArmSeries(
                    arm=arm,
                    points=[
                        review_pb2.SeriesPoint(
                            start_time=_timestamp(point.start),
                            end_time=_timestamp(point.end),
                            customers=point.customers,
                            rate=point.rate,
                        )
                        for point in points
                    ],
                )
                for arm, points in (results.series or {}).items()
            ],
        )

    async def PromoteVariant(
        self, request: review_pb2.PromoteVariantRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.PromoteVariantResponse:
        experiment, already = await self._experiments.promote(current_call(), request.experiment_id, request.variant)
        return review_pb2.PromoteVariantResponse(experiment=_experiment(experiment), already_promoted=already)
