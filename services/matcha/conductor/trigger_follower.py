"""Follows the alerts of every active alert trigger, one conductor process per trigger, by lease.

Every `lease_seconds / 3` (and when a trigger is created) the follower renews its leases and takes the active
triggers whose lease is free or expired, as the classification service's scheduler takes watches. For each
trigger it holds, one task reads the watch's alerts (`WatchAlerts`, after the trigger's cursor) with a workload
token of the trigger's creator for purpose `listening`, and hands each to the core, which starts its run and
moves the cursor in one transaction fenced by the lease. A process that stops releases its leases; one that
dies loses them when they expire, and another resumes after the cursor: an alert handled is never handled again,
and one whose run was created but whose cursor was not (the process died in between) finds its run by its key.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format
from opentelemetry import trace

from matcha.conductor.alert_triggers import WATCH_ALERTS_METHOD, WATCH_NOT_FOUND, alert_sequence
from matcha.conductor.catalog import CapabilityCatalog
from matcha.conductor.core import ConductorCore
from matcha.conductor.engine import RunGrant
from matcha.conductor.invoker import DynamicInvoker
from matcha.conductor.keys import ConductorKeys
from matcha.conductor.records import AlertTriggerRow
from matcha.conductor.store import TRIGGERS_CHANNEL, ConductorStore, TriggerLost, revoked_reason
from matcha.runtime import governance as gov
from matcha.runtime.auth import WorkloadTokenIssuer
from matcha.runtime.client import error_details
from matcha.runtime.retry import Backoff
from matcha.runtime.tracing import DATA_CLASS_ATTRIBUTE, PURPOSE_ATTRIBUTE, TENANT_ATTRIBUTE

logger = logging.getLogger(__name__)
# The classification service refused the stream for good: the watch is gone, or the creator may not read it.
FINAL_CODES = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT}
)
TRIGGER_ATTRIBUTE = "matcha.alert_trigger"
ALERT_ATTRIBUTE = "matcha.alert.sequence"


def refusal_reason(trigger: AlertTriggerRow, error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """Why a trigger stops when the classification service refuses its alerts for good, in the shape of a run's
    error: WATCH_DELETED when its watch is gone (a stream ends so when the watch is deleted), ALERTS_REFUSED
    otherwise (the creator may no longer read it)."""
    details = error_details(error)
    if details.reason == WATCH_NOT_FOUND:
        return {
            "code": error.code().value[0],
            "message": f"the watch {trigger.spec.watch!r} was deleted",
            "reason": "WATCH_DELETED",
            "metadata": {"watch": trigger.spec.watch},
        }
    return {
        "code": error.code().value[0],
        "message": f"the classification service refused the alerts: {details.message}",
        "reason": "ALERTS_REFUSED",
        "metadata": {"watch": trigger.spec.watch, **({"refusal": details.reason} if details.reason else {})},
    }


class AlertTriggerFollower:
    def __init__(
        self,
        core: ConductorCore,
        store: ConductorStore,
        catalog: CapabilityCatalog,
        invoker: DynamicInvoker,
        keys: ConductorKeys,
        workload: WorkloadTokenIssuer,
        tracer: trace.Tracer,
        *,
        lease_seconds: float,
        backoff: Backoff | None = None,
    ) -> None:
        self._core = core
        self._store = store
        self._catalog = catalog
        self._invoker = invoker
        self._keys = keys
        self._workload = workload
        self._tracer = tracer
        self._lease = lease_seconds
        self._backoff = backoff or Backoff(1.0, 30.0)
        self.owner = f"conductor-triggers-{uuid.uuid4().hex[:12]}"
        self._followed: dict[str, asyncio.Task] = {}
        self._claiming: asyncio.Task | None = None

    async def start(self) -> None:
        self._claiming = asyncio.create_task(self._claim_loop(), name="claim alert triggers")

    async def stop(self) -> None:
        tasks = [task for task in (self._claiming, *self._followed.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._followed.clear()
        with contextlib.suppress(Exception):
            await self._store.release_triggers(self.owner)

    async def _claim_loop(self) -> None:
        while True:
            with self._store.bus.subscribe(TRIGGERS_CHANNEL) as woken:
                try:
                    held: dict[str, AlertTriggerRow] | None = {
                        row.id: row for row in await self._store.claim_triggers(self.owner, self._lease)
                    }
                except Exception:
                    logger.exception("claiming alert triggers failed")
                    held = None
                if held is not None:
                    for trigger_id in list(self._followed):
                        if trigger_id not in held:  # deleted, stopped, or taken over after our lease expired
                            self._followed.pop(trigger_id).cancel()
                    for trigger_id, row in held.items():
                        task = self._followed.get(trigger_id)
                        if task is None or task.done():
                            self._followed[trigger_id] = asyncio.create_task(
                                self._follow(row), name=f"alert trigger {row.spec.name}"
                            )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self._lease / 3)

    async def _follow(self, trigger: AlertTriggerRow) -> None:
        failures = 0
        while True:
            try:
                # No token is minted for a revoked creator, and the trigger says why it stopped.
                revocation = await self._store.revocation(trigger.tenant, trigger.creator)
                if revocation is not None:
                    await self._store.stop_trigger(trigger.id, revoked_reason(revocation))
                    return
                async for alert in self._alerts(trigger):
                    failures = 0
                    trigger = await self._handle(trigger, alert)
                    if trigger.state != "ACTIVE":
                        logger.info("alert trigger stopped", extra={"trigger": trigger.spec.name})
                        return
            except TriggerLost:
                return
            except grpc.aio.AioRpcError as error:
                if error.code() in FINAL_CODES:
                    await self._store.stop_trigger(trigger.id, refusal_reason(trigger, error))
                    logger.info("alert trigger stopped", extra={"trigger": trigger.spec.name})
                    return
                logger.warning(
                    "following alerts failed", extra={"trigger": trigger.spec.name, "code": error.code().name}
                )
            except Exception:
                logger.exception("following alerts failed", extra={"trigger": trigger.spec.name})
            failures += 1
            await asyncio.sleep(self._backoff.delay(failures))

    async def _handle(self, trigger: AlertTriggerRow, alert: dict[str, Any]) -> AlertTriggerRow:
        # The alert's run continues this span's trace: one trace from the alert to the run's last hop.
        with self._tracer.start_as_current_span("alert trigger", kind=trace.SpanKind.CONSUMER) as span:
            span.set_attributes(
                {
                    TENANT_ATTRIBUTE: trigger.tenant,
                    PURPOSE_ATTRIBUTE: trigger.purpose,
                    DATA_CLASS_ATTRIBUTE: trigger.data_class,
                    TRIGGER_ATTRIBUTE: trigger.spec.name,
                    ALERT_ATTRIBUTE: alert_sequence(alert),
                }
            )
            return await self._core.handle_alert(trigger, alert, self.owner)

    async def _alerts(self, trigger: AlertTriggerRow) -> AsyncIterator[dict[str, Any]]:
        """The watch's alerts after the trigger's cursor, then live ones, as proto JSON. The cursor starts at the
        watch's latest alert when the trigger was created; at 0 (the watch had none), every stored alert is one
        raised since."""
        method = self._catalog.method(WATCH_ALERTS_METHOD)
        assert method is not None, "the classification contract is loaded with the mesh's"
        grant = RunGrant.opened(self._keys.open(trigger.credential), {})
        token = self._workload.mint(
            subject=grant.subject,
            tenant=trigger.tenant,
            roles=list(grant.roles),
            run_id=f"alert-trigger/{trigger.id}",
            purpose=trigger.purpose,
        )
        metadata = gov.outgoing_metadata(
            token, purpose=trigger.purpose, data_class=gov.DataClass[trigger.data_class], tenant=trigger.tenant
        )
        request = json_format.ParseDict(
            {
                "watch": trigger.spec.watch,
                "after_sequence": str(trigger.last_sequence),
                "from_start": trigger.last_sequence == 0,
            },
            method.new_request(),
        )
        call = self._invoker.stream(method, request, metadata=metadata)
        try:
            async for reply in call:
                yield json_format.MessageToDict(reply.alert, preserving_proto_field_name=True)
        finally:
            call.cancel()
