"""Durable execution of runs: leases, checkpoints, retries, fan-out, waits, policy and audit per hop.

Each conductor process runs one engine. It claims runs whose lease is free or expired,
renews the leases of the runs it executes, and gives them back when it stops. A run
resumed by another process starts from its checkpoints: completed steps and fan-out
items are never called again. Every write an execution makes is fenced by its lease.
"""

import asyncio
import collections
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from matcha.conductor import audit, expressions, redaction
from matcha.conductor.catalog import CapabilityCatalog, MethodInfo
from matcha.conductor.invoker import CapabilityNotConfigured, DynamicInvoker
from matcha.conductor.keys import ConductorKeys, SealedStateUnreadable
from matcha.conductor.plans import PlanDef, PlanDigestMismatch, StepDef
from matcha.conductor.policy import decide
from matcha.conductor.records import Claim, Event, RunRow
from matcha.conductor.store import RUNS_CHANNEL, ConductorStore, LeaseLost
from matcha.runtime import governance as gov
from matcha.runtime.auth import WorkloadTokenIssuer
from matcha.runtime.client import error_details
from matcha.runtime.errors import InvalidArgument
from matcha.runtime.tracing import DATA_CLASS_ATTRIBUTE, PURPOSE_ATTRIBUTE, TENANT_ATTRIBUTE

logger = logging.getLogger(__name__)

AWAIT_POLL_SECONDS = 1.0
RUN_ATTRIBUTE = "matcha.run_id"
PLAN_ATTRIBUTE = "matcha.plan"
STEP_ATTRIBUTE = "matcha.step"
DECISION_ATTRIBUTE = "matcha.policy.decision"
RULE_ATTRIBUTE = "matcha.policy.rule"
TARGET_ATTRIBUTE = "matcha.target"
# The review contract's "resume this run on a decision"; the conductor signs what it hands out.
RUN_RESUME_MESSAGE = "matcha.review.v1.RunResume"
# Content a run passes on states which run made it; the conductor writes that, never the plan.
PROVENANCE_MESSAGE = "matcha.common.v1.Provenance"

PlanLoader = Callable[[str, str, int], Awaitable[PlanDef]]


class StepFailure(Exception):
    """A step that cannot succeed: carries the status the run reports."""

    def __init__(self, code: grpc.StatusCode, message: str, *, reason: str = "", metadata: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}

    def as_status(self) -> dict:
        return status(self.code, self.message, self.reason, self.metadata)


def status(code: grpc.StatusCode, message: str, reason: str = "", metadata: dict | None = None) -> dict:
    return {"code": code.value[0], "message": message, "reason": reason, "metadata": metadata or {}}


class Parked(Exception):
    """Every unfinished step waits for a signal: the run is handed back until one arrives."""


@dataclass(frozen=True)
class RunGrant:
    """Who a run acts for and with which roles: fixed when it started, sealed in the run row (so editing the
    row's readable context grants nothing), and put in every hop's workload token."""

    subject: str
    roles: tuple[str, ...]

    def sealed_form(self) -> dict[str, Any]:
        return {"subject": self.subject, "roles": list(self.roles)}

    @classmethod
    def opened(cls, sealed: Any, context: dict[str, Any]) -> "RunGrant":
        if isinstance(sealed, dict):
            return cls(sealed["subject"], tuple(sealed["roles"]))
        # A run started before workload identity sealed its starter's token; its context names the same grant.
        return cls(context["subject"], tuple(context["roles"]))


@dataclass
class HopOutcome:
    output: Any
    entry: audit.AuditEntry


def _progress(completed: int, total: int, failed: int = 0) -> dict[str, int]:
    return {"completed": completed, "total": total, "failed": failed}


class RunExecution:
    """One claimed run, executed by this process until it finishes, parks, or loses its lease."""

    def __init__(self, engine: "RunEngine", run: RunRow, plan: PlanDef, items: dict[str, dict[int, Any]]) -> None:
        self.engine = engine
        self.run = run
        self.plan = plan
        self.items = items
        self.store = engine.store
        self.owner = engine.owner
        context = run.context
        self.data_class = gov.DataClass[context["data_class"]]
        self.grant = RunGrant.opened(engine.keys.open(run.credential), context)
        self.pseudonymiser = redaction.Pseudonymiser(engine.keys.pseudonym_key(run.key_root))
        self.pseudonyms: dict[str, str] = engine.keys.open(run.pseudonyms) if run.pseudonyms else {}
        self.outputs: dict[str, Any] = {
            step.step_id: step.output for step in run.steps if step.state in ("SUCCEEDED", "SKIPPED")
        }
        self.step_rows = {step.step_id: step for step in run.steps}
        self.waiting: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------------

    def variables(self, **extra: Any) -> dict[str, Any]:
        return {
            "inputs": self.run.inputs,
            "steps": {step_id: {"output": output} for step_id, output in self.outputs.items()},
            "run": {"id": self.run.id, "plan_name": self.run.plan_name, "plan_version": self.run.plan_version},
            **extra,
        }

    async def emit(self, *events: Event, **changes: Any) -> None:
        await self.store.record(self.run.id, self.owner, list(events), **changes)

    def trace_parent(self):
        parent = SpanContext(
            trace_id=int(self.run.trace_id, 16),
            span_id=int(self.run.trace_span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        return trace.set_span_in_context(NonRecordingSpan(parent))

    def span_attributes(self, step: StepDef) -> dict[str, Any]:
        return {
            TENANT_ATTRIBUTE: self.run.tenant,
            PURPOSE_ATTRIBUTE: self.run.context["purpose"],
            DATA_CLASS_ATTRIBUTE: self.data_class.name,
            RUN_ATTRIBUTE: self.run.id,
            PLAN_ATTRIBUTE: f"{self.plan.name}@{self.run.plan_version}",
            STEP_ATTRIBUTE: step.id,
        }

    # -- the run ---------------------------------------------------------------------------------

    async def execute(self, claim: Claim) -> None:
        if claim.recovered:
            await self.emit(Event("RUN_RECOVERED", "RUNNING"))
        elif not claim.started:
            await self.emit(Event("RUN_STARTED", "RUNNING"), run_changes={"started_at": datetime.now(UTC)})
        remaining = (self.run.deadline - datetime.now(UTC)).total_seconds()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                while True:
                    try:
                        await self._schedule()
                        break
                    except Parked:
                        # A signal that came in meanwhile keeps the run here instead.
                        if await self.store.park(self.run.id, self.owner):
                            return
            outputs = {
                name: await self.engine.expressions.evaluate(source, self.variables())
                for name, source in self.plan.outputs.items()
            }
        except TimeoutError:
            await self._fail(StepFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "the run passed its deadline"))
            return
        except StepFailure as failure:
            await self._fail(failure)
            return
        except expressions.ExpressionError as error:
            await self._fail(StepFailure(grpc.StatusCode.INVALID_ARGUMENT, f"plan outputs: {error}"))
            return
        await self.emit(
            Event("RUN_SUCCEEDED", "SUCCEEDED"),
            run_changes={"outputs": outputs, "ended_at": datetime.now(UTC), "lease_owner": None, "lease_expires": None},
        )

    async def _fail(self, failure: StepFailure) -> None:
        event, changes = _run_failed(failure)
        await self.emit(event, **changes, cancel_unfinished_steps=True)

    async def _schedule(self) -> None:
        running: dict[str, asyncio.Task] = {}
        try:
            while True:
                for step in self.plan.steps:
                    if step.id in self.outputs or step.id in running:
                        continue
                    if all(dependency in self.outputs for dependency in step.depends_on):
                        running[step.id] = asyncio.create_task(self._step(step), name=f"step {step.id}")
                if not running:
                    return
                if self.waiting and self.waiting >= running.keys():
                    raise Parked()
                waits_for_signal = any(self.plan.step(step_id).is_await for step_id in running)
                done, _ = await asyncio.wait(
                    running.values(),
                    timeout=AWAIT_POLL_SECONDS if waits_for_signal else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    step_id = next(key for key, value in running.items() if value is task)
                    del running[step_id]
                    self.outputs[step_id] = task.result()
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)

    # -- steps -----------------------------------------------------------------------------------

    async def _step(self, step: StepDef) -> Any:
        try:
            return await self._step_body(step)
        except StepFailure as failure:
            await self.emit(
                Event("STEP_FAILED", "RUNNING", step.id, "FAILED", error=failure.as_status()),
                step_changes={
                    step.id: {"state": "FAILED", "error": failure.as_status(), "ended_at": datetime.now(UTC)}
                },
            )
            raise
        except expressions.ExpressionError as error:
            over_budget = isinstance(error, expressions.ExpressionBudgetExceeded)
            expression_failure = StepFailure(
                grpc.StatusCode.RESOURCE_EXHAUSTED if over_budget else grpc.StatusCode.INVALID_ARGUMENT,
                f"step {step.id}: {error}",
                reason="EXPRESSION_BUDGET_EXCEEDED" if over_budget else "EXPRESSION_FAILED",
            )
            await self.emit(
                Event("STEP_FAILED", "RUNNING", step.id, "FAILED", error=expression_failure.as_status()),
                step_changes={
                    step.id: {"state": "FAILED", "error": expression_failure.as_status(), "ended_at": datetime.now(UTC)}
                },
            )
            raise expression_failure from None

    async def _step_body(self, step: StepDef) -> Any:
        variables = self.variables()
        row = self.step_rows[step.id]
        if not step.for_each_items:
            if step.when and not _truthy(await self.engine.expressions.evaluate(step.when, variables)):
                await self.emit(
                    Event("STEP_SKIPPED", "RUNNING", step.id, "SKIPPED"),
                    step_changes={step.id: {"state": "SKIPPED", "ended_at": datetime.now(UTC)}},
                )
                return None
            if row.state == "PENDING":
                await self._started(step, total=0)
            output, entry = await self._item(step, variables, None)
            changes = {"state": "SUCCEEDED", "output": output, "ended_at": datetime.now(UTC)}
            await self.emit(
                Event("STEP_SUCCEEDED", "RUNNING", step.id, "SUCCEEDED"),
                step_changes={step.id: changes},
                audit_entries=[(self.run.tenant, entry)] if entry else [],
                run_changes=self.class_changes(),
            )
            return output
        items = await self.engine.expressions.evaluate(step.for_each_items, variables)
        if not isinstance(items, list):
            raise StepFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"step {step.id}: for_each.items gave {type(items).__name__}, not a list",
            )
        if len(items) > self.engine.max_fan_out_items:
            raise StepFailure(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"step {step.id}: for_each.items gave {len(items)} items, at most {self.engine.max_fan_out_items}",
                reason="FAN_OUT_TOO_LARGE",
                metadata={"items": str(len(items)), "limit": str(self.engine.max_fan_out_items)},
            )
        done = dict(self.items.get(step.id, {}))
        if row.state == "PENDING":
            await self._started(step, total=len(items), completed=len(done))
        semaphore = asyncio.Semaphore(step.for_each_concurrency)

        async def one(index: int, item: Any) -> Any:
            if index in done:
                return done[index]
            async with semaphore:
                item_variables = self.variables(item=item, index=index)
                entry = None
                if step.when and not _truthy(await self.engine.expressions.evaluate(step.when, item_variables)):
                    output = None
                else:
                    output, entry = await self._item(step, item_variables, index)
                done[index] = output
                await self.emit(
                    Event(
                        "STEP_PROGRESS",
                        "RUNNING",
                        step.id,
                        "RUNNING",
                        item_index=index,
                        progress=_progress(len(done), len(items)),
                    ),
                    step_changes={step.id: {"completed": len(done), "total": len(items)}},
                    item=(step.id, index, output),
                    audit_entries=[(self.run.tenant, entry)] if entry else [],
                )
                return output

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(index, item)) for index, item in enumerate(items)]
        except* (StepFailure, LeaseLost, expressions.ExpressionError) as failures:
            # The first failed item fails the step, exactly as a single call would (not an ExceptionGroup, which
            # nothing above would catch: the run would hang until its lease ran out, again and again).
            raise failures.exceptions[0] from None
        output = [task.result() for task in tasks]
        await self.emit(
            Event("STEP_SUCCEEDED", "RUNNING", step.id, "SUCCEEDED", progress=_progress(len(items), len(items))),
            step_changes={step.id: {"state": "SUCCEEDED", "output": output, "ended_at": datetime.now(UTC)}},
            run_changes=self.class_changes(),
        )
        return output

    async def _started(self, step: StepDef, *, total: int, completed: int = 0) -> None:
        progress = _progress(completed, total) if step.for_each_items else None
        await self.emit(
            Event("STEP_STARTED", "RUNNING", step.id, "RUNNING", progress=progress),
            step_changes={
                step.id: {"state": "RUNNING", "started_at": datetime.now(UTC), "total": total, "completed": completed}
            },
        )

    async def _item(self, step: StepDef, variables: dict, index: int | None) -> tuple[Any, audit.AuditEntry | None]:
        if step.is_await:
            return await self._await(step, variables, index), None
        hop = await self._call(step, variables, index)
        return hop.output, hop.entry

    # -- await -----------------------------------------------------------------------------------

    async def _await(self, step: StepDef, variables: dict, index: int | None) -> Any:
        if step.await_key:
            key = str(await self.engine.expressions.evaluate(step.await_key, variables))
        else:
            key = step.id if index is None else f"{step.id}/{index}"
        announced = key in self.step_rows[step.id].awaited_keys
        while True:
            payload, refused = await self.store.take_signal(self.run.id, key, step.await_roles)
            if refused:
                logger.warning(
                    "signal refused: its sender lacks the await step's roles",
                    extra={"run_id": self.run.id, "step": step.id, "signal_sender": refused},
                )
            if payload is not None:
                self.waiting.discard(step.id)
                await self.emit(
                    Event("STEP_RESUMED", "RUNNING", step.id, "RUNNING", item_index=index, signal_key=key),
                    step_changes={step.id: {"state": "RUNNING"}},
                )
                if step.output:
                    return await self.engine.expressions.evaluate(step.output, {**variables, "response": payload})
                return payload
            if not announced:
                keys = [*self.step_rows[step.id].awaited_keys, key]
                await self.emit(
                    Event("STEP_WAITING", "RUNNING", step.id, "WAITING", item_index=index, signal_key=key),
                    step_changes={step.id: {"state": "WAITING", "awaited_keys": keys}},
                )
                self.step_rows[step.id] = dataclasses.replace(self.step_rows[step.id], awaited_keys=tuple(keys))
                announced = True
            self.waiting.add(step.id)
            with self.store.bus.subscribe(self.run.id) as waiter, contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), AWAIT_POLL_SECONDS)

    # -- call ------------------------------------------------------------------------------------

    async def _call(self, step: StepDef, variables: dict, index: int | None) -> HopOutcome:
        assert step.call is not None, "only call steps are called"
        method = self.engine.catalog.method(step.call)
        assert method is not None, "the plan was validated against the catalog when it was loaded"
        capability = await self.engine.catalog.reported(method.service)
        request_value = await self.engine.expressions.render(step.request, variables)
        data_class = max([self.data_class, *self._input_classes()])
        outcome = decide(data_class, capability.clearance, step_redacts=step.redact is not None)
        # Policy requires redaction when the payload may only leave at a lower class: that floor is every kind
        # over the whole request, and a step's `redact` can only add to it, never scope it down.
        mandatory = outcome.redact and outcome.data_class_out < data_class
        if outcome.redact:
            policy = step.redact
            fields: tuple[str, ...] = ()
            if mandatory:
                kinds = redaction.ALL_KINDS | (policy.kinds if policy else frozenset())
            else:
                assert policy is not None, "without lowering the class, only the step's own policy redacts"
                kinds, fields = policy.kinds, policy.fields
            result = self.pseudonymiser.redact(request_value, kinds, fields)
            request_value, mapping = result.value, result.mapping
            if mapping.keys() - self.pseudonyms.keys():
                self.pseudonyms.update(mapping)
                await self.store.save_pseudonyms(self.run.id, self.owner, self.engine.keys.seal(self.pseudonyms))
        try:
            request = json_format.ParseDict(request_value, method.new_request())
        except json_format.ParseError as error:
            raise StepFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"step {step.id}: request does not fit {method.request.full_name}: {error}",
            ) from None
        self._bind_resume(step, request)
        self._stamp_provenance(step, request)
        payload = request.SerializeToString()
        # The ledger states what actually leaves: placeholders counted in the outgoing message itself.
        counts, residual = _outgoing_findings(request, mapping) if outcome.redact else ({}, {})
        if mandatory and residual:
            outcome = dataclasses.replace(outcome, decision=audit.Decision.DENY, rule="redaction.residual")
        tracer = self.engine.tracer
        attempts = step.retry.max_attempts
        for attempt in range(1, attempts + 1):
            with tracer.start_as_current_span(
                f"step {step.id}", context=self.trace_parent(), kind=trace.SpanKind.INTERNAL
            ) as span:
                span.set_attributes(
                    {
                        **self.span_attributes(step),
                        TARGET_ATTRIBUTE: method.full_name,
                        DECISION_ATTRIBUTE: outcome.decision.value,
                        RULE_ATTRIBUTE: outcome.rule,
                    }
                )
                entry = self._entry(step, method, index, attempt, outcome, counts, payload, span)
                await self._refuse_if_revoked(step, entry)
                if not outcome.allowed:
                    failure = StepFailure(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"step {step.id}: policy denies sending {data_class.name} data to {method.service}",
                        reason="POLICY_DENIED",
                        metadata={"rule": outcome.rule, "target": method.service, "data_class": data_class.name},
                    )
                    await self.store.append_audit(self.run.tenant, _with(entry, status_code="PERMISSION_DENIED"))
                    raise failure
                try:
                    reply, trailers = await self.engine.invoker.call_with_trailers(
                        method,
                        request,
                        metadata=self._metadata(step, index, outcome.data_class_out),
                        deadline_seconds=step.timeout or self.engine.default_timeout,
                    )
                except CapabilityNotConfigured:
                    raise StepFailure(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"step {step.id}: no endpoint is configured for {method.service}",
                        reason="CAPABILITY_NOT_CONFIGURED",
                        metadata={"service": method.service},
                    ) from None
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                    await self.store.append_audit(self.run.tenant, _with(entry, status_code=code.name))
                    if code.name in step.retry.codes and attempt < attempts:
                        await self.emit(
                            Event(
                                "STEP_RETRYING",
                                "RUNNING",
                                step.id,
                                "RUNNING",
                                item_index=index,
                                attempt=attempt,
                                error=status(code, error.details() or ""),
                            ),
                            step_changes={step.id: {"attempts": attempt}},
                        )
                        # A service that says when to come back (RetryInfo: a tenant limit, a full queue) is
                        # not called sooner.
                        retry_after = error_details(error).retry_after_seconds or 0.0
                        await asyncio.sleep(max(step.retry.backoff.delay(attempt), retry_after))
                        continue
                    raise StepFailure(
                        code,
                        f"step {step.id}: {method.full_name} failed with {code.name}: {_describe(error)}",
                        reason="CALL_FAILED",
                        metadata={"target": method.full_name, "attempts": str(attempt)},
                    ) from None
            self._derive_class(trailers.get(gov.DERIVED_CLASS_HEADER, ""))
            response = json_format.MessageToDict(
                reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            entry = _with(
                entry,
                response_sha256=audit.digest(reply.SerializeToString()),
                models=_models(response),
                status_code="OK",
            )
            if step.redact is not None and step.redact.rehydrate:
                response = redaction.rehydrate(response, self.pseudonyms)
            output = (
                await self.engine.expressions.evaluate(step.output, {**variables, "response": response})
                if step.output
                else response
            )
            return HopOutcome(output, entry)
        raise AssertionError("the retry loop always returns or raises")

    async def _refuse_if_revoked(self, step: StepDef, entry: audit.AuditEntry) -> None:
        """A revoked starter's run gets no further workload token: the hop is denied, on the record."""
        revocation = await self.store.revocation(self.run.tenant, self.grant.subject)
        if revocation is None:
            return
        await self.store.append_audit(
            self.run.tenant,
            _with(
                entry, decision=audit.Decision.DENY, policy_rule="principal.revoked", status_code="PERMISSION_DENIED"
            ),
        )
        raise StepFailure(
            grpc.StatusCode.PERMISSION_DENIED,
            f"step {step.id}: the principal who started the run, {self.grant.subject}, was revoked",
            reason="PRINCIPAL_REVOKED",
            metadata={
                "subject": self.grant.subject,
                "revoked_by": revocation.revoked_by,
                "revoke_time": revocation.revoked_at.isoformat(),
            },
        )

    def _derive_class(self, reported: str) -> None:
        """What a step returned raises the run's class for every later hop (never lowers it)."""
        try:
            derived = gov.DataClass[reported] if reported else None
        except KeyError:
            derived = None
        if derived is not None and derived > self.data_class:
            self.data_class = derived

    def class_changes(self) -> dict[str, Any] | None:
        """Run-row changes that keep a derived class across resumes."""
        if self.data_class.name == self.run.context["data_class"]:
            return None
        context = {**self.run.context, "data_class": self.data_class.name}
        self.run = dataclasses.replace(self.run, context=context)
        return {"context": context}

    def _bind_resume(self, step: StepDef, message) -> None:
        """Gives every resume this hop hands out the capability to resume this run, and only this run."""
        for resume in _resumes(message):
            if resume.run_id != self.run.id:
                raise StepFailure(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"step {step.id}: a run can only hand out the right to resume itself",
                    reason="RESUME_FOREIGN_RUN",
                    metadata={"run_id": resume.run_id, "step": step.id},
                )
            capability = gov.ResumeCapability(self.run.tenant, self.run.id, step.id, resume.signal_key)
            resume.capability = capability.issue(self.engine.keys.resume_key)

    def _stamp_provenance(self, step: StepDef, message) -> None:
        """Every Provenance this hop sends names this run and plan version (and this step when none is named)."""
        for provenance in _messages(message, PROVENANCE_MESSAGE):
            provenance.run_id = self.run.id
            provenance.plan_name = self.run.plan_name
            provenance.plan_version = self.run.plan_version
            provenance.step = provenance.step or step.id

    def _input_classes(self) -> list[gov.DataClass]:
        return [item.data_class for item in self.plan.inputs if item.data_class is not None]

    def _metadata(self, step: StepDef, index: int | None, data_class: gov.DataClass) -> list[tuple[str, str]]:
        purpose = self.run.context["purpose"]
        token = self.engine.workload.mint(
            subject=self.grant.subject,
            tenant=self.run.tenant,
            roles=list(self.grant.roles),
            run_id=self.run.id,
            purpose=purpose,
        )
        return gov.outgoing_metadata(
            token,
            purpose=purpose,
            data_class=data_class,
            tenant=self.run.tenant,
            request_id=f"{self.run.id}/{step.id}/{index or 0}",
            idempotency_key=f"{self.run.key_root}/{step.id}/{index or 0}",
        )

    def _entry(
        self, step, method: MethodInfo, index, attempt, outcome, counts, payload: bytes, span
    ) -> audit.AuditEntry:
        context = span.get_span_context()
        return audit.AuditEntry(
            time=datetime.now(UTC),
            subject=self.run.context["subject"],
            roles=tuple(self.run.context["roles"]),
            purpose=self.run.context["purpose"],
            run_id=self.run.id,
            plan_name=self.run.plan_name,
            plan_version=self.run.plan_version,
            step_id=step.id,
            item_index=index,
            attempt=attempt,
            target_method=method.full_name,
            models=(),
            data_class_in=max([self.data_class, *self._input_classes()]).name,
            data_class_out=outcome.data_class_out.name,
            request_sha256=audit.digest(payload),
            response_sha256="",
            decision=outcome.decision,
            policy_rule=outcome.rule,
            redactions=counts,
            status_code="",
            trace_id=format(context.trace_id, "032x"),
            span_id=format(context.span_id, "016x"),
        )


def _resumes(message):
    """The RunResume messages set anywhere in `message`."""
    return _messages(message, RUN_RESUME_MESSAGE)


def _messages(message, full_name: str):
    """The messages of type `full_name` set anywhere in `message`."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        values = value if descriptor.is_repeated else [value]
        if descriptor.message_type.full_name == full_name:
            yield from values
        elif not descriptor.message_type.GetOptions().map_entry:
            for item in values:
                yield from _messages(item, full_name)


def _outgoing_findings(request, mapping: dict[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per kind: placeholders of this redaction in the outgoing message, and personal data still in clear."""
    placed: collections.Counter = collections.Counter()
    residual: collections.Counter = collections.Counter()
    for text in _strings(json_format.MessageToDict(request, preserving_proto_field_name=True)):
        for placeholder in redaction.PLACEHOLDER.findall(text):
            if placeholder in mapping:
                placed[placeholder[1:].rsplit("_", 1)[0]] += 1
        residual.update(finding.kind for finding in redaction.detect(text))
    return dict(placed), dict(residual)


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _with(entry: audit.AuditEntry, **changes: Any) -> audit.AuditEntry:
    return dataclasses.replace(entry, **changes)


def _models(response: dict) -> tuple[tuple[str, str], ...]:
    found = []
    if isinstance(response.get("model"), dict) and response["model"].get("id"):
        found.append(response["model"])
    found.extend(model for model in response.get("models") or [] if isinstance(model, dict) and model.get("id"))
    return tuple((model["id"], model.get("version", "")) for model in found)


def _describe(error: grpc.aio.AioRpcError) -> str:
    """The callee's message with its field violations, so the run says what to fix."""
    details = error_details(error)
    violations = "; ".join(f"{path}: {description}" for path, description in details.field_violations.items())
    return f"{details.message} ({violations})" if violations else details.message


def _run_failed(failure: StepFailure) -> tuple[Event, dict[str, Any]]:
    """The event and run changes that end a run as FAILED, releasing its lease."""
    status = failure.as_status()
    changes = {"error": status, "ended_at": datetime.now(UTC), "lease_owner": None, "lease_expires": None}
    return Event("RUN_FAILED", "FAILED", error=status), {"run_changes": changes}


def _truthy(value: Any) -> bool:
    return value is True


class RunEngine:
    def __init__(
        self,
        store: ConductorStore,
        catalog: CapabilityCatalog,
        invoker: DynamicInvoker,
        keys: ConductorKeys,
        load_plan: PlanLoader,
        tracer: trace.Tracer,
        *,
        workload: WorkloadTokenIssuer,
        lease_seconds: float,
        poll_seconds: float,
        max_active_runs: int,
        default_timeout: float,
        evaluator: expressions.ExpressionEvaluator,
        max_fan_out_items: int,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.invoker = invoker
        self.keys = keys
        self.workload = workload
        self.load_plan = load_plan
        self.tracer = tracer
        self.owner = f"conductor-{uuid.uuid4().hex[:12]}"
        self.default_timeout = default_timeout
        self.expressions = evaluator
        self.max_fan_out_items = max_fan_out_items
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._max_active = max_active_runs
        self._active: dict[str, asyncio.Task] = {}
        self._loops: list[asyncio.Task] = []

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="claim runs"),
            asyncio.create_task(self._heartbeat_loop(), name="renew leases"),
        ]

    async def stop(self) -> None:
        """Stops executing; the runs' leases are released so another process resumes them at once."""
        held = list(self._active)
        tasks = [*self._loops, *self._active.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._active.clear()
        if held:
            await self.store.release_leases(self.owner, held)

    async def _fail_unrunnable(self, run_id: str, error: Exception) -> None:
        reason = {SealedStateUnreadable: "RUN_STATE_UNREADABLE", PlanDigestMismatch: "PLAN_DIGEST_MISMATCH"}.get(
            type(error), "PLAN_NO_LONGER_VALID"
        )
        failure = StepFailure(grpc.StatusCode.FAILED_PRECONDITION, str(error), reason=reason)
        logger.error("run cannot be executed", extra={"run_id": run_id, "reason": reason})
        event, changes = _run_failed(failure)
        await self.store.record(run_id, self.owner, [event], **changes, cancel_unfinished_steps=True)

    def cancel_local(self, run_id: str) -> None:
        task = self._active.get(run_id)
        if task is not None:
            task.cancel()

    async def _claim_loop(self) -> None:
        while True:
            with self.store.bus.subscribe(RUNS_CHANNEL) as waiter:
                try:
                    capacity = self._max_active - len(self._active)
                    if capacity > 0:
                        claims = await self.store.claim_runs(
                            self.owner, self._lease_seconds, capacity, list(self._active)
                        )
                        for claim in claims:
                            self._active[claim.run_id] = asyncio.create_task(
                                self._execute(claim), name=f"run {claim.run_id}"
                            )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waiter.wait(), self._poll_seconds)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("claiming runs failed; retrying")
                    await asyncio.sleep(self._poll_seconds)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            if not self._active:
                continue
            try:
                held = await self.store.renew_leases(self.owner, list(self._active), self._lease_seconds)
            except Exception:
                logger.exception("renewing leases failed")
                continue
            for run_id in list(self._active):
                if run_id not in held:
                    self.cancel_local(run_id)

    async def _execute(self, claim: Claim) -> None:
        try:
            run, items = await self.store.run_for_execution(claim.run_id)
            try:
                plan = await self.load_plan(run.tenant, run.plan_name, run.plan_version)
                execution = RunExecution(self, run, plan, items)
            except (SealedStateUnreadable, PlanDigestMismatch, InvalidArgument) as error:
                # Retrying cannot help: claimed again every lease, such a run would stay RUNNING forever.
                await self._fail_unrunnable(claim.run_id, error)
                return
            await execution.execute(claim)
        except (LeaseLost, asyncio.CancelledError):
            pass  # cancelled, or another process owns the run now
        except Exception:
            logger.exception("run execution failed unexpectedly", extra={"run_id": claim.run_id})
        finally:
            self._active.pop(claim.run_id, None)
            self.store.bus.notify(RUNS_CHANNEL)
