"""Delivery of the outbox: run signals to the conductor, publications to their sinks.

Decisions and publications only write outbox rows (in their own transaction); the
dispatcher delivers them afterwards, retrying with exponential backoff, so a decision
never depends on the conductor or a sink being up. A delivery is retried until its
receiver refuses it for good or its maximum age passes: review does not know a run's
deadline, the conductor does, and answers a signal to a run failed at its deadline
with a refusal no retry changes (RUN_FINISHED); the maximum age bounds the retries
when the conductor cannot be reached at all. A FAILED delivery can be queued again
by hand (Redeliver). Every receiver is idempotent on the
delivery's key (the conductor accepts a signal key once per run, the file sink names its
file after the publication, the webhook gets an Idempotency-Key header), so a delivery
retried after an ambiguous failure is harmless.
"""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
from google.protobuf import struct_pb2
from opentelemetry.sdk.trace import TracerProvider

from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.review.records import OutboxEntry
from matcha.review.store import RUN_SIGNAL, ReviewStore
from matcha.review.tenant_channels import SAFE_TENANT, NoServiceToken, TenantChannels
from matcha.runtime import governance as gov
from matcha.runtime.channels import PLAINTEXT, Transport
from matcha.runtime.retry import Backoff

logger = logging.getLogger(__name__)

# The conductor's answers that no retry can change.
PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
SIGNAL_PURPOSE_FALLBACK = "review"


class DeliveryFailed(Exception):
    """One failed attempt; `permanent` ends the retries."""

    def __init__(self, code: grpc.StatusCode, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


Deliver = Callable[[OutboxEntry], Awaitable[None]]


class ConductorSignaller:
    """Signals conductor runs with a service token of the item's tenant."""

    def __init__(
        self,
        address: str,
        tokens_dir: Path,
        *,
        timeout_seconds: float,
        tracer_provider: TracerProvider | None,
        transport: Transport = PLAINTEXT,
    ) -> None:
        self._channels = TenantChannels(address, tokens_dir, tracer_provider=tracer_provider, transport=transport)
        self._timeout = timeout_seconds

    async def deliver(self, entry: OutboxEntry) -> None:
        try:
            channel = await self._channels.channel(entry.tenant)
        except NoServiceToken as error:
            code = grpc.StatusCode.FAILED_PRECONDITION if error.permanent else grpc.StatusCode.UNAUTHENTICATED
            raise DeliveryFailed(code, error.message, permanent=error.permanent) from None
        stub = conductor_pb2_grpc.ConductorServiceStub(channel)
        payload = struct_pb2.Struct()
        payload.update(entry.payload)
        metadata = (
            (gov.DATA_CLASS_HEADER, gov.DataClass(entry.data_class).name),
            (gov.PURPOSE_HEADER, entry.purpose or SIGNAL_PURPOSE_FALLBACK),
        )
        try:
            reply = await stub.Signal(
                conductor_pb2.SignalRequest(
                    run_id=entry.destination, key=entry.key, payload=payload, capability=entry.capability
                ),
                metadata=metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                await self._channels.drop(entry.tenant)
            raise DeliveryFailed(
                error.code(), error.details() or error.code().name, permanent=error.code() in PERMANENT_CODES
            ) from None
        logger.info(
            "run signalled",
            extra={
                "run_id": entry.destination,
                "item_id": entry.item_id,
                "disposition": conductor_pb2.SignalDisposition.Name(reply.disposition),
            },
        )

    async def close(self) -> None:
        await self._channels.close()


class FileSink:
    """Writes each publication to `<directory>/<tenant>/<item id>.json`, atomically."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def deliver(self, entry: OutboxEntry) -> None:
        await asyncio.to_thread(self._write, entry)

    async def retract(self, entry: OutboxEntry) -> None:
        """Takes back what a delivery wrote (its item was erased while it was being delivered)."""
        await self.forget(entry.tenant, [entry.item_id])

    async def written(self, tenant: str, item_ids: list[str]) -> dict[str, tuple[str, dict]]:
        """What the sink wrote for these items: by item id, the file's path under the directory and its document."""
        return await asyncio.to_thread(self._read, tenant, item_ids)

    async def forget(self, tenant: str, item_ids: list[str]) -> int:
        """Deletes the files written for these items, an interrupted write's partial file included."""
        return await asyncio.to_thread(self._delete, tenant, item_ids)

    def _read(self, tenant: str, item_ids: list[str]) -> dict[str, tuple[str, dict]]:
        if not SAFE_TENANT.match(tenant):
            return {}
        found = {}
        for item_id in item_ids:
            path = self._directory / tenant / f"{item_id}.json"
            with contextlib.suppress(FileNotFoundError):
                found[item_id] = (str(path.relative_to(self._directory)), json.loads(path.read_text()))
        return found

    def _delete(self, tenant: str, item_ids: list[str]) -> int:
        if not SAFE_TENANT.match(tenant):
            return 0
        folder = self._directory / tenant
        deleted = 0
        for item_id in item_ids:
            for path in [folder / f"{item_id}.json", *folder.glob(f".{item_id}.*.tmp")]:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    deleted += 1
        return deleted

    def _write(self, entry: OutboxEntry) -> None:
        if not SAFE_TENANT.match(entry.tenant):
            raise DeliveryFailed(
                grpc.StatusCode.FAILED_PRECONDITION, f"tenant {entry.tenant!r} cannot name a directory", permanent=True
            )
        folder = self._directory / entry.tenant
        target = folder / f"{entry.item_id}.json"
        # Unique per write: replicas sharing the volume all run as pid 1 in their containers.
        partial = folder / f".{entry.item_id}.{uuid.uuid4().hex}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(entry.payload, indent=2, sort_keys=True, ensure_ascii=False))
            partial.replace(target)
        except OSError as error:
            raise DeliveryFailed(grpc.StatusCode.UNAVAILABLE, f"file sink: {error.strerror}", permanent=False) from None


class WebhookSink:
    """POSTs each publication as JSON; 2xx is delivered, 408/429/5xx and network errors are retried."""

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self._url = url
        self._client = httpx.AsyncClient(timeout=timeout_seconds)

    async def deliver(self, entry: OutboxEntry) -> None:
        try:
            response = await self._client.post(
                self._url,
                json=entry.payload,
                headers={"Idempotency-Key": entry.key, "X-Matcha-Tenant": entry.tenant},
            )
        except httpx.HTTPError as error:
            raise DeliveryFailed(
                grpc.StatusCode.UNAVAILABLE, f"webhook unreachable: {type(error).__name__}", permanent=False
            ) from None
        if response.is_success:
            return
        retryable = response.status_code in (408, 429) or response.status_code >= 500
        raise DeliveryFailed(
            grpc.StatusCode.UNAVAILABLE if retryable else grpc.StatusCode.FAILED_PRECONDITION,
            f"webhook answered HTTP {response.status_code}",
            permanent=not retryable,
        )

    async def close(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class RetryPolicy:
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    # The longest run deadline: a signal outliving it has no run left to resume.
    max_age_seconds: float = 7 * 24 * 3600.0

    def backoff(self, attempts_made: int) -> float:
        return Backoff(self.initial_backoff_seconds, self.max_backoff_seconds).delay(attempts_made)

    def exhausted(self, entry: OutboxEntry) -> bool:
        """True when the delivery's retry window is over."""
        if entry.retry_from is None:
            return False
        return (datetime.now(UTC) - entry.retry_from).total_seconds() >= self.max_age_seconds


class OutboxDispatcher:
    """Delivers due outbox rows until stopped; woken at once by new rows (this or another replica).

    A replica only takes the deliveries it is configured for (no signaller: no run signals), so
    replicas configured differently never count failed attempts on each other's deliveries.
    """

    def __init__(
        self,
        store: ReviewStore,
        signaller: Deliver | None,
        sinks: dict[str, Deliver],
        policy: RetryPolicy,
        *,
        poll_seconds: float,
        lease_seconds: float = 60.0,
        batch_size: int = 50,
        retractors: dict[str, Deliver] | None = None,
    ) -> None:
        """`lease_seconds` must outlive an attempt (its timeouts included), or another replica attempts it too."""
        self._store = store
        self._signaller = signaller
        self._sinks = sinks
        # Per sink, how to take back a delivery whose item was erased while it was delivered.
        self._retractors = retractors or {}
        self._policy = policy
        self._poll = poll_seconds
        self._lease = lease_seconds
        self._batch = batch_size
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace_seconds: float) -> None:
        """Lets attempts in flight finish (so their leases do not delay the next replica), then stops."""
        if self._task is None:
            return
        self._stopping.set()
        self._store.outbox_ready.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def deliver_due(self) -> int:
        """One pass over what is due now; returns how many deliveries were attempted."""
        entries = await self._store.lease_due(
            self._batch, lease_seconds=self._lease, signals=self._signaller is not None, sinks=list(self._sinks)
        )
        await asyncio.gather(*(self._attempt(entry) for entry in entries))
        return len(entries)

    async def _attempt(self, entry: OutboxEntry) -> None:
        deliver = self._signaller if entry.kind == RUN_SIGNAL else self._sinks.get(entry.destination)
        try:
            if deliver is None:
                raise DeliveryFailed(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"sink {entry.destination!r} is not configured",
                    permanent=False,
                )
            await deliver(entry)
        except DeliveryFailed as failure:
            attempts = entry.attempts + 1
            final = failure.permanent or self._policy.exhausted(entry)
            logger.warning(
                "delivery failed",
                extra={
                    "kind": entry.kind,
                    "destination": entry.destination,
                    "item_id": entry.item_id,
                    "attempts": attempts,
                    "code": failure.code.name,
                    "final": final,
                },
            )
            await self._store.record_attempt(
                entry,
                state="FAILED" if final else "PENDING",
                error_code=failure.code.value[0],
                error=failure.message,
                retry_in_seconds=0.0 if final else self._policy.backoff(attempts),
            )
        except Exception:
            logger.exception("delivery raised unexpectedly", extra={"kind": entry.kind, "item_id": entry.item_id})
            attempts = entry.attempts + 1
            await self._store.record_attempt(
                entry,
                state="FAILED" if self._policy.exhausted(entry) else "PENDING",
                error_code=grpc.StatusCode.INTERNAL.value[0],
                error="internal error delivering",
                retry_in_seconds=self._policy.backoff(attempts),
            )
        else:
            recorded = await self._store.record_attempt(entry, state="DELIVERED")
            retract = self._retractors.get(entry.destination) if entry.kind != RUN_SIGNAL else None
            if not recorded and retract is not None:
                await retract(entry)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._store.outbox_ready.clear()
            try:
                attempted = await self.deliver_due()
                if attempted:
                    continue
                due_in = await self._store.next_due_in(signals=self._signaller is not None, sinks=list(self._sinks))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox pass failed; retrying")
                due_in = None
            wait = self._poll if due_in is None else min(self._poll, due_in)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._store.outbox_ready.wait(), wait)
