"""The conductor's core: plans, runs, signals, the audit ledger and erasure, in plain Python.

It never touches the conductor's own generated code; the servicer converts at the edge.
Capability requests are built from descriptors by the engine.
"""

import asyncio
import contextlib
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2
from opentelemetry import trace

from matcha.conductor import alert_triggers, plans
from matcha.conductor.catalog import Capability, CapabilityCatalog, MethodInfo
from matcha.conductor.engine import RunEngine, RunGrant
from matcha.conductor.keys import ConductorKeys
from matcha.conductor.records import (
    AlertTriggerRow,
    AlertTriggerSpec,
    NewRun,
    PlanRow,
    Revocation,
    RunFilter,
    RunRow,
    StoredEvent,
)
from matcha.conductor.store import TERMINAL_STATES, ConductorStore
from matcha.runtime import governance as gov
from matcha.runtime import page_tokens, roles
from matcha.runtime.access import AccessLedgerReader, AccessRecord
from matcha.runtime.chain import ChainedRecord, ChainVerifier, Verification
from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, require_describer
from matcha.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MatchaError,
    NotFound,
    PermissionDenied,
    Unavailable,
    Violations,
)
from matcha.runtime.governance import CallContext, DataClass, Principal
from matcha.runtime.roles import ERASURE_PURPOSE

AUDIT_ROLES = ("auditor", "admin")
DATA_MAP_MAX_ACCESSES = 1000
ERASURE_ROLE = "admin"
# The purpose the conductor asks the stores under for a data map (an access request), as the ledgers record it.
DATA_MAP_PURPOSE = "data-map"
CONDUCTOR_STORE = "matcha.conductor.v1.ConductorService"
MAX_RUN_DEADLINE_SECONDS = 7 * 24 * 3600
MAX_LABELS = 16
MAX_SIGNAL_BYTES = 1024 * 1024
TERMINAL_EVENTS = frozenset({"RUN_SUCCEEDED", "RUN_FAILED", "RUN_CANCELLED"})
WATCH_POLL_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 1.0
SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVING)


@dataclass(frozen=True)
class StoredPlan:
    row: PlanRow
    plan: plans.PlanDef


@dataclass(frozen=True)
class StoreErasure:
    store: str
    erased_records: int
    code: grpc.StatusCode
    message: str = ""
    # Per kind of record ("documents": 2), adding up to `erased_records`.
    erased_by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreDataMap:
    """What one store answered for a data subject, or why it could not."""

    store: str
    code: grpc.StatusCode
    message: str = ""
    holdings: list[SubjectHolding] = field(default_factory=list)


def _page(token: str, listing: str) -> int:
    """The position a page token of `listing` stands for: an offset, or the last sequence seen for a ledger."""
    violations = Violations()
    position = page_tokens.decode(violations, token, listing)
    if position is not None and not (isinstance(position, int) and position >= 0):
        violations.add("page_token", page_tokens.INVALID)
    violations.raise_if_any("bad page token")
    return position or 0


def _require_subject(subject: str) -> None:
    if not subject or len(subject) > 256:
        raise InvalidArgument(
            "subject is required (at most 256 characters)",
            violations=[_violation("subject", "required, at most 256 characters")],
        )


def _require_listening(call: CallContext) -> None:
    """Alerts show posts collected for listening only: a trigger, and the runs it starts, serve that purpose."""
    if call.purpose != alert_triggers.LISTENING_PURPOSE:
        raise PermissionDenied(
            f"alert triggers serve the purpose {alert_triggers.LISTENING_PURPOSE!r}, not {call.purpose!r}",
            reason="PURPOSE_MISMATCH",
            metadata={"purpose": call.purpose, "expected": alert_triggers.LISTENING_PURPOSE},
        )


def _violation(field_path: str, description: str) -> FieldViolation:
    return FieldViolation(field_path, description)


def next_page_token(listing: str, offset: int, count: int, limit: int) -> str:
    return page_tokens.encode(listing, offset + limit) if count == limit else ""


def _page_size(value: int, default: int, maximum: int) -> int:
    if value < 0 or value > maximum:
        raise InvalidArgument("bad page size", violations=[_violation("page_size", f"1 to {maximum}")])
    return value or default


class AuditLedger(StrEnum):
    HOPS = "HOPS"
    ACCESSES = "ACCESSES"


@dataclass(frozen=True)
class AuditQuery:
    """Filters of ListAudit; `subject_id`, `collection` and `principal` apply to the accesses ledger, `run_id`
    to the hops ledger."""

    ledger: AuditLedger = AuditLedger.HOPS
    run_id: str = ""
    start: datetime | None = None
    end: datetime | None = None
    target: str = ""
    decision: str = ""
    subject_id: str = ""
    collection: str = ""
    principal: str = ""


class ConductorCore:
    def __init__(
        self,
        store: ConductorStore,
        catalog: CapabilityCatalog,
        engine: RunEngine,
        keys: ConductorKeys,
        accesses: AccessLedgerReader,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._engine = engine
        self._keys = keys
        self._accesses = accesses
        self._validator = plans.PlanValidator(catalog)

    # -- plans -----------------------------------------------------------------------------------

    async def register_plan(
        self,
        call: CallContext,
        *,
        document: str | None,
        spec: dict | None,
        plan_format: str | None,
        validate_only: bool,
    ) -> tuple[StoredPlan, bool]:
        if document is not None:
            content, source_format = plans.parse_document(document, plan_format)
            source = document
        elif spec is not None:
            content, source_format = spec, "JSON"
        else:
            raise InvalidArgument(
                "a plan is required", violations=[_violation("document", "give a document or a spec")]
            )
        plan = self._validator.validate(content)
        if document is None:
            source = plans.render_document(plan.spec, "JSON")
        if validate_only:
            row = PlanRow(
                plan.name, 0, plan.spec, source, source_format, plan.sha256, call.principal.subject, datetime.now(UTC)
            )
            return StoredPlan(row, plan), False
        row, created = await self._store.register_plan(
            call.tenant, plan.spec, source, source_format, plan.sha256, call.principal.subject
        )
        return StoredPlan(row, plan), created

    async def get_plan(self, call: CallContext, name: str, version: int = 0) -> StoredPlan:
        row = await self._store.get_plan(call.tenant, name, version)
        if row is None:
            what = f"plan {name!r}" + (f" version {version}" if version else "")
            raise NotFound(
                f"{what} not found", reason="PLAN_NOT_FOUND", metadata={"name": name, "version": str(version)}
            )
        return StoredPlan(row, self._validator.validate(row.spec))

    async def load_plan(self, tenant: str, name: str, version: int) -> plans.PlanDef:
        row = await self._store.get_plan(tenant, name, version)
        if row is None:
            raise NotFound(f"plan {name!r} version {version} not found", reason="PLAN_NOT_FOUND")
        try:
            return self._validator.validate_stored(row.spec, row.sha256)
        except plans.PlanDigestMismatch as error:
            raise FailedPrecondition(str(error), reason="PLAN_DIGEST_MISMATCH") from None

    async def list_plans(
        self, call: CallContext, name: str, page_size: int, page_token: str
    ) -> tuple[list[PlanRow], str]:
        listing = page_tokens.listing_key("plans", name)
        limit, offset = _page_size(page_size, 50, 200), _page(page_token, listing)
        rows = await self._store.list_plans(call.tenant, name, limit, offset)
        return rows, next_page_token(listing, offset, len(rows), limit)

    async def export_plan(self, call: CallContext, name: str, version: int, plan_format: str) -> tuple[str, int]:
        stored = await self.get_plan(call, name, version)
        return plans.render_document(stored.row.spec, plan_format), stored.row.version

    # -- runs ------------------------------------------------------------------------------------

    async def start_run(
        self,
        call: CallContext,
        *,
        plan_name: str,
        plan_version: int,
        inputs: dict[str, Any],
        resume_from: str,
        labels: dict[str, str],
        deadline_seconds: float | None,
    ) -> RunRow:
        await self._refuse_revoked(call)
        violations = Violations()
        violations.check(len(labels) <= MAX_LABELS, "labels", f"at most {MAX_LABELS} labels")
        for key, value in labels.items():
            violations.check(
                0 < len(key) <= 63 and len(value) <= 63, f"labels.{key}", "keys and values up to 63 characters"
            )
        if deadline_seconds is not None:
            violations.check(
                0 < deadline_seconds <= MAX_RUN_DEADLINE_SECONDS, "deadline", "more than 0, at most 7 days"
            )
        completed_steps: dict[str, tuple[str, Any]] = {}
        completed_items: list[tuple[str, int, Any]] = []
        key_root = None
        if resume_from:
            violations.check(not inputs, "inputs", "a resumed run reuses the inputs of the run it resumes")
            violations.raise_if_any("run request has invalid fields")
            previous = await self._store.get_run(call.tenant, resume_from)
            if previous is None:
                raise NotFound(
                    f"run {resume_from!r} not found", reason="RUN_NOT_FOUND", metadata={"run_id": resume_from}
                )
            if previous.state not in ("FAILED", "CANCELLED"):
                raise FailedPrecondition(
                    f"run {resume_from} is {previous.state}; only FAILED or CANCELLED runs can be resumed",
                    reason="RUN_NOT_RESUMABLE",
                    metadata={"run_id": resume_from, "state": previous.state},
                )
            plan_name, plan_version, inputs = previous.plan_name, previous.plan_version, previous.inputs
            key_root = previous.key_root
            completed_steps = {
                step.step_id: (step.state, step.output)
                for step in previous.steps
                if step.state in ("SUCCEEDED", "SKIPPED")
            }
            _, items = await self._store.run_for_execution(previous.id)
            completed_items = [
                (step_id, index, output)
                for step_id, outputs in items.items()
                if step_id not in completed_steps
                for index, output in outputs.items()
            ]
        stored = await self._plan_for(call, plan_name, plan_version)
        plan = stored.plan
        resolved = inputs if resume_from else self._check_inputs(plan, inputs, violations)
        violations.raise_if_any("run request has invalid fields")
        deadline = datetime.now(UTC) + timedelta(seconds=deadline_seconds or plan.deadline_seconds)
        run_id, _ = await self._store.create_run(
            self._new_run(
                call,
                stored,
                resolved,
                labels=labels,
                deadline=deadline,
                start_key=call.idempotency_key or None,
                resumed_from=resume_from or None,
                key_root=key_root,
                completed_steps=completed_steps,
                completed_items=completed_items,
            )
        )
        return await self.get_run(call, run_id)

    async def _plan_for(self, call: CallContext, plan_name: str, plan_version: int) -> StoredPlan:
        """The plan version a run would start from, if the call's purpose may run it."""
        stored = await self.get_plan(call, plan_name, plan_version)
        plan = stored.plan
        if plan.purposes and call.purpose not in plan.purposes:
            raise PermissionDenied(
                f"plan {plan.name!r} may not run for purpose {call.purpose!r}",
                reason="PURPOSE_NOT_ALLOWED",
                metadata={"purpose": call.purpose, "allowed": ",".join(sorted(plan.purposes))},
            )
        return stored

    def _new_run(
        self, call: CallContext, stored: StoredPlan, inputs: dict[str, Any], *, deadline: datetime, **fields: Any
    ) -> NewRun:
        trace_id, trace_span_id = _trace_of_request()
        return NewRun(
            tenant=call.tenant,
            plan_name=stored.plan.name,
            plan_version=stored.row.version,
            inputs=inputs,
            context={
                "subject": call.principal.subject,
                "roles": sorted(call.principal.roles),
                "purpose": call.purpose,
                "data_class": call.data_class.name,
            },
            credential=self._keys.seal(
                RunGrant(call.principal.subject, tuple(sorted(call.principal.roles))).sealed_form()
            ),
            deadline=deadline,
            steps=[(step.id, step.call or "") for step in stored.plan.steps],
            trace_id=trace_id,
            trace_span_id=trace_span_id,
            **fields,
        )

    async def _refuse_revoked(self, call: CallContext) -> None:
        revocation = await self._store.revocation(call.tenant, call.principal.subject)
        if revocation is not None:
            raise PermissionDenied(
                f"principal {call.principal.subject!r} was revoked and starts no run",
                reason="PRINCIPAL_REVOKED",
                metadata={"subject": call.principal.subject, "revoked_by": revocation.revoked_by},
            )

    # -- alert triggers --------------------------------------------------------------------------

    async def create_trigger(self, call: CallContext, spec: AlertTriggerSpec) -> AlertTriggerRow:
        """Checks the creator may start the plan now (as StartRun would) and stores who they are: every run the
        trigger starts acts for them, with the roles they hold now."""
        # The role table admits analysts to methods it does not list: the operator's rule is kept here.
        call.require_role(roles.OPERATOR)
        _require_listening(call)
        await self._refuse_revoked(call)
        violations = Violations()
        alert_triggers.check_names(spec, violations)
        violations.raise_if_any("alert trigger has invalid fields")
        try:
            stored = await self._plan_for(call, spec.plan_name, spec.plan_version)
        except NotFound:
            which = "trigger.plan_version" if spec.plan_version else "trigger.plan_name"
            raise InvalidArgument(
                "alert trigger names an unknown plan",
                violations=[_violation(which, f"no plan {spec.plan_name!r} version {spec.plan_version or 'latest'}")],
            ) from None
        alert_triggers.check_against_plan(spec, stored.plan, violations)
        violations.raise_if_any("alert trigger has invalid fields")
        latest = await self._latest_alert(call, spec)
        grant = RunGrant(call.principal.subject, tuple(sorted(call.principal.roles)))
        row = await self._store.create_trigger(
            call.tenant,
            spec,
            purpose=call.purpose,
            data_class=call.data_class.name,
            creator=grant.subject,
            roles=list(grant.roles),
            credential=self._keys.seal(grant.sealed_form()),
            last_sequence=latest,
        )
        if row is None:
            raise AlreadyExists(
                f"alert trigger {spec.name!r} exists", reason="ALERT_TRIGGER_EXISTS", metadata={"name": spec.name}
            )
        return row

    async def _latest_alert(self, call: CallContext, spec: AlertTriggerSpec) -> int:
        """The latest alert of the watch (of every watch with all_watches) the creator can read, with their own
        token: the trigger starts after it. Refuses a watch that does not exist or that they cannot read."""
        method = self._catalog.method(alert_triggers.GET_WATCH_METHOD)
        listing = self._catalog.method(alert_triggers.LIST_WATCHES_METHOD)
        assert method is not None and listing is not None, "the classification contract is loaded with the mesh's"
        if not self._catalog.capability(method.service).endpoint:
            raise FailedPrecondition(
                "no classification service is configured: alerts cannot be followed",
                reason="CAPABILITY_NOT_CONFIGURED",
                metadata={"service": method.service},
            )

        async def ask(which: MethodInfo, request: dict[str, Any]) -> dict[str, Any]:
            message = json_format.ParseDict(request, which.new_request())
            reply = await self._engine.invoker.call(
                which, message, metadata=call.outgoing_metadata(), deadline_seconds=10.0
            )
            return json_format.MessageToDict(reply, preserving_proto_field_name=True)

        watches: list[dict[str, Any]] = []
        try:
            if spec.all_watches:
                page_token = ""
                while True:
                    page = await ask(listing, {"page_size": 200, "page_token": page_token})
                    watches += page.get("watches", [])
                    if not (page_token := page.get("next_page_token", "")):
                        break
            else:
                watches.append((await ask(method, {"name": spec.watch}))["watch"])
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise InvalidArgument(
                    "alert trigger names an unknown watch",
                    violations=[_violation("trigger.watch", f"no watch {spec.watch!r}")],
                ) from None
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDenied(
                    f"the watch cannot be read: {error.details()}", reason="WATCH_NOT_READABLE"
                ) from None
            raise Unavailable(
                "the classification service did not answer", reason="CLASSIFICATION_UNAVAILABLE", retry_after_seconds=5
            ) from None
        return alert_triggers.latest_sequence(watches)

    async def get_trigger(self, call: CallContext, name: str) -> AlertTriggerRow:
        row = await self._store.get_trigger(call.tenant, name)
        if row is None:
            raise NotFound(
                f"alert trigger {name!r} not found", reason="ALERT_TRIGGER_NOT_FOUND", metadata={"name": name}
            )
        return row

    async def list_triggers(
        self, call: CallContext, page_size: int, page_token: str
    ) -> tuple[list[AlertTriggerRow], str]:
        listing = page_tokens.listing_key("alert-triggers", "")
        limit, offset = _page_size(page_size, 50, 200), _page(page_token, listing)
        rows = await self._store.list_triggers(call.tenant, limit, offset)
        return rows, next_page_token(listing, offset, len(rows), limit)

    async def delete_trigger(self, call: CallContext, name: str) -> int:
        call.require_role(roles.OPERATOR)
        runs_started = await self._store.delete_trigger(call.tenant, name)
        if runs_started is None:
            raise NotFound(
                f"alert trigger {name!r} not found", reason="ALERT_TRIGGER_NOT_FOUND", metadata={"name": name}
            )
        return runs_started

    async def handle_alert(self, trigger: AlertTriggerRow, alert: dict[str, Any], owner: str) -> AlertTriggerRow:
        """Starts the alert's run for the trigger's creator, or moves past an alert that starts none; returns
        the trigger as it is after (STOPPED when it may start no run any more: its creator was revoked, or
        the plan no longer takes what the trigger gives it)."""
        spec = trigger.spec
        sequence = alert_triggers.alert_sequence(alert)
        # The cursor started at the watch's latest alert when the trigger was created: what follows is newer.
        if sequence <= trigger.last_sequence:
            return trigger
        if spec.kinds and alert_triggers.alert_kind(alert) not in spec.kinds:
            await self._store.skip_alert(trigger.id, owner, sequence)
            return dataclasses.replace(trigger, last_sequence=sequence)
        grant = RunGrant.opened(self._keys.open(trigger.credential), {})
        call = CallContext(
            principal=Principal(grant.subject, trigger.tenant, frozenset(grant.roles)),
            purpose=trigger.purpose,
            data_class=DataClass[trigger.data_class],
        )
        try:
            stored = await self._plan_for(call, spec.plan_name, spec.plan_version)
            violations = Violations()
            inputs = self._check_inputs(stored.plan, alert_triggers.run_inputs(spec, alert), violations)
            violations.raise_if_any(f"plan {spec.plan_name!r} does not take the inputs the trigger gives it")
        except MatchaError as error:
            reason = {
                "code": error.code.value[0],
                "message": "; ".join([error.message, *(f"{v.field}: {v.description}" for v in error.violations)]),
                "reason": error.reason or "INPUTS_REJECTED",
                "metadata": error.metadata,
            }
            await self._store.stop_trigger(trigger.id, reason)
            return dataclasses.replace(trigger, state="STOPPED", stop_reason=reason)
        new = self._new_run(
            call,
            stored,
            inputs,
            deadline=datetime.now(UTC) + timedelta(seconds=stored.plan.deadline_seconds),
            labels={
                "alert-trigger": spec.name,
                "alert-sequence": str(sequence),
                "watch": str(alert.get("watch", ""))[:63],
            },
            start_key=self._keys.trigger_start_key(trigger.id, sequence),
        )
        _, revocation = await self._store.start_triggered_run(trigger.id, owner, sequence, new)
        if revocation is not None:
            return dataclasses.replace(trigger, state="STOPPED")
        return dataclasses.replace(trigger, last_sequence=sequence)

    # -- revoked principals ----------------------------------------------------------------------

    async def revoke_principal(self, call: CallContext, subject: str, reason: str) -> tuple[Revocation, int]:
        """From now on the principal's runs fail at their next hop and the principal starts none; the tokens
        their identity provider issued stay valid elsewhere until they expire."""
        call.require_role(roles.ADMIN)
        _require_subject(subject)
        return await self._store.revoke_principal(call.tenant, subject, reason, call.principal.subject)

    async def reinstate_principal(self, call: CallContext, subject: str) -> bool:
        call.require_role(roles.ADMIN)
        _require_subject(subject)
        return await self._store.reinstate_principal(call.tenant, subject)

    @staticmethod
    def _check_inputs(plan: plans.PlanDef, inputs: dict[str, Any], violations: Violations) -> dict[str, Any]:
        known = {item.name: item for item in plan.inputs}
        for name in sorted(inputs.keys() - known.keys()):
            violations.add(f"inputs.{name}", f"plan {plan.name!r} has no input {name!r}")
        resolved = {}
        for item in plan.inputs:
            if item.name in inputs:
                value = inputs[item.name]
                if item.type == "INTEGER" and isinstance(value, float) and value.is_integer():
                    value = int(value)  # JSON numbers arrive as doubles through Struct
                if not item.accepts(value):
                    violations.add(f"inputs.{item.name}", f"expected {item.type}, got {type(value).__name__}")
                resolved[item.name] = value
            elif item.default is not None:
                resolved[item.name] = item.default
            elif item.required:
                violations.add(f"inputs.{item.name}", "required input is missing")
        return resolved

    async def get_run(self, call: CallContext, run_id: str) -> RunRow:
        run = await self._store.get_run(call.tenant, run_id)
        if run is None:
            raise NotFound(f"run {run_id!r} not found", reason="RUN_NOT_FOUND", metadata={"run_id": run_id})
        return run

    async def list_runs(
        self, call: CallContext, where: RunFilter, page_size: int, page_token: str
    ) -> tuple[list[RunRow], str]:
        listing = page_tokens.listing_key("runs", dataclasses.asdict(where))
        limit, offset = _page_size(page_size, 50, 200), _page(page_token, listing)
        rows = await self._store.list_runs(call.tenant, where, limit, offset)
        return rows, next_page_token(listing, offset, len(rows), limit)

    async def watch_run(self, call: CallContext, run_id: str, after_sequence: int) -> AsyncIterator[StoredEvent]:
        await self.get_run(call, run_id)
        last = after_sequence
        while True:
            with self._store.bus.subscribe(run_id) as waiter:
                for stored in await self._store.events_after(run_id, last):
                    last = stored.sequence
                    yield stored
                    if stored.event.type in TERMINAL_EVENTS:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), WATCH_POLL_SECONDS)

    async def cancel_run(self, call: CallContext, run_id: str, reason: str) -> RunRow:
        error = {
            "code": grpc.StatusCode.CANCELLED.value[0],
            "message": reason or "cancelled",
            "reason": "RUN_CANCELLED",
            "metadata": {"subject": call.principal.subject},
        }
        state = await self._store.cancel_run(call.tenant, run_id, error)
        if state is None:
            raise NotFound(f"run {run_id!r} not found", reason="RUN_NOT_FOUND", metadata={"run_id": run_id})
        if state in ("SUCCEEDED", "FAILED"):
            raise FailedPrecondition(
                f"run {run_id} already {state}", reason="RUN_FINISHED", metadata={"run_id": run_id, "state": state}
            )
        self._engine.cancel_local(run_id)
        return await self.get_run(call, run_id)

    async def signal(
        self, call: CallContext, run_id: str, key: str, payload: dict, capability: str = ""
    ) -> tuple[str, str]:
        violations = Violations()
        violations.check(0 < len(key) <= 256, "key", "1 to 256 characters")
        violations.check(len(json.dumps(payload).encode()) <= MAX_SIGNAL_BYTES, "payload", "at most 1 MiB")
        violations.raise_if_any("signal has invalid fields")
        run = await self.get_run(call, run_id)
        # A finished run still answers a repeat of a signal it took (a sender whose answer was lost sends it
        # again): the store tells a repeat from a late signal, which is refused.
        bound = bool(capability)
        if bound:
            granted = gov.ResumeCapability.verify(capability, self._keys.resume_key)
            if granted is None or (granted.tenant, granted.run_id, granted.key) != (call.tenant, run_id, key):
                raise PermissionDenied(
                    "the resume capability was not issued by this run for this key",
                    reason="RESUME_CAPABILITY_INVALID",
                    metadata={"run_id": run_id, "key": key},
                )
        else:
            plan = await self.load_plan(run.tenant, run.plan_name, run.plan_version)
            self._check_signal_roles(call, plan, run, key)
        state, outcome = await self._store.put_signal(
            call.tenant, run_id, key, payload, call.principal.subject, sorted(call.principal.roles), bound=bound
        )
        if state is None:
            raise NotFound(f"run {run_id!r} not found", reason="RUN_NOT_FOUND")
        if state in TERMINAL_STATES and outcome != "DUPLICATE":
            raise FailedPrecondition(f"run {run_id} already {state}", reason="RUN_FINISHED", metadata={"state": state})
        if outcome == "CONFLICT":
            raise AlreadyExists(
                f"signal {key!r} was already delivered with another payload",
                reason="SIGNAL_CONFLICT",
                metadata={"run_id": run_id, "key": key},
            )
        refreshed = await self.get_run(call, run_id)
        return outcome, refreshed.state

    @staticmethod
    def _check_signal_roles(call: CallContext, plan: plans.PlanDef, run: RunRow, key: str) -> None:
        """The roles of the await step waiting on `key` (or whose default key it is) apply."""
        waiting = {step.step_id for step in run.steps if key in step.awaited_keys}
        for step in plan.steps:
            default_key = not step.await_key and (key == step.id or key.startswith(f"{step.id}/"))
            concerned = step.is_await and step.await_roles and (step.id in waiting or default_key)
            if concerned and not any(call.principal.has_role(role) for role in step.await_roles):
                raise PermissionDenied(
                    f"signalling step {step.id!r} requires one of the roles {', '.join(step.await_roles)}",
                    reason="MISSING_ROLE",
                    metadata={"roles": ",".join(step.await_roles), "step": step.id},
                )

    # -- audit -----------------------------------------------------------------------------------

    @staticmethod
    def _require_auditor(call: CallContext) -> None:
        if not any(call.principal.has_role(role) for role in AUDIT_ROLES):
            raise PermissionDenied(
                "the audit ledger needs the auditor or admin role", reason="MISSING_ROLE", metadata={"role": "auditor"}
            )

    async def list_audit(
        self, call: CallContext, query: AuditQuery, *, page_size: int, page_token: str
    ) -> tuple[list[ChainedRecord], str]:
        """Rows of the hops ledger (`audit.AuditRecord`) or of the accesses ledger (`AccessRecord`)."""
        self._require_auditor(call)
        listing = page_tokens.listing_key("audit", dataclasses.asdict(query))
        limit, after = _page_size(page_size, 100, 1000), _page(page_token, listing)
        records: list[ChainedRecord]
        if query.ledger == AuditLedger.HOPS:
            violations = Violations()
            for name in ("subject_id", "collection", "principal"):
                if getattr(query, name):
                    violations.add(name, "filters the accesses ledger only (ledger AUDIT_LEDGER_ACCESSES)")
            violations.raise_if_any("these filters apply to the accesses ledger")
            records = await self._store.list_audit(
                call.tenant,
                run_id=query.run_id,
                start=query.start,
                end=query.end,
                target=query.target,
                decision=query.decision,
                after_sequence=after,
                limit=limit,
            )
        else:
            if query.run_id:
                raise InvalidArgument(
                    "run_id filters the hops ledger only",
                    violations=[FieldViolation("run_id", "filters the hops ledger only (ledger AUDIT_LEDGER_HOPS)")],
                )
            records = await self._accesses.list(
                call.tenant,
                subject_id=query.subject_id,
                resource=f"collection:{query.collection}" if query.collection else "",
                principal=query.principal,
                method=query.target,
                decision=query.decision,
                start=query.start,
                end=query.end,
                after_sequence=after,
                limit=limit,
            )
        token = page_tokens.encode(listing, records[-1].sequence) if len(records) == limit else ""
        return records, token

    async def verify_audit(
        self, call: CallContext, ledger: AuditLedger, from_sequence: int, expected_head_hash: str
    ) -> Verification:
        self._require_auditor(call)
        start = max(from_sequence, 1)
        chain: Callable[[str, int], AsyncIterator[ChainedRecord[Any]]]  # either ledger's rows
        if ledger == AuditLedger.HOPS:
            key, record_hash, chain = self._keys.audit_key, self._store.audit_hash, self._store.audit_chain
        else:
            key, record_hash, chain = self._accesses.key, self._accesses.record_hash, self._accesses.chain
        previous = (await record_hash(call.tenant, start - 1) or "") if start > 1 else ""
        verifier = ChainVerifier(key, call.tenant, previous_hash=previous, expected_sequence=start)
        async for record in chain(call.tenant, start):
            if not verifier.feed(record):
                break
        return verifier.result(expected_head_hash)

    # -- erasure and capabilities ------------------------------------------------------------------

    async def erase_subject(self, call: CallContext, token: str, subject_id: str) -> list[StoreErasure]:
        call.require_role(ERASURE_ROLE)
        if not subject_id:
            raise InvalidArgument("subject_id is required", violations=[_violation("subject_id", "required")])
        outcomes = []
        for method in self._catalog.erasers():
            request = json_format.ParseDict({"subject_id": subject_id}, method.new_request())
            # Authorised by role and purpose: the stores take it whatever their clearance, and the request
            # is honest about the subject id being personal.
            metadata = gov.outgoing_metadata(
                token, purpose=ERASURE_PURPOSE, data_class=DataClass.PERSONAL, tenant=call.tenant
            )
            try:
                reply = await self._engine.invoker.call(method, request, metadata=metadata, deadline_seconds=30.0)
            except grpc.aio.AioRpcError as error:
                outcomes.append(StoreErasure(method.service, 0, error.code(), error.details() or ""))
                continue
            counted = json_format.MessageToDict(
                reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            by_kind = {
                key.removeprefix("erased_"): int(value) for key, value in counted.items() if key.startswith("erased")
            }
            outcomes.append(
                StoreErasure(method.service, sum(by_kind.values()), grpc.StatusCode.OK, erased_by_kind=by_kind)
            )
        erased_here = await self._store.erase_subject(call.tenant, subject_id)
        outcomes.append(
            StoreErasure(CONDUCTOR_STORE, erased_here, grpc.StatusCode.OK, erased_by_kind={"runs": erased_here})
        )
        return outcomes

    async def data_map(
        self, call: CallContext, token: str, subject_id: str
    ) -> tuple[list[StoreDataMap], list[AccessRecord]]:
        """What every store holds about the subject (each capability's DescribeSubject, then the conductor's runs),
        and the first accesses to the subject's records on the record (ListAudit pages through all of them)."""
        require_describer(call)
        check_subject_id(subject_id)
        answers = await asyncio.gather(
            *(self._describe(call, token, method, subject_id) for method in self._catalog.describers())
        )
        runs = await self._store.describe_subject(call.tenant, subject_id, call.data_class)
        accesses = await self._accesses.list(
            call.tenant,
            subject_id=subject_id,
            resource="",
            principal="",
            method="",
            decision="",
            start=None,
            end=None,
            after_sequence=0,
            limit=DATA_MAP_MAX_ACCESSES,
        )
        stores = [*answers, StoreDataMap(CONDUCTOR_STORE, grpc.StatusCode.OK, holdings=cap_exports(runs))]
        return stores, accesses

    async def _describe(self, call: CallContext, token: str, method: MethodInfo, subject_id: str) -> StoreDataMap:
        clearance = (await self._catalog.reported(method.service)).clearance.max_data_class
        # The caller's class, never above what the store may receive: what it holds above that stays withheld.
        ceiling = min(call.data_class, clearance)
        metadata = gov.outgoing_metadata(token, purpose=DATA_MAP_PURPOSE, data_class=ceiling, tenant=call.tenant)
        request = json_format.ParseDict({"subject_id": subject_id}, method.new_request())
        try:
            # A message whose class is built from descriptors: every DescribeSubject reply has `holdings`.
            reply: Any = await self._engine.invoker.call(method, request, metadata=metadata, deadline_seconds=30.0)
        except grpc.aio.AioRpcError as error:
            return StoreDataMap(method.service, error.code(), error.details() or "")
        holdings = [_holding(item, ceiling) for item in reply.holdings]
        return StoreDataMap(method.service, grpc.StatusCode.OK, holdings=holdings)

    async def list_capabilities(self, call: CallContext) -> list[tuple[Capability, bool]]:
        result = []
        for listed in self._catalog.capabilities():
            capability = await self._catalog.reported(listed.service) if listed.endpoint else listed
            result.append((capability, await self._serving(capability)))
        return result

    async def _serving(self, capability: Capability) -> bool:
        if not capability.endpoint:
            return False
        return await self._engine.invoker.health(capability.service, HEALTH_TIMEOUT_SECONDS) == SERVING


def _holding(message, ceiling: DataClass) -> SubjectHolding:
    """A capability's matcha.common.v1.SubjectHolding (a message built from descriptors), as plain values; what
    it exported is at most the class it was asked under."""
    highest = DataClass.from_wire(message.highest_data_class)
    return SubjectHolding(
        kind=message.kind,
        count=message.count,
        highest_data_class=highest,
        exported_class=min(highest, ceiling),
        purposes=tuple(message.purposes),
        records=tuple(json_format.MessageToDict(record) for record in message.records),
        scope=message.scope,
        withheld=message.withheld,
        truncated=message.truncated,
        consented_channels=tuple(message.consented_channels),
        retention=message.retention.ToTimedelta() if message.HasField("retention") else None,
    )


def _trace_of_request() -> tuple[str, str]:
    """The run continues the trace of the request that started it (the gateway's HTTP request, a client's
    call): its steps are children of this StartRun span. Without tracing, the run is a trace of its own."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x"), format(context.span_id, "016x")
    return secrets.token_hex(16), secrets.token_hex(8)
