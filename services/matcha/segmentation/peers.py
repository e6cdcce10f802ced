"""The client side of `ApplyEvents`: a replica applies the part of an events message whose customers another replica
owns on that replica, with the caller's own token, purpose and class (the owner checks them as its own call)."""

import re
from collections.abc import Sequence

import grpc
from google.protobuf import timestamp_pb2

from matcha.common.v1 import common_pb2
from matcha.runtime.client import ErrorDetails, error_details
from matcha.runtime.errors import FieldViolation, MatchaError
from matcha.runtime.governance import CallContext
from matcha.runtime.messages import data_class_message
from matcha.segmentation.partitions import SLOT_MOVED, Partitions, SlotMoved
from matcha.segmentation.records import EventInput, IngestTotals, PolicyInput
from matcha.segmentation.v1 import segmentation_pb2 as pb

APPLY_EVENTS = "/matcha.segmentation.v1.SegmentationPartitionService/ApplyEvents"
REEVALUATE_CUSTOMERS = "/matcha.segmentation.v1.SegmentationPartitionService/ReevaluateCustomers"
_TIMEOUT_SECONDS = 60.0
_EVENT_INDEX = re.compile(r"^events\[(\d+)\]")


class Peers:
    def __init__(self, partitions: Partitions) -> None:
        self._partitions = partitions

    async def apply(
        self,
        call: CallContext,
        address: str,
        events: list[EventInput],
        policy: PolicyInput | None,
        positions: Sequence[int],
    ) -> IngestTotals:
        """The part's totals; SlotMoved when the peer no longer owns a slot or cannot be reached (the caller
        reads the owners again); the peer's other refusals as this replica's, with the caller's event paths."""
        request = pb.ApplyEventsRequest(events=[_event_message(event) for event in events])
        if policy is not None:
            request.default_policy.CopyFrom(_policy_message(policy))
        apply = self._partitions.method(
            address, APPLY_EVENTS, pb.ApplyEventsRequest.SerializeToString, pb.ApplyEventsResponse.FromString
        )
        try:
            reply = await apply(request, metadata=call.outgoing_metadata(), timeout=_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            details = error_details(error)
            if details.code == grpc.StatusCode.UNAVAILABLE or details.reason == SLOT_MOVED:
                raise SlotMoved(()) from error
            raise _relayed(details, positions) from error
        totals = reply.totals
        return IngestTotals(
            inserted=totals.accepted,
            duplicates=totals.duplicates,
            customers_created=totals.customers_created,
            customers_updated=totals.customers_updated,
            reassigned=totals.reassigned,
            late=totals.late,
            condition_changes=totals.condition_changes,
        )

    async def reevaluate(self, call: CallContext, address: str, customer_ids: list[str]) -> int:
        """Asks the owner of these customers to decide their live condition segments again."""
        reevaluate = self._partitions.method(
            address,
            REEVALUATE_CUSTOMERS,
            pb.ReevaluateCustomersRequest.SerializeToString,
            pb.ReevaluateCustomersResponse.FromString,
        )
        request = pb.ReevaluateCustomersRequest(customer_ids=customer_ids)
        reply = await reevaluate(request, metadata=call.outgoing_metadata(), timeout=_TIMEOUT_SECONDS)
        return reply.condition_changes


def _event_message(event: EventInput) -> pb.BehaviourEvent:
    message = pb.BehaviourEvent(
        id=event.id,
        customer_id=event.customer_id,
        type=event.type,  # type: ignore[arg-type]  # checked against the enum's values already
        item_id=event.item_id,
        amount=event.amount,
        quantity=event.quantity,
    )
    if event.time is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(event.time)
        message.time.CopyFrom(stamp)
    return message


def _policy_message(policy: PolicyInput) -> common_pb2.RecordPolicy:
    return common_pb2.RecordPolicy(
        data_class=data_class_message(policy.data_class) if policy.data_class is not None else 0,  # type: ignore[arg-type]
        consented_purposes=sorted(policy.consented_purposes),
        source=policy.source,
        subject_id=policy.subject_id,
    )


def _relayed(details: ErrorDetails, positions: Sequence[int]) -> MatchaError:
    """The owner's refusal as this replica's own, its `events[i]` paths renumbered to the caller's message."""

    def renumbered(path: str) -> str:
        match = _EVENT_INDEX.match(path)
        if match is None or int(match[1]) >= len(positions):
            return path
        return f"events[{positions[int(match[1])]}]" + path[match.end() :]

    relayed_error = MatchaError(
        details.message,
        violations=[FieldViolation(renumbered(path), text) for path, text in details.field_violations.items()],
        reason=details.reason or None,
        metadata=details.metadata,
        retry_after_seconds=details.retry_after_seconds,
    )
    relayed_error.code = details.code
    return relayed_error
