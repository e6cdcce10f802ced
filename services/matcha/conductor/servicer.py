"""gRPC adapter of the conductor: protobuf in, core call, protobuf out."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format, struct_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from matcha.common.v1 import common_pb2
from matcha.conductor.audit import AuditRecord, ChainBreak, Verification
from matcha.conductor.core import AuditLedger, AuditQuery, ConductorCore, StoredPlan
from matcha.conductor.records import AlertTriggerRow, AlertTriggerSpec, PlanRow, RunFilter, RunRow, StepRow, StoredEvent
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.runtime import governance as gov
from matcha.runtime.access import AccessRecord
from matcha.runtime.data_map import exported_classes
from matcha.runtime.data_map_messages import holding_messages
from matcha.runtime.errors import ERROR_DOMAIN, Violations
from matcha.runtime.interceptors import current_call, report_records
from matcha.runtime.messages import data_class_message

_FORMATS = {conductor_pb2.PLAN_FORMAT_YAML: "YAML", conductor_pb2.PLAN_FORMAT_JSON: "JSON"}
_FORMAT_NUMBERS = {"YAML": conductor_pb2.PLAN_FORMAT_YAML, "JSON": conductor_pb2.PLAN_FORMAT_JSON}


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _enum_names(enum, values, prefix: str, field: str, *, repeated: bool = True) -> tuple[str, ...]:
    """Names without their prefix. A number the contract does not define (JSON and old clients can send any)
    is a field violation, not an internal error."""
    violations = Violations()
    for index, value in enumerate(values):
        violations.check(value in enum.values(), f"{field}[{index}]" if repeated else field, f"unknown value {value}")
    violations.raise_if_any()
    return tuple(enum.Name(value).removeprefix(prefix) for value in values)


def _datetime(stamp: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def _struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def _value(value: Any) -> struct_pb2.Value:
    return json_format.ParseDict(value, struct_pb2.Value())


def _status(error: dict | None) -> status_pb2.Status | None:
    if not error:
        return None
    details = []
    if error.get("reason"):
        packed = any_pb2.Any()
        packed.Pack(
            error_details_pb2.ErrorInfo(reason=error["reason"], domain=ERROR_DOMAIN, metadata=error.get("metadata", {}))
        )
        details.append(packed)
    return status_pb2.Status(code=error["code"], message=error["message"], details=details)


def _plan(stored: PlanRow, spec: dict | None) -> conductor_pb2.Plan:
    plan = conductor_pb2.Plan(
        name=stored.name,
        version=stored.version,
        sha256=stored.sha256,
        create_subject=stored.create_subject,
        create_time=_timestamp(stored.created_at),
    )
    if spec is not None:
        json_format.ParseDict(spec, plan.spec)
        plan.source = stored.source
        plan.source_format = _FORMAT_NUMBERS[stored.source_format]
    return plan


def _step(step: StepRow, full: bool) -> conductor_pb2.StepRun:
    message = conductor_pb2.StepRun(
        step_id=step.step_id,
        state=f"STEP_STATE_{step.state}",
        method=step.method,
        attempts=step.attempts,
        error=_status(step.error),
        awaited_keys=list(step.awaited_keys) if step.state == "WAITING" else [],
        start_time=_timestamp(step.started_at),
        end_time=_timestamp(step.ended_at),
    )
    if step.total:
        message.progress.CopyFrom(common_pb2.Progress(completed=step.completed, total=step.total, failed=step.failed))
    if full and step.state == "SUCCEEDED":
        message.output.CopyFrom(_value(step.output))
    return message


def _run(run: RunRow, full: bool = False) -> conductor_pb2.Run:
    context = run.context
    message = conductor_pb2.Run(
        id=run.id,
        plan_name=run.plan_name,
        plan_version=run.plan_version,
        state=f"RUN_STATE_{run.state}",
        steps=[_step(step, full) for step in run.steps],
        context=common_pb2.GovernanceContext(
            principal=common_pb2.Principal(subject=context["subject"], tenant=run.tenant, roles=context["roles"]),
            purpose=context["purpose"],
            data_class=data_class_message(gov.DataClass[context["data_class"]]),
        ),
        error=_status(run.error),
        resumed_from_run_id=run.resumed_from or "",
        labels=run.labels,
        trace_id=run.trace_id,
        create_time=_timestamp(run.created_at),
        start_time=_timestamp(run.started_at),
        end_time=_timestamp(run.ended_at),
        deadline=_timestamp(run.deadline),
    )
    if full:
        message.inputs.CopyFrom(_struct(run.inputs))
        if run.outputs is not None:
            message.outputs.CopyFrom(_struct(run.outputs))
    return message


def _event(stored: StoredEvent) -> conductor_pb2.RunEvent:
    event = stored.event
    message = conductor_pb2.RunEvent(
        sequence=stored.sequence,
        time=_timestamp(stored.time),
        type=f"RUN_EVENT_TYPE_{event.type}",
        run_state=f"RUN_STATE_{event.run_state}",
        step_id=event.step_id,
        step_state=f"STEP_STATE_{event.step_state}" if event.step_state else None,
        attempt=event.attempt,
        signal_key=event.signal_key,
        error=_status(event.error),
    )
    if event.item_index is not None:
        message.item_index = event.item_index
    if event.progress:
        progress = event.progress
        message.progress.CopyFrom(
            common_pb2.Progress(
                completed=progress.get("completed"), total=progress.get("total"), failed=progress.get("failed")
            )
        )
    return message


def _audit(record: AuditRecord) -> conductor_pb2.AuditRecord:
    entry = record.entry
    message = conductor_pb2.AuditRecord(
        sequence=record.sequence,
        time=_timestamp(entry.time),
        principal=common_pb2.Principal(subject=entry.subject, tenant=record.tenant, roles=list(entry.roles)),
        purpose=entry.purpose,
        run_id=entry.run_id,
        plan_name=entry.plan_name,
        plan_version=entry.plan_version,
        step_id=entry.step_id,
        attempt=entry.attempt,
        target_method=entry.target_method,
        models=[common_pb2.ModelRef(id=model_id, version=version) for model_id, version in entry.models],
        data_class_in=data_class_message(gov.DataClass[entry.data_class_in]),
        data_class_out=data_class_message(gov.DataClass[entry.data_class_out]),
        request_sha256=entry.request_sha256,
        response_sha256=entry.response_sha256,
        decision=f"POLICY_DECISION_{entry.decision.value}",
        policy_rule=entry.policy_rule,
        redactions=[
            conductor_pb2.RedactionCount(kind=f"PII_KIND_{kind}", count=count)
            for kind, count in sorted(entry.redactions.items())
        ],
        status_code=grpc.StatusCode[entry.status_code].value[0] if entry.status_code else 0,
        trace_id=entry.trace_id,
        span_id=entry.span_id,
        previous_hash=record.previous_hash,
        record_hash=record.record_hash,
    )
    if entry.item_index is not None:
        message.item_index = entry.item_index
    return message


def _ledger(value: int) -> AuditLedger:
    return AuditLedger.ACCESSES if value == conductor_pb2.AUDIT_LEDGER_ACCESSES else AuditLedger.HOPS


def _data_class(name: str) -> common_pb2.DataClass:
    return data_class_message(gov.DataClass[name]) if name else common_pb2.DATA_CLASS_UNSPECIFIED


def _access(record: AccessRecord) -> conductor_pb2.AccessRecord:
    entry = record.entry
    return conductor_pb2.AccessRecord(
        sequence=record.sequence,
        time=_timestamp(entry.time),
        principal=common_pb2.Principal(subject=entry.principal, tenant=record.tenant, roles=list(entry.roles)),
        purpose=entry.purpose,
        method=entry.method,
        data_class_declared=_data_class(entry.data_class_declared),
        data_class_derived=_data_class(entry.data_class_derived),
        resources=list(entry.resources),
        records=entry.records,
        subjects=len(entry.subject_digests),
        models=[common_pb2.ModelRef(id=model_id, version=version) for model_id, version in entry.models],
        request_sha256=entry.request_sha256,
        response_sha256=entry.response_sha256,
        decision=f"POLICY_DECISION_{entry.decision}",
        reason=entry.reason,
        status_code=grpc.StatusCode[entry.status_code].value[0],
        request_id=entry.request_id,
        trace_id=entry.trace_id,
        span_id=entry.span_id,
        previous_hash=record.previous_hash,
        record_hash=record.record_hash,
        run_id=entry.run_id,
    )


def _verification(result: Verification) -> conductor_pb2.VerifyAuditResponse:
    kinds = {
        ChainBreak.ALTERED: conductor_pb2.CHAIN_BREAK_ALTERED,
        ChainBreak.INSERTED: conductor_pb2.CHAIN_BREAK_INSERTED,
        ChainBreak.DELETED: conductor_pb2.CHAIN_BREAK_DELETED,
        ChainBreak.TRUNCATED: conductor_pb2.CHAIN_BREAK_TRUNCATED,
    }
    return conductor_pb2.VerifyAuditResponse(
        intact=result.intact,
        records_checked=result.records_checked,
        first_broken_sequence=result.first_broken_sequence,
        break_kind=kinds[result.break_kind] if result.break_kind is not None else conductor_pb2.CHAIN_BREAK_UNSPECIFIED,
        head_sequence=result.head_sequence,
        head_hash=result.head_hash,
    )


def _trigger_spec(message: conductor_pb2.AlertTrigger) -> AlertTriggerSpec:
    return AlertTriggerSpec(
        name=message.name,
        watch=message.watch,
        all_watches=message.all_watches,
        plan_name=message.plan_name,
        plan_version=message.plan_version,
        alert_inputs=dict(message.alert_inputs),
        fixed_inputs=json_format.MessageToDict(message.fixed_inputs),
        kinds=_enum_names(conductor_pb2.AlertKind, message.kinds, "ALERT_KIND_", "trigger.kinds"),
    )


def _trigger(row: AlertTriggerRow) -> conductor_pb2.AlertTrigger:
    spec = row.spec
    return conductor_pb2.AlertTrigger(
        name=spec.name,
        watch=spec.watch,
        all_watches=spec.all_watches,
        plan_name=spec.plan_name,
        plan_version=spec.plan_version,
        alert_inputs=spec.alert_inputs,
        fixed_inputs=_struct(spec.fixed_inputs),
        kinds=[f"ALERT_KIND_{kind}" for kind in spec.kinds],
        purpose=row.purpose,
        data_class=data_class_message(gov.DataClass[row.data_class]),
        creator=common_pb2.Principal(subject=row.creator, tenant=row.tenant, roles=list(row.roles)),
        state=f"ALERT_TRIGGER_STATE_{row.state}",
        stop_reason=(row.stop_reason or {}).get("reason", ""),
        stop_message=(row.stop_reason or {}).get("message", ""),
        last_alert_sequence=row.last_sequence,
        runs_started=row.runs_started,
        create_time=_timestamp(row.created_at),
    )


def _response_plan(stored: StoredPlan) -> conductor_pb2.Plan:
    return _plan(stored.row, stored.plan.spec)


class ConductorServicer(conductor_pb2_grpc.ConductorServiceServicer):
    def __init__(self, core: ConductorCore) -> None:
        self._core = core

    async def RegisterPlan(
        self, request: conductor_pb2.RegisterPlanRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.RegisterPlanResponse:
        which = request.WhichOneof("plan")
        stored, created = await self._core.register_plan(
            current_call(),
            document=request.document if which == "document" else None,
            spec=json_format.MessageToDict(request.spec, preserving_proto_field_name=True) if which == "spec" else None,
            plan_format=_FORMATS.get(request.format),
            validate_only=request.validate_only,
        )
        return conductor_pb2.RegisterPlanResponse(plan=_response_plan(stored), created=created)

    async def GetPlan(
        self, request: conductor_pb2.GetPlanRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.GetPlanResponse:
        stored = await self._core.get_plan(current_call(), request.name, request.version)
        return conductor_pb2.GetPlanResponse(plan=_response_plan(stored))

    async def ListPlans(
        self, request: conductor_pb2.ListPlansRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ListPlansResponse:
        rows, token = await self._core.list_plans(current_call(), request.name, request.page_size, request.page_token)
        return conductor_pb2.ListPlansResponse(plans=[_plan(row, None) for row in rows], next_page_token=token)

    async def ExportPlan(
        self, request: conductor_pb2.ExportPlanRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ExportPlanResponse:
        plan_format = _FORMATS.get(request.format, "YAML")
        document, version = await self._core.export_plan(current_call(), request.name, request.version, plan_format)
        return conductor_pb2.ExportPlanResponse(document=document, format=_FORMAT_NUMBERS[plan_format], version=version)

    async def StartRun(
        self, request: conductor_pb2.StartRunRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.StartRunResponse:
        call = current_call()
        run = await self._core.start_run(
            call,
            plan_name=request.plan_name,
            plan_version=request.plan_version,
            inputs=json_format.MessageToDict(request.inputs),
            resume_from=request.resume_from_run_id,
            labels=dict(request.labels),
            deadline_seconds=request.deadline.ToTimedelta().total_seconds() if request.HasField("deadline") else None,
        )
        return conductor_pb2.StartRunResponse(run=_run(run))

    async def GetRun(
        self, request: conductor_pb2.GetRunRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.GetRunResponse:
        run = await self._core.get_run(current_call(), request.run_id)
        return conductor_pb2.GetRunResponse(run=_run(run, full=request.view == conductor_pb2.RUN_VIEW_FULL))

    async def ListRuns(
        self, request: conductor_pb2.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ListRunsResponse:
        where = RunFilter(
            plan_name=request.plan_name,
            states=_enum_names(conductor_pb2.RunState, request.states, "RUN_STATE_", "states"),
            created_after=_datetime(request.start_time, request.HasField("start_time")),
            created_before=_datetime(request.end_time, request.HasField("end_time")),
            labels=dict(request.labels),
        )
        runs, token = await self._core.list_runs(current_call(), where, request.page_size, request.page_token)
        return conductor_pb2.ListRunsResponse(runs=[_run(run) for run in runs], next_page_token=token)

    async def WatchRun(
        self, request: conductor_pb2.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[conductor_pb2.WatchRunResponse]:
        async for stored in self._core.watch_run(current_call(), request.run_id, request.after_sequence):
            yield conductor_pb2.WatchRunResponse(event=_event(stored))

    async def CancelRun(
        self, request: conductor_pb2.CancelRunRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.CancelRunResponse:
        run = await self._core.cancel_run(current_call(), request.run_id, request.reason)
        return conductor_pb2.CancelRunResponse(run=_run(run))

    async def Signal(
        self, request: conductor_pb2.SignalRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.SignalResponse:
        outcome, state = await self._core.signal(
            current_call(),
            request.run_id,
            request.key,
            json_format.MessageToDict(request.payload),
            request.capability,
        )
        return conductor_pb2.SignalResponse(
            disposition=f"SIGNAL_DISPOSITION_{outcome}",
            run_state=f"RUN_STATE_{state}",
        )

    async def ListAudit(
        self, request: conductor_pb2.ListAuditRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ListAuditResponse:
        query = AuditQuery(
            ledger=_ledger(request.ledger),
            run_id=request.run_id,
            start=_datetime(request.start_time, request.HasField("start_time")),
            end=_datetime(request.end_time, request.HasField("end_time")),
            target=request.target,
            decision=_enum_names(
                conductor_pb2.PolicyDecision, [request.decision], "POLICY_DECISION_", "decision", repeated=False
            )[0]
            if request.decision
            else "",
            subject_id=request.subject_id,
            collection=request.collection,
            principal=request.principal,
        )
        records, token = await self._core.list_audit(
            current_call(), query, page_size=request.page_size, page_token=request.page_token
        )
        if query.ledger == AuditLedger.ACCESSES:
            return conductor_pb2.ListAuditResponse(
                accesses=[_access(record) for record in records], next_page_token=token
            )
        return conductor_pb2.ListAuditResponse(records=[_audit(record) for record in records], next_page_token=token)

    async def VerifyAudit(
        self, request: conductor_pb2.VerifyAuditRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.VerifyAuditResponse:
        result = await self._core.verify_audit(
            current_call(), _ledger(request.ledger), request.from_sequence, request.expected_head_hash
        )
        return _verification(result)

    async def EraseSubject(
        self, request: conductor_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.EraseSubjectResponse:
        call = current_call()
        outcomes = await self._core.erase_subject(call, call.bearer_token, request.subject_id)
        return conductor_pb2.EraseSubjectResponse(
            stores=[
                conductor_pb2.StoreErasure(
                    store=outcome.store,
                    erased_records=outcome.erased_records,
                    status=status_pb2.Status(code=outcome.code.value[0], message=outcome.message),
                    erased_by_kind=outcome.erased_by_kind,
                )
                for outcome in outcomes
            ],
            complete=all(outcome.code == grpc.StatusCode.OK for outcome in outcomes),
        )

    async def RevokePrincipal(
        self, request: conductor_pb2.RevokePrincipalRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.RevokePrincipalResponse:
        revocation, active_runs = await self._core.revoke_principal(current_call(), request.subject, request.reason)
        return conductor_pb2.RevokePrincipalResponse(
            revocation=conductor_pb2.PrincipalRevocation(
                subject=revocation.subject,
                reason=revocation.reason,
                revoked_by=revocation.revoked_by,
                revoke_time=_timestamp(revocation.revoked_at),
            ),
            active_runs=active_runs,
        )

    async def ReinstatePrincipal(
        self, request: conductor_pb2.ReinstatePrincipalRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ReinstatePrincipalResponse:
        reinstated = await self._core.reinstate_principal(current_call(), request.subject)
        return conductor_pb2.ReinstatePrincipalResponse(reinstated=reinstated)

    async def GetDataMap(
        self, request: conductor_pb2.GetDataMapRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.GetDataMapResponse:
        call = current_call()
        stores, accesses = await self._core.data_map(call, call.bearer_token, request.subject_id)
        report_records(
            exported_classes([holding for store in stores for holding in store.holdings]),
            subjects=[request.subject_id],
        )
        return conductor_pb2.GetDataMapResponse(
            subject_id=request.subject_id,
            stores=[
                conductor_pb2.StoreDataMap(
                    store=store.store,
                    status=status_pb2.Status(code=store.code.value[0], message=store.message),
                    holdings=holding_messages(store.holdings),
                )
                for store in stores
            ],
            complete=all(store.code == grpc.StatusCode.OK for store in stores),
            accesses=[_access(record) for record in accesses],
        )

    async def ListCapabilities(
        self, request: conductor_pb2.ListCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ListCapabilitiesResponse:
        capabilities = await self._core.list_capabilities(current_call())
        return conductor_pb2.ListCapabilitiesResponse(
            capabilities=[
                conductor_pb2.Capability(
                    service=capability.service,
                    methods=[method.name for method in capability.methods if method.unary],
                    clearance=data_class_message(capability.clearance.max_data_class),
                    inside_trust_boundary=capability.clearance.inside_trust_boundary,
                    serving=serving,
                )
                for capability, serving in capabilities
            ]
        )

    async def CreateAlertTrigger(
        self, request: conductor_pb2.CreateAlertTriggerRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.CreateAlertTriggerResponse:
        row = await self._core.create_trigger(current_call(), _trigger_spec(request.trigger))
        return conductor_pb2.CreateAlertTriggerResponse(trigger=_trigger(row))

    async def GetAlertTrigger(
        self, request: conductor_pb2.GetAlertTriggerRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.GetAlertTriggerResponse:
        row = await self._core.get_trigger(current_call(), request.name)
        return conductor_pb2.GetAlertTriggerResponse(trigger=_trigger(row))

    async def ListAlertTriggers(
        self, request: conductor_pb2.ListAlertTriggersRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.ListAlertTriggersResponse:
        rows, token = await self._core.list_triggers(current_call(), request.page_size, request.page_token)
        return conductor_pb2.ListAlertTriggersResponse(triggers=[_trigger(row) for row in rows], next_page_token=token)

    async def DeleteAlertTrigger(
        self, request: conductor_pb2.DeleteAlertTriggerRequest, context: grpc.aio.ServicerContext
    ) -> conductor_pb2.DeleteAlertTriggerResponse:
        runs_started = await self._core.delete_trigger(current_call(), request.name)
        return conductor_pb2.DeleteAlertTriggerResponse(runs_started=runs_started)
