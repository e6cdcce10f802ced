"""gRPC adapter of the segmentation service: protobuf in, core call, protobuf out."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.rpc import status_pb2

from matcha.common.v1 import common_pb2
from matcha.runtime.data_map import exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.governance import DataClass, RecordPolicy
from matcha.runtime.interceptors import current_call, report_records
from matcha.runtime.messages import data_class_message
from matcha.segmentation import conditions as cond
from matcha.segmentation import drift
from matcha.segmentation.condition_core import ConditionSegmentsCore
from matcha.segmentation.ingestion_core import IngestionCore
from matcha.segmentation.k_choice import SILHOUETTE, STABILITY
from matcha.segmentation.methods import HDBSCAN_METHOD, KMEANS, RULES, KMeansParameters, Rule
from matcha.segmentation.recommend import CO_OCCURRENCE, CONTENT_SIMILARITY, GLOBAL_POPULARITY, SEGMENT_POPULARITY
from matcha.segmentation.recommendation_core import RecommendationCore
from matcha.segmentation.records import (
    BUILDING,
    FAILED,
    BuildInput,
    ChangeRecord,
    ConditionSegmentView,
    CustomerInput,
    CustomerRow,
    EventInput,
    IngestTotals,
    ItemInput,
    PolicyInput,
    RecommendInput,
    SegmentationView,
    SegmentRecord,
    TransactionInput,
)
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from matcha.segmentation.versions_core import VersionsCore

_TRANSFORM_NAMES = {
    pb.FEATURE_TRANSFORM_UNSPECIFIED: "standardize",
    pb.FEATURE_TRANSFORM_STANDARDIZE: "standardize",
    pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE: "log1p_standardize",
    pb.FEATURE_TRANSFORM_QUANTILE: "quantile",
    pb.FEATURE_TRANSFORM_NONE: "none",
}
_TRANSFORM_NUMBERS = {name: number for number, name in _TRANSFORM_NAMES.items() if number}
_METHODS = {
    KMEANS: pb.SEGMENTATION_METHOD_KMEANS,
    HDBSCAN_METHOD: pb.SEGMENTATION_METHOD_HDBSCAN,
    RULES: pb.SEGMENTATION_METHOD_RULES,
}
_REASON_KINDS = {
    SEGMENT_POPULARITY: pb.REASON_KIND_SEGMENT_POPULARITY,
    CO_OCCURRENCE: pb.REASON_KIND_CO_OCCURRENCE,
    CONTENT_SIMILARITY: pb.REASON_KIND_CONTENT_SIMILARITY,
    GLOBAL_POPULARITY: pb.REASON_KIND_GLOBAL_POPULARITY,
}
_CRITERIA = {
    pb.K_CRITERION_UNSPECIFIED: SILHOUETTE,
    pb.K_CRITERION_SILHOUETTE: SILHOUETTE,
    pb.K_CRITERION_STABILITY: STABILITY,
}
_DRIFT_LEVELS = {1: pb.DRIFT_LEVEL_STABLE, 2: pb.DRIFT_LEVEL_MODERATE, 3: pb.DRIFT_LEVEL_SIGNIFICANT}
# Conditions keep the contract's event type numbers.
_EVENT_TYPES = {int(value): value for value in (pb.EVENT_TYPE_PURCHASE, pb.EVENT_TYPE_VISIT, pb.EVENT_TYPE_CLICK)}
_STATES = {BUILDING: pb.SEGMENTATION_STATE_BUILDING, FAILED: pb.SEGMENTATION_STATE_FAILED}
# Ids per message of StreamSegmentMembers: 10,000 ids of at most 128 characters stay under 5 MiB.
MEMBERS_PER_MESSAGE = 10_000


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def _time_or_none(message, field: str) -> datetime | None:
    return getattr(message, field).ToDatetime(tzinfo=UTC) if message.HasField(field) else None


def _struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def _policy_input(policy: common_pb2.RecordPolicy) -> PolicyInput:
    return PolicyInput(
        data_class=DataClass(policy.data_class) if policy.data_class else None,
        consented_purposes=frozenset(policy.consented_purposes),
        source=policy.source,
        subject_id=policy.subject_id,
    )


def _policy_message(policy: RecordPolicy) -> common_pb2.RecordPolicy:
    return common_pb2.RecordPolicy(
        data_class=data_class_message(policy.data_class),
        consented_purposes=sorted(policy.consented_purposes),
        source=policy.source,
        subject_id=policy.subject_id,
    )


def _customer_input(customer: pb.Customer) -> CustomerInput:
    policy = _policy_input(customer.policy)
    return CustomerInput(
        id=customer.id,
        attributes=json_format.MessageToDict(customer.attributes),
        features=dict(customer.features),
        join_time=_time_or_none(customer, "join_time"),
        data_class=policy.data_class,
        consented_purposes=policy.consented_purposes,
        source=policy.source,
        subject_id=policy.subject_id,
        opted_out_channels=tuple(customer.opted_out_channels),
    )


def _customer_message(row: CustomerRow) -> pb.Customer:
    return pb.Customer(
        id=row.id,
        attributes=_struct(row.attributes),
        features=row.features,
        join_time=_timestamp(row.join_time),
        policy=_policy_message(row.policy),
        opted_out_channels=row.opted_out_channels,
        unsubscribed_channels=row.unsubscribed_channels,
    )


def _transaction_input(transaction: pb.Transaction) -> TransactionInput:
    return TransactionInput(
        id=transaction.id,
        customer_id=transaction.customer_id,
        time=_time_or_none(transaction, "time"),
        amount=transaction.amount,
        quantity=transaction.quantity if transaction.HasField("quantity") else 1.0,
        channel=transaction.channel,
        item_id=transaction.item_id,
        refund=transaction.refund,
    )


def _event_input(event: pb.BehaviourEvent) -> EventInput:
    return EventInput(
        id=event.id,
        customer_id=event.customer_id,
        type=event.type,
        time=_time_or_none(event, "time"),
        item_id=event.item_id,
        amount=event.amount,
        quantity=event.quantity if event.HasField("quantity") else 1.0,
    )


def _item_input(item: pb.Item) -> ItemInput:
    return ItemInput(
        id=item.id,
        name=item.name,
        category=item.category,
        attributes=json_format.MessageToDict(item.attributes),
        vector=list(item.vector),
        model_id=item.vector_model.id,
        model_version=item.vector_model.version,
    )


def _change_message(change: ChangeRecord) -> pb.SegmentChange:
    return pb.SegmentChange(
        sequence=change.sequence,
        time=_timestamp(change.time),
        customer_id=change.customer_id,
        segmentation=change.segmentation,
        version=change.version,
        from_segment_id=change.from_segment,
        to_segment_id=change.to_segment,
        to_segment_name=change.to_name,
        cause_id=change.cause_id,
    )


def _persona_message(persona: dict | None) -> pb.Persona | None:
    if not persona:
        return None
    return pb.Persona(
        title=persona.get("title", ""),
        summary=persona["summary"],
        provenance=json_format.ParseDict(persona.get("provenance", {}), common_pb2.Provenance()),
        author_subject=persona["author_subject"],
        update_time=_timestamp(datetime.fromisoformat(persona["update_time"])),
    )


def _segment_message(segment: SegmentRecord) -> pb.Segment:
    return pb.Segment(
        id=segment.id,
        name=segment.name,
        size=segment.size,
        share=segment.share,
        features=[pb.FeatureProfile(**profile) for profile in segment.profile],
        top_features=segment.top_features,
        exemplars=[pb.SegmentExemplar(customer_id=customer_id, distance=d) for customer_id, d in segment.exemplars],
        outliers=segment.outliers,
        condition=segment.condition,
        persona=_persona_message(segment.persona),
    )


def _k_score(row) -> pb.KScore:
    # Versions built before stability was measured stored (k, silhouette).
    k, score, *rest = row
    stability, smallest_share = (rest[0], rest[1]) if len(rest) >= 2 else (0.0, 0.0)
    return pb.KScore(k=k, silhouette=score, stability=stability, smallest_share=smallest_share)


def _segmentation_message(view: SegmentationView) -> pb.Segmentation:
    version = view.version
    message = pb.Segmentation(
        name=version.name,
        version=version.version,
        description=version.description,
        state=_STATES.get(version.state, pb.SEGMENTATION_STATE_READY),
        method=_METHODS[view.method],
        features=version.features,
        seed=version.seed,
        population=version.population,
        silhouette=version.silhouette,
        segments=[_segment_message(segment) for segment in view.segments],
        k_scores=[_k_score(row) for row in view.k_scores],
        k_reason=next((row[4] for row in view.k_scores if len(row) > 4 and row[4]), ""),
        create_subject=version.create_subject,
        create_time=_timestamp(version.created_at),
        complete_time=_timestamp(version.completed_at),
    )
    if version.state == BUILDING:
        progress = version.progress
        message.progress.CopyFrom(
            common_pb2.Progress(
                completed=progress.get("completed", 0), total=progress.get("total", 0), stage=progress.get("stage", "")
            )
        )
    if version.state == FAILED and version.error:
        message.error.CopyFrom(status_pb2.Status(code=version.error["code"], message=version.error["message"]))
    if view.model is not None:
        message.scaling.extend(
            pb.FeatureScaling(
                feature=scaling.feature,
                transform=_TRANSFORM_NUMBERS[scaling.transform],
                center=scaling.center,
                scale=scaling.scale,
            )
            for scaling in view.model.scaling
        )
    return message


def _build_input(request: pb.BuildSegmentationRequest) -> BuildInput:
    method = request.WhichOneof("method") or ""
    return BuildInput(
        name=request.name,
        description=request.description,
        features=list(request.features),
        method={"kmeans": KMEANS, "hdbscan": HDBSCAN_METHOD, "rules": RULES}.get(method, ""),
        kmeans=KMeansParameters(
            request.kmeans.k,
            request.kmeans.k_min,
            request.kmeans.k_max,
            request.kmeans.silhouette_sample_size,
            criterion=_CRITERIA.get(request.kmeans.criterion, "unknown"),
            min_share=request.kmeans.min_share,
            preferred=(request.kmeans.preferred_k_min, request.kmeans.preferred_k_max),
        ),
        min_cluster_size=request.hdbscan.min_cluster_size,
        min_samples=request.hdbscan.min_samples,
        rules=[Rule(rule.id, rule.name, rule.condition) for rule in request.rules.rules],
        transforms={name: _TRANSFORM_NAMES.get(number, "unknown") for name, number in request.transforms.items()},
        seed=request.seed,
        exemplar_count=request.exemplar_count if request.HasField("exemplar_count") else None,
    )


_OPERATORS = {
    pb.COMPARE_OPERATOR_EQ: "eq",
    pb.COMPARE_OPERATOR_NE: "ne",
    pb.COMPARE_OPERATOR_LT: "lt",
    pb.COMPARE_OPERATOR_LE: "le",
    pb.COMPARE_OPERATOR_GT: "gt",
    pb.COMPARE_OPERATOR_GE: "ge",
}
_OPERATOR_NUMBERS = {name: number for number, name in _OPERATORS.items()}


def _scalar(value: pb.ScalarValue):
    kind = value.WhichOneof("kind")
    return None if kind is None else {"number": value.number, "text": value.text, "flag": value.flag}[kind]


def _scalar_message(value) -> pb.ScalarValue:
    if isinstance(value, bool):
        return pb.ScalarValue(flag=value)
    if isinstance(value, int | float):
        return pb.ScalarValue(number=float(value))
    return pb.ScalarValue(text=value)


def _seconds(message: timestamp_pb2.Timestamp) -> float:
    return message.seconds + message.nanos / 1e9


def _condition_input(message: pb.Condition) -> cond.Node:
    """The tree as the request gives it; the core validates it."""
    kind = message.WhichOneof("kind")
    if kind in ("all", "any"):
        children = tuple(_condition_input(child) for child in getattr(message, kind).conditions)
        return cond.AllOf(children) if kind == "all" else cond.AnyOf(children)
    if kind == "not":
        return cond.NotOf(_condition_input(getattr(message, "not")))
    if kind == "property":
        test = message.property
        which = test.WhichOneof("test")
        if which == "compare":
            operator = _OPERATORS.get(test.compare.operator, "unspecified")
            return cond.PropertyTest(test.property, operator, _scalar(test.compare.value))
        if which == "in_list":
            return cond.PropertyTest(test.property, "in", values=tuple(_scalar(v) for v in test.in_list.values))
        if which == "range":
            low = test.range.min if test.range.HasField("min") else None
            high = test.range.max if test.range.HasField("max") else None
            return cond.PropertyTest(test.property, "range", low=low, high=high)
        return cond.PropertyTest(test.property, "")
    if kind == "event":
        event = message.event
        window = event.WhichOneof("window")
        return cond.EventTest(
            type=event.type,
            item_ids=tuple(event.item_ids),
            amount_min=event.amount.min if event.amount.HasField("min") else None,
            amount_max=event.amount.max if event.amount.HasField("max") else None,
            within_seconds=event.within.ToTimedelta().total_seconds() if window == "within" else None,
            start=_seconds(event.between.start) if window == "between" and event.between.HasField("start") else None,
            end=_seconds(event.between.end) if window == "between" and event.between.HasField("end") else None,
            min_count=event.min_count if event.HasField("min_count") else None,
            max_count=event.max_count if event.HasField("max_count") else None,
            sum_min=event.amount_sum.min if event.amount_sum.HasField("min") else None,
            sum_max=event.amount_sum.max if event.amount_sum.HasField("max") else None,
            not_occurred=event.not_occurred,
        )
    if kind == "member_of":
        return cond.MemberOf(message.member_of.segmentation, message.member_of.segment_id)
    if kind == "bucket":
        return cond.Bucket(message.bucket.salt, message.bucket.lower, message.bucket.upper)
    return cond.Missing()


def _range_message(low, high) -> pb.NumberRange | None:
    if low is None and high is None:
        return None
    return pb.NumberRange(min=low, max=high)


def _condition_message(node: cond.Node) -> pb.Condition:
    if isinstance(node, cond.AllOf):
        return pb.Condition(all=pb.ConditionList(conditions=[_condition_message(c) for c in node.children]))
    if isinstance(node, cond.AnyOf):
        return pb.Condition(any=pb.ConditionList(conditions=[_condition_message(c) for c in node.children]))
    if isinstance(node, cond.NotOf):
        message = pb.Condition()
        getattr(message, "not").CopyFrom(_condition_message(node.child))
        return message
    if isinstance(node, cond.PropertyTest):
        test = pb.PropertyCondition(property=node.path)
        if node.operator == "in":
            test.in_list.values.extend(_scalar_message(value) for value in node.values)
        elif node.operator == "range":
            # Validation requires min, max or both.
            test.range.CopyFrom(pb.NumberRange(min=node.low, max=node.high))
        else:
            test.compare.CopyFrom(
                pb.Comparison(operator=_OPERATOR_NUMBERS[node.operator], value=_scalar_message(node.value))
            )
        return pb.Condition(property=test)
    if isinstance(node, cond.EventTest):
        event = pb.EventCondition(
            type=_EVENT_TYPES[node.type],
            item_ids=node.item_ids,
            amount=_range_message(node.amount_min, node.amount_max),
            min_count=node.min_count,
            max_count=node.max_count,
            amount_sum=_range_message(node.sum_min, node.sum_max),
            not_occurred=node.not_occurred,
        )
        if node.within_seconds is not None:
            event.within.FromNanoseconds(round(node.within_seconds * 1e9))
        else:
            # Validation requires a window: within, or between with both ends.
            assert node.start is not None and node.end is not None
            event.between.start.FromNanoseconds(round(node.start * 1e9))
            event.between.end.FromNanoseconds(round(node.end * 1e9))
        return pb.Condition(event=event)
    if isinstance(node, cond.MemberOf):
        return pb.Condition(member_of=pb.SegmentReference(segmentation=node.segmentation, segment_id=node.segment_id))
    if isinstance(node, cond.Bucket):
        return pb.Condition(bucket=pb.RandomBucket(salt=node.salt, lower=node.lower, upper=node.upper))
    raise ValueError("an unset node is never stored")


def _condition_segment_message(view: ConditionSegmentView) -> pb.ConditionSegment:
    record = view.record
    message = pb.ConditionSegment(
        name=record.name,
        version=record.version,
        description=record.description,
        condition=_condition_message(view.node),
        state=_STATES.get(record.state, pb.SEGMENTATION_STATE_READY),
        size=record.size,
        create_subject=record.create_subject,
        create_time=_timestamp(record.created_at),
        complete_time=_timestamp(record.completed_at),
    )
    if record.state == BUILDING:
        progress = record.progress
        message.progress.CopyFrom(
            common_pb2.Progress(
                completed=progress.get("completed", 0), total=progress.get("total", 0), stage=progress.get("stage", "")
            )
        )
    return message


class SegmentationServicer(segmentation_pb2_grpc.SegmentationServiceServicer):
    def __init__(
        self,
        ingestion: IngestionCore,
        versions: VersionsCore,
        recommendations: RecommendationCore,
        conditions: ConditionSegmentsCore,
    ) -> None:
        self._ingestion = ingestion
        self._versions = versions
        self._recommendations = recommendations
        self._conditions = conditions

    async def DefineConditionSegment(
        self, request: pb.DefineConditionSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DefineConditionSegmentResponse:
        view = await self._conditions.define(
            current_call(), request.name, request.description, _condition_input(request.condition)
        )
        return pb.DefineConditionSegmentResponse(segment=_condition_segment_message(view))

    async def GetConditionSegment(
        self, request: pb.GetConditionSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConditionSegmentResponse:
        view = await self._conditions.get(current_call(), request.name, request.version)
        return pb.GetConditionSegmentResponse(segment=_condition_segment_message(view))

    async def ListConditionSegmentMembers(
        self, request: pb.ListConditionSegmentMembersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConditionSegmentMembersResponse:
        ids, token, total = await self._conditions.members(
            current_call(), request.name, request.page_size, request.page_token
        )
        return pb.ListConditionSegmentMembersResponse(customer_ids=ids, next_page_token=token, total_size=total)

    async def IngestCustomers(
        self, request: pb.IngestCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.IngestCustomersResponse:
        customers = [_customer_input(customer) for customer in request.customers]
        inserted, updated, unchanged, raised = await self._ingestion.ingest_customers(current_call(), customers)
        report_records(subjects=(customer.subject_id for customer in customers), resources=["customers"])
        return pb.IngestCustomersResponse(
            inserted=inserted, updated=updated, unchanged=unchanged, raised_to_personal=raised
        )

    async def IngestTransactions(
        self, request: pb.IngestTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IngestTransactionsResponse:
        totals = await self._ingestion.ingest_transactions(
            current_call(),
            [_transaction_input(transaction) for transaction in request.transactions],
            _policy_input(request.default_policy) if request.HasField("default_policy") else None,
        )
        report_records(resources=["transactions"])
        return pb.IngestTransactionsResponse(
            inserted=totals.inserted,
            duplicates=totals.duplicates,
            customers_created=totals.customers_created,
            customers_updated=totals.customers_updated,
        )

    async def IngestItems(
        self, request: pb.IngestItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IngestItemsResponse:
        inserted, updated = await self._recommendations.ingest_items(
            current_call(), [_item_input(item) for item in request.items]
        )
        return pb.IngestItemsResponse(inserted=inserted, updated=updated)

    async def IngestEvents(self, request_iterator, context):
        async def messages():
            async for request in request_iterator:
                policy = _policy_input(request.default_policy) if request.HasField("default_policy") else None
                yield [_event_input(event) for event in request.events], policy

        totals = await self._ingestion.ingest_events(current_call(), messages())
        report_records(resources=["events"])
        return _totals_message(totals)

    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnsubscribeResponse:
        unsubscribed = await self._ingestion.unsubscribe(current_call(), request.customer_id, request.channel)
        policy = unsubscribed.policy
        report_records([policy.data_class], subjects=[policy.subject_id], resources=["customers"])
        return pb.UnsubscribeResponse(unsubscribed_channels=unsubscribed.channels, changed=unsubscribed.changed)

    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerResponse:
        view = await self._ingestion.get_customer(
            current_call(), request.customer_id, request.history_limit if request.HasField("history_limit") else 20
        )
        report_records([view.row.policy.data_class], subjects=[view.row.policy.subject_id], resources=["customers"])
        return pb.GetCustomerResponse(
            customer=_customer_message(view.row),
            features=view.features,
            reference_time=_timestamp(view.reference_time),
            memberships=[
                pb.Membership(
                    segmentation=membership.segmentation,
                    version=membership.version,
                    segment_id=membership.segment_id,
                    segment_name=membership.segment_name,
                    since=_timestamp(membership.since),
                )
                for membership in view.memberships
            ],
            history=[_change_message(change) for change in view.history],
        )

    async def EraseSubject(
        self, request: pb.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.EraseSubjectResponse:
        erased = await self._ingestion.erase_subject(current_call(), request.subject_id)
        return pb.EraseSubjectResponse(
            erased_customers=erased.customers,
            erased_transactions=erased.transactions,
            erased_events=erased.events,
            erased_idempotency_replies=erased.idempotency_replies,
        )

    async def DescribeSubject(
        self, request: pb.DescribeSubjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.DescribeSubjectResponse:
        holdings = await self._ingestion.describe_subject(current_call(), request.subject_id)
        report_records(exported_classes(holdings), subjects=[request.subject_id])
        return pb.DescribeSubjectResponse(holdings=holding_messages(holdings))

    async def BuildSegmentation(
        self, request: pb.BuildSegmentationRequest, context: grpc.aio.ServicerContext
    ) -> pb.BuildSegmentationResponse:
        view = await self._versions.build_segmentation(current_call(), _build_input(request))
        return pb.BuildSegmentationResponse(segmentation=_segmentation_message(view))

    async def GetSegmentation(
        self, request: pb.GetSegmentationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSegmentationResponse:
        view = await self._versions.get_segmentation(current_call(), request.name, request.version)
        return pb.GetSegmentationResponse(segmentation=_segmentation_message(view))

    async def ListSegmentations(
        self, request: pb.ListSegmentationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSegmentationsResponse:
        views, next_token = await self._versions.list_segmentations(
            current_call(), request.name, request.page_size, request.page_token
        )
        return pb.ListSegmentationsResponse(
            segmentations=[_segmentation_message(view) for view in views], next_page_token=next_token
        )

    async def ListSegmentMembers(
        self, request: pb.ListSegmentMembersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSegmentMembersResponse:
        page = await self._versions.list_members(
            current_call(), request.name, request.version, request.segment_id, request.page_size, request.page_token
        )
        return pb.ListSegmentMembersResponse(
            members=[
                pb.SegmentMember(customer_id=customer_id, distance=distance, since=_timestamp(since))
                for customer_id, distance, since in page.members
            ],
            next_page_token=page.next_page_token,
            total_size=page.total,
        )

    async def StreamSegmentMembers(
        self, request: pb.StreamSegmentMembersRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamSegmentMembersResponse]:
        version, members = await self._versions.reachable_members(
            current_call(),
            request.name,
            request.version,
            request.segment_id,
            list(request.customer_ids),
            request.channel,
        )
        ids = members.customer_ids
        where = f"segment:{request.name}/{version}/{request.segment_id}" if version else "customers:listed"
        report_records(resources=[where])
        for start in range(0, len(ids), MEMBERS_PER_MESSAGE):
            yield pb.StreamSegmentMembersResponse(customer_ids=ids[start : start + MEMBERS_PER_MESSAGE])
        yield pb.StreamSegmentMembersResponse(
            summary=pb.SegmentMembersSummary(
                version=version,
                members=members.members,
                without_consent=members.without_consent,
                opted_out=members.opted_out,
                unknown_customer_ids=members.unknown_customer_ids,
            )
        )

    async def Assign(self, request: pb.AssignRequest, context: grpc.aio.ServicerContext) -> pb.AssignResponse:
        which = request.WhichOneof("customer")
        outcome = await self._versions.assign(
            current_call(),
            request.name,
            request.version,
            request.customer_id if which == "customer_id" else None,
            dict(request.features.values) if which == "features" else None,
        )
        return pb.AssignResponse(
            segment_id=outcome.segment_id,
            segment_name=outcome.segment_name,
            version=outcome.version,
            distance=outcome.distance,
            confidence=outcome.confidence,
            outlier=outcome.outlier,
            alternatives=[pb.SegmentDistance(segment_id=s, distance=d) for s, d in outcome.alternatives],
        )

    async def WatchSegmentChanges(
        self, request: pb.WatchSegmentChangesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchSegmentChangesResponse]:
        changes = self._versions.watch_changes(
            current_call(),
            request.segmentation,
            list(request.segment_ids),
            request.after_sequence if request.HasField("after_sequence") else None,
        )
        async for logged in changes:
            yield pb.WatchSegmentChangesResponse(changes=[_change_message(change) for change in logged])

    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        result = await self._recommendations.recommend(
            current_call(),
            RecommendInput(
                customer_id=request.customer_id,
                segmentation=request.segmentation,
                limit=request.limit,
                include_owned=request.include_owned,
                exclude_item_ids=list(request.exclude_item_ids),
                candidate_item_ids=list(request.candidate_item_ids),
            ),
        )
        return pb.RecommendResponse(
            recommendations=[
                pb.Recommendation(
                    item_id=item.item_id,
                    item_name=item.name,
                    score=item.score,
                    reasons=[
                        pb.RecommendationReason(
                            kind=_REASON_KINDS[kind], weight=weight, related_item_id=related, explanation=text
                        )
                        for kind, weight, related, text in item.reasons
                    ],
                )
                for item in result.items
            ],
            segmentation=result.segmentation,
            version=result.version,
            segment_id=result.segment_id,
        )

    async def CompareSegmentations(
        self, request: pb.CompareSegmentationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompareSegmentationsResponse:
        target = request.WhichOneof("target")
        comparison = await self._versions.compare(
            current_call(),
            request.name,
            request.baseline_version,
            request.target_version if target == "target_version" else None,
        )
        levels = [_DRIFT_LEVELS[drift.level(psi)] for _, psi in comparison.feature_drift]
        return pb.CompareSegmentationsResponse(
            feature_drift=[
                pb.FeatureDrift(feature=feature, psi=psi, level=level)
                for (feature, psi), level in zip(comparison.feature_drift, levels, strict=True)
            ],
            overall=max(levels, default=pb.DRIFT_LEVEL_STABLE),
            migration=pb.MigrationMatrix(
                from_segment_ids=comparison.from_segment_ids,
                to_segment_ids=comparison.to_segment_ids,
                rows=[pb.MigrationRow(counts=row) for row in comparison.counts],
            ),
            shifts=[
                pb.SegmentShift(segment_id=segment, baseline_share=before, target_share=after)
                for segment, before, after in comparison.shifts
            ],
            appeared_segment_ids=comparison.appeared,
            vanished_segment_ids=comparison.vanished,
            common_customers=comparison.common,
            new_customers=comparison.new,
            departed_customers=comparison.departed,
        )

    async def AttachPersona(
        self, request: pb.AttachPersonaRequest, context: grpc.aio.ServicerContext
    ) -> pb.AttachPersonaResponse:
        persona = {
            "title": request.persona.title,
            "summary": request.persona.summary,
            "provenance": json_format.MessageToDict(request.persona.provenance),
        }
        segment = await self._versions.attach_persona(
            current_call(), request.name, request.version, request.segment_id, persona
        )
        return pb.AttachPersonaResponse(segment=_segment_message(segment))


class SegmentationPartitionServicer(segmentation_pb2_grpc.SegmentationPartitionServiceServicer):
    """Between replicas: the part of an events message whose customers this replica owns."""

    def __init__(self, ingestion: IngestionCore) -> None:
        self._ingestion = ingestion

    async def ApplyEvents(
        self, request: pb.ApplyEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApplyEventsResponse:
        policy = _policy_input(request.default_policy) if request.HasField("default_policy") else None
        totals = await self._ingestion.apply_owned(
            current_call(), [_event_input(event) for event in request.events], policy
        )
        report_records(resources=["events"])
        return pb.ApplyEventsResponse(totals=_totals_message(totals))

    async def ReevaluateCustomers(
        self, request: pb.ReevaluateCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReevaluateCustomersResponse:
        changes = await self._ingestion.reevaluate_owned(current_call(), list(request.customer_ids))
        report_records(resources=["customers"])
        return pb.ReevaluateCustomersResponse(condition_changes=changes)


def _totals_message(totals: IngestTotals) -> pb.IngestEventsResponse:
    return pb.IngestEventsResponse(
        accepted=totals.inserted,
        duplicates=totals.duplicates,
        customers_created=totals.customers_created,
        customers_updated=totals.customers_updated,
        reassigned=totals.reassigned,
        late=totals.late,
        condition_changes=totals.condition_changes,
    )
