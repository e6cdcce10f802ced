"""Clicks and conversions fed on to segmentation as behaviour events, so customers move between segments live;
unsubscriptions fed on as unsubscriptions from the experiment's channel, so later publications leave them out.

The events to feed are written by the statement that stores them (migration 0019: a transactional outbox);
the feed reads a batch of one tenant under row locks, sends it in one `IngestEvents` message and removes it
in the same transaction once segmentation acknowledged it. Segmentation deduplicates events by id, so a
batch sent again after an ambiguous failure changes nothing there. An event segmentation refuses for good
(its customer unknown or without consent there) is marked refused with the reason and never retried; the
rest of its batch goes on.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import grpc
from asyncpg.pool import PoolConnectionProxy

from matcha.review.audiences import channel_name
from matcha.review.tenant_channels import NoServiceToken, TenantChannels
from matcha.runtime import governance as gov
from matcha.runtime.client import error_details
from matcha.runtime.database import Database
from matcha.runtime.retry import Backoff
from matcha.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc

logger = logging.getLogger(__name__)

# Segmentation's event ids are the tenant's; this prefix keeps outcome ids from meeting other sources' ids.
EVENT_ID_PREFIX = "outcome:"
EVENT_TYPES = {
    "CLICKED": segmentation_pb2.EVENT_TYPE_CLICK,
    "CONVERTED": segmentation_pb2.EVENT_TYPE_PURCHASE,
}
UNSUBSCRIBED = "UNSUBSCRIBED"
# Answers about the events themselves, which no retry changes.
REFUSALS = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION}
)

_PENDING = """
SELECT f.event_id, e.customer_id, e.outcome, e.value, e.at, x.purpose, x.data_class,
       -- An unsubscription is from the channel of the variant the customer was sent (the first variant's for a
       -- customer held out).
       CASE WHEN e.outcome = 'UNSUBSCRIBED' THEN COALESCE((
           SELECT i.channel
           FROM review_experiment_variants v
           LEFT JOIN review_publications p ON p.id::text = v.publication_id
           JOIN review_items i ON i.id::text = COALESCE(v.item_id, p.item_id::text)
           WHERE v.tenant = e.tenant AND v.experiment_id = e.experiment_id
           ORDER BY v.label IS NOT DISTINCT FROM (
               SELECT m.arm FROM review_experiment_members m
               WHERE m.tenant = e.tenant AND m.experiment_id = e.experiment_id AND m.customer_id = e.customer_id
           ) DESC, v.position
           LIMIT 1
       ), x.channel) ELSE '' END AS channel
FROM review_outcome_feed f
JOIN review_outcome_events e ON e.tenant = f.tenant AND e.event_id = f.event_id
JOIN review_experiments x ON x.tenant = e.tenant AND x.id = e.experiment_id
WHERE f.tenant = $1 AND f.refused IS NULL
ORDER BY e.at, f.event_id
LIMIT $2
FOR UPDATE OF f SKIP LOCKED
"""


@dataclass(frozen=True)
class PendingEvent:
    event_id: str
    customer_id: str
    outcome: str
    value: float
    at: datetime
    purpose: str
    data_class: int
    channel: str

    def behaviour(self) -> segmentation_pb2.BehaviourEvent:
        event = segmentation_pb2.BehaviourEvent(
            id=EVENT_ID_PREFIX + self.event_id,
            customer_id=self.customer_id,
            type=EVENT_TYPES[self.outcome],
            amount=self.value if self.outcome == "CONVERTED" else 0.0,
        )
        event.time.FromDatetime(self.at)
        return event


class SegmentationUnavailable(Exception):
    """A failure a later attempt may not meet (segmentation down, no token yet)."""


class OutcomeFeed:
    def __init__(
        self,
        database: Database,
        channels: TenantChannels,
        *,
        batch_size: int,
        poll_seconds: float,
        timeout_seconds: float,
        max_backoff_seconds: float,
    ) -> None:
        self._database = database
        self._channels = channels
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._max_backoff = max_backoff_seconds
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._channels.close()

    async def _run(self) -> None:
        backoff, failures = Backoff(self._poll, self._max_backoff), 0
        while True:
            try:
                fed = await self.feed_once()
                failures = 0
            except SegmentationUnavailable as error:
                logger.warning("outcome feed waits for segmentation", extra={"reason": str(error)})
                fed, failures = 0, failures + 1
            except Exception:
                logger.exception("outcome feed failed; retrying")
                fed, failures = 0, failures + 1
            if not fed:
                await asyncio.sleep(backoff.delay(failures) if failures else self._poll)

    async def feed_once(self) -> int:
        """Feeds one batch per tenant with pending events; returns the events acknowledged or refused. A tenant
        whose events cannot go yet (no token, segmentation down) does not hold back the others."""
        pending = "SELECT DISTINCT tenant FROM review_outcome_feed WHERE refused IS NULL"
        done, waiting = 0, []
        for (tenant,) in await self._database.pool.fetch(pending):
            try:
                done += await self._feed_tenant(tenant)
            except SegmentationUnavailable as error:
                waiting.append(f"{tenant}: {error}")
        if waiting and not done:
            raise SegmentationUnavailable("; ".join(waiting))
        return done

    async def _feed_tenant(self, tenant: str) -> int:
        async with self._database.pool.acquire() as connection, connection.transaction():
            events = [PendingEvent(*row) for row in await connection.fetch(_PENDING, tenant, self._batch_size)]
            behaviour = [event for event in events if event.outcome in EVENT_TYPES]
            refused: dict[str, str] = {}
            for purpose, data_class in sorted({(event.purpose, event.data_class) for event in behaviour}):
                group = [e for e in behaviour if (e.purpose, e.data_class) == (purpose, data_class)]
                refused.update(await self._send(tenant, purpose, gov.DataClass(data_class), group))
            for event in events:
                if event.outcome == UNSUBSCRIBED:
                    refused.update(await self._unsubscribe(tenant, event))
            await _settle(connection, tenant, [e.event_id for e in events], refused)
        return len(events)

    async def _send(
        self, tenant: str, purpose: str, data_class: gov.DataClass, events: list[PendingEvent]
    ) -> dict[str, str]:
        """Sends the events as one message; returns the refused ones with the reason. An answer about the
        events that names none (consent) is asked again event by event, so one event cannot hold back others."""
        try:
            await self._ingest(tenant, purpose, data_class, events)
            return {}
        except grpc.aio.AioRpcError as error:
            if error.code() not in REFUSALS:
                raise await self._unavailable(tenant, error) from None
            details = error_details(error)
        named = {
            events[index].event_id: f"{path}: {reason}"
            for path, reason in details.field_violations.items()
            if (index := _event_index(path)) is not None and index < len(events)
        }
        if named:
            rest = [event for event in events if event.event_id not in named]
            return named | (await self._send(tenant, purpose, data_class, rest) if rest else {})
        if len(events) == 1:
            return {events[0].event_id: f"{details.code.name}: {details.message}"}
        refused: dict[str, str] = {}
        for event in events:
            refused.update(await self._send(tenant, purpose, data_class, [event]))
        return refused

    async def _unsubscribe(self, tenant: str, event: PendingEvent) -> dict[str, str]:
        """Unsubscribes the customer from the experiment's channel; returns the refusal, if segmentation refused."""
        if not event.channel:
            return {event.event_id: "the experiment names no channel to unsubscribe from"}
        stub = await self._stub(tenant)
        try:
            await stub.Unsubscribe(
                segmentation_pb2.UnsubscribeRequest(customer_id=event.customer_id, channel=channel_name(event.channel)),
                metadata=_metadata(event.purpose, gov.DataClass(event.data_class)),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in REFUSALS or error.code() == grpc.StatusCode.NOT_FOUND:
                return {event.event_id: f"{error.code().name}: {error.details()}"}
            raise await self._unavailable(tenant, error) from None
        return {}

    async def _unavailable(self, tenant: str, error: grpc.aio.AioRpcError) -> SegmentationUnavailable:
        """A failure a later attempt may not meet; an unreachable segmentation gets a fresh connection then."""
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            await self._channels.drop(tenant)
        return SegmentationUnavailable(f"{error.code().name}: {error.details()}")

    async def _stub(self, tenant: str) -> segmentation_pb2_grpc.SegmentationServiceStub:
        try:
            return segmentation_pb2_grpc.SegmentationServiceStub(await self._channels.channel(tenant))
        except NoServiceToken as error:
            raise SegmentationUnavailable(error.message) from None

    async def _ingest(self, tenant: str, purpose: str, data_class: gov.DataClass, events: list[PendingEvent]) -> None:
        stub = await self._stub(tenant)
        request = segmentation_pb2.IngestEventsRequest(events=[event.behaviour() for event in events])
        await stub.IngestEvents(
            iter([request]),
            metadata=_metadata(purpose, data_class),
            timeout=self._timeout,
        )


def _metadata(purpose: str, data_class: gov.DataClass) -> tuple[tuple[str, str], ...]:
    """The experiment's purpose and class, which segmentation checks its customers' consent against."""
    return ((gov.PURPOSE_HEADER, purpose), (gov.DATA_CLASS_HEADER, data_class.name))


def _event_index(path: str) -> int | None:
    """`events[3].customer_id` -> 3."""
    head, _, rest = path.partition("[")
    number, _, _ = rest.partition("]")
    return int(number) if head == "events" and number.isdigit() else None


async def _settle(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, event_ids: list[str], refused: dict[str, str]
) -> None:
    fed = [event_id for event_id in event_ids if event_id not in refused]
    if fed:
        await connection.execute(
            "DELETE FROM review_outcome_feed WHERE tenant = $1 AND event_id = ANY($2::text[])", tenant, fed
        )
    if refused:
        logger.warning("segmentation refused outcome events", extra={"tenant": tenant, "refused": len(refused)})
        await connection.execute(
            """UPDATE review_outcome_feed f SET refused = r.reason
               FROM unnest($2::text[], $3::text[]) AS r(event_id, reason)
               WHERE f.tenant = $1 AND f.event_id = r.event_id""",
            tenant,
            list(refused),
            list(refused.values()),
        )
