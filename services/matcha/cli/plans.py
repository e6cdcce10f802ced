"""`matcha plan register` and `install`, `matcha run PLAN` (live progress from WatchRun), `matcha run show`,
`matcha trigger` (a plan started on every alert of a listening watch), `matcha audit`."""

import json
from pathlib import Path

import click
from google.protobuf import json_format
from tqdm import tqdm

from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.mesh import CONDUCTOR
from matcha.plans import install_plans

DEFAULT_TARGET = CONDUCTOR.local_address
TERMINAL_STATES = {
    conductor_pb2.RUN_STATE_SUCCEEDED,
    conductor_pb2.RUN_STATE_FAILED,
    conductor_pb2.RUN_STATE_CANCELLED,
}
STEP_DONE_EVENTS = {
    conductor_pb2.RUN_EVENT_TYPE_STEP_SUCCEEDED,
    conductor_pb2.RUN_EVENT_TYPE_STEP_SKIPPED,
    conductor_pb2.RUN_EVENT_TYPE_STEP_FAILED,
}


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)


def parse_inputs(pairs: tuple[str, ...]) -> dict:
    """`k=v` pairs; a value that parses as JSON is taken as JSON (numbers, lists), otherwise as text."""
    inputs = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--input")
        try:
            inputs[key] = json.loads(value)
        except json.JSONDecodeError:
            inputs[key] = value
    return inputs


class RunGroup(click.Group):
    """`matcha run PLAN ...` starts a run; `matcha run show ID` shows one."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group()
def plan() -> None:
    """Orchestration plans (YAML or JSON)."""


@plan.command("register")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@connection_options(DEFAULT_TARGET)
@run_async
async def register(path: Path, **options) -> None:
    """Validate and store a plan; the same name again makes a new version."""
    document = path.read_text()  # noqa: ASYNC240 (a command-line tool reading its one input file)
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).RegisterPlan(
            conductor_pb2.RegisterPlanRequest(document=document)
        )
    state = "registered" if reply.created else "unchanged, already"
    click.echo(f"plan {reply.plan.name!r} {state} as version {reply.plan.version}")


@plan.command("install")
@connection_options(DEFAULT_TARGET)
@run_async
async def install(**options) -> None:
    """Register the plans shipped with Matcha (segment-campaign, win-back, listening-response) for the tenant
    of the token (--tenant for a local one); an unchanged plan keeps its version."""
    async with channel_from(options) as channel:
        installed = await install_plans(conductor_pb2_grpc.ConductorServiceStub(channel))
    for plan_version in installed:
        state = "registered" if plan_version.created else "unchanged"
        click.echo(f"plan {plan_version.name!r} {state}: version {plan_version.version}")


@click.group(cls=RunGroup)
def run() -> None:
    """Start a plan's run and follow it, or show a run."""


@run.command("start")
@click.argument("plan_name")
@click.option("--input", "pairs", multiple=True, help="plan input as key=value (repeatable)")
@click.option("--version", "plan_version", type=int, default=0, help="plan version (latest when 0)")
@connection_options(DEFAULT_TARGET)
@run_async
async def start(plan_name: str, pairs: tuple[str, ...], plan_version: int, **options) -> None:
    """Start PLAN_NAME and follow its progress until it ends or waits for a signal."""
    request = conductor_pb2.StartRunRequest(plan_name=plan_name, plan_version=plan_version)
    request.inputs.update(parse_inputs(pairs))
    async with channel_from(options) as channel:
        stub = conductor_pb2_grpc.ConductorServiceStub(channel)
        started = (await stub.StartRun(request)).run
        click.echo(f"run {started.id} of {started.plan_name} v{started.plan_version}")
        bar = tqdm(total=len(started.steps) or None, unit="step", desc=started.plan_name)
        try:
            async for message in stub.WatchRun(conductor_pb2.WatchRunRequest(run_id=started.id)):
                event = message.event
                if event.type in STEP_DONE_EVENTS and not event.HasField("item_index"):
                    bar.update(1)
                if event.type == conductor_pb2.RUN_EVENT_TYPE_STEP_WAITING:
                    bar.write(f"step {event.step_id} waits for signal {event.signal_key!r}")
                    break
                if event.run_state in TERMINAL_STATES:
                    break
        finally:
            bar.close()
        final = (
            await stub.GetRun(conductor_pb2.GetRunRequest(run_id=started.id, view=conductor_pb2.RUN_VIEW_FULL))
        ).run
    click.echo(f"run {final.id}: {_name(conductor_pb2.RunState, final.state, 'RUN_STATE_')}")
    if final.state == conductor_pb2.RUN_STATE_SUCCEEDED:
        click.echo(json.dumps(json_format.MessageToDict(final.outputs), indent=2, ensure_ascii=False))
    elif final.state == conductor_pb2.RUN_STATE_FAILED:
        raise click.ClickException(f"run failed: {final.error.message}")


@run.command("show")
@click.argument("run_id")
@connection_options(DEFAULT_TARGET)
@run_async
async def show(run_id: str, **options) -> None:
    """A run's state, steps and outputs."""
    async with channel_from(options) as channel:
        found = (
            await conductor_pb2_grpc.ConductorServiceStub(channel).GetRun(
                conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL)
            )
        ).run
    click.echo(
        f"run {found.id} of {found.plan_name} v{found.plan_version}: "
        f"{_name(conductor_pb2.RunState, found.state, 'RUN_STATE_')} (trace {found.trace_id})"
    )
    for step in found.steps:
        click.echo(f"  {step.step_id:<20} {_name(conductor_pb2.StepState, step.state, 'STEP_STATE_')}")
    if found.outputs.fields:
        click.echo(json.dumps(json_format.MessageToDict(found.outputs), indent=2, ensure_ascii=False))
    if found.error.message:
        click.echo(f"error: {found.error.message}")


@click.group()
def trigger() -> None:
    """Alert triggers: a run of a plan started on every alert of a listening watch, acting for you."""


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        name, separator, field = pair.partition("=")
        if not separator or not name or not field:
            raise click.BadParameter(f"{pair!r} is not input=alert_field", param_hint="--map")
        mapping[name] = field
    return mapping


def trigger_lines(found: conductor_pb2.AlertTrigger) -> list[str]:
    state = _name(conductor_pb2.AlertTriggerState, found.state, "ALERT_TRIGGER_STATE_")
    watch = "every watch" if found.all_watches else f"watch {found.watch}"
    version = f"v{found.plan_version}" if found.plan_version else "latest"
    kinds = ", ".join(_name(conductor_pb2.AlertKind, kind, "ALERT_KIND_") for kind in found.kinds) or "every alert"
    lines = [
        f"{found.name}: {state}, {watch} ({kinds}) -> {found.plan_name} {version}, for {found.creator.subject}",
        f"  runs started {found.runs_started}, last alert {found.last_alert_sequence}",
    ]
    lines += [f"  input {name} <- alert {field}" for name, field in sorted(found.alert_inputs.items())]
    fixed = json_format.MessageToDict(found.fixed_inputs)
    lines += [f"  input {name} = {json.dumps(value, ensure_ascii=False)}" for name, value in sorted(fixed.items())]
    if found.stop_reason:
        lines.append(f"  stopped ({found.stop_reason}): {found.stop_message}")
    return lines


@trigger.command("create")
@click.argument("name")
@click.option("--plan", "plan_name", required=True, help="plan to run on each alert")
@click.option("--version", "plan_version", type=int, default=0, help="plan version (the latest at each run when 0)")
@click.option("--watch", default="", help="the watch whose alerts start runs")
@click.option("--all-watches", is_flag=True, help="every watch of the tenant instead of one")
@click.option("--map", "mapping", multiple=True, help="input=alert_field, e.g. topic=topic (repeatable)")
@click.option("--input", "pairs", multiple=True, help="fixed plan input as key=value (repeatable)")
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(["new-signal", "sentiment-shift"]), help="only these alerts"
)
@connection_options(DEFAULT_TARGET, purpose="listening")
@run_async
async def create_trigger(
    name: str,
    plan_name: str,
    plan_version: int,
    watch: str,
    all_watches: bool,
    mapping: tuple[str, ...],
    pairs: tuple[str, ...],
    kinds: tuple[str, ...],
    **options,
) -> None:
    """Start PLAN on every new alert of a watch, once per alert, as you (with the roles you hold now)."""
    message = conductor_pb2.AlertTrigger(
        name=name,
        watch=watch,
        all_watches=all_watches,
        plan_name=plan_name,
        plan_version=plan_version,
        alert_inputs=_mapping(mapping),
        kinds=[f"ALERT_KIND_{kind.upper().replace('-', '_')}" for kind in kinds],
    )
    message.fixed_inputs.update(parse_inputs(pairs))
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).CreateAlertTrigger(
            conductor_pb2.CreateAlertTriggerRequest(trigger=message)
        )
    click.echo("\n".join(trigger_lines(reply.trigger)))


@trigger.command("list")
@connection_options(DEFAULT_TARGET, purpose="listening")
@run_async
async def list_triggers(**options) -> None:
    """The tenant's alert triggers, with their state and the runs they started."""
    async with channel_from(options) as channel:
        stub = conductor_pb2_grpc.ConductorServiceStub(channel)
        token = ""
        while True:
            reply = await stub.ListAlertTriggers(conductor_pb2.ListAlertTriggersRequest(page_token=token))
            for found in reply.triggers:
                click.echo("\n".join(trigger_lines(found)))
            token = reply.next_page_token
            if not token:
                break


@trigger.command("show")
@click.argument("name")
@connection_options(DEFAULT_TARGET, purpose="listening")
@run_async
async def show_trigger(name: str, **options) -> None:
    """One alert trigger, and why it stopped if it did."""
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).GetAlertTrigger(
            conductor_pb2.GetAlertTriggerRequest(name=name)
        )
    click.echo("\n".join(trigger_lines(reply.trigger)))


@trigger.command("delete")
@click.argument("name")
@connection_options(DEFAULT_TARGET, purpose="listening")
@run_async
async def delete_trigger(name: str, **options) -> None:
    """Stop starting runs on alerts; the runs already started go on."""
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).DeleteAlertTrigger(
            conductor_pb2.DeleteAlertTriggerRequest(name=name)
        )
    click.echo(f"alert trigger {name!r} deleted; it had started {reply.runs_started} runs")


@click.group()
def audit() -> None:
    """The audit ledgers: one hash-chained row per hop of a run, and one per access any service served."""


def print_accesses(accesses) -> None:
    for access in accesses:
        decision = _name(conductor_pb2.PolicyDecision, access.decision, "POLICY_DECISION_")
        declared, derived = (
            _name(common_pb2.DataClass, value, "DATA_CLASS_") if value else "-"
            for value in (access.data_class_declared, access.data_class_derived)
        )
        click.echo(
            f"{access.sequence:>6} {access.time.ToDatetime():%Y-%m-%d %H:%M:%S} {access.principal.subject:<12} "
            f"{access.purpose:<10} {access.method:<55} {decision} {access.reason or ''} "
            f"declared {declared} returned {derived} records {access.records} "
            f"{' '.join(access.resources)}".rstrip()
        )


@audit.command("list")
@click.option("--run", "run_id", default="", help="only this run's hops")
@click.option("--accesses", is_flag=True, help="the accesses ledger (every call any service served) instead of hops")
@click.option("--collection", default="", help="only accesses that named this collection (with --accesses)")
@click.option("--principal", default="", help="only accesses by this principal (with --accesses)")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@connection_options(DEFAULT_TARGET)
@run_async
async def list_records(run_id: str, accesses: bool, collection: str, principal: str, limit: int, **options) -> None:
    """Ledger rows: who sent which data class to which method, under which decision."""
    request = conductor_pb2.ListAuditRequest(run_id=run_id, page_size=limit)
    if accesses:
        request.ledger = conductor_pb2.AUDIT_LEDGER_ACCESSES
        request.collection, request.principal = collection, principal
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).ListAudit(request)
    print_accesses(reply.accesses)
    for record in reply.records:
        models = ", ".join(f"{model.id} {model.version}" for model in record.models) or "-"
        click.echo(
            f"{record.sequence:>6} {record.time.ToDatetime():%Y-%m-%d %H:%M:%S} {record.principal.subject:<12} "
            f"{record.purpose:<10} {record.target_method or record.step_id:<50} "
            f"{_name(conductor_pb2.PolicyDecision, record.decision, 'POLICY_DECISION_')} "
            f"in {_name(common_pb2.DataClass, record.data_class_in, 'DATA_CLASS_')} "
            f"out {_name(common_pb2.DataClass, record.data_class_out, 'DATA_CLASS_')} model {models}"
        )


@audit.command("who-accessed")
@click.argument("subject_id")
@click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
@connection_options(DEFAULT_TARGET)
@run_async
async def who_accessed(subject_id: str, limit: int, **options) -> None:
    """Every call that returned or wrote records of SUBJECT_ID: by whom, for which purpose, when, through which
    service and model."""
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).ListAudit(
            conductor_pb2.ListAuditRequest(
                ledger=conductor_pb2.AUDIT_LEDGER_ACCESSES, subject_id=subject_id, page_size=limit
            )
        )
    if not reply.accesses:
        click.echo(f"no access to {subject_id}'s records is on the record")
    print_accesses(reply.accesses)


@audit.command("verify")
@click.option("--expected-head", default="", help="head hash kept outside the database (detects truncation)")
@click.option("--accesses", is_flag=True, help="verify the accesses ledger (the hops ledger otherwise)")
@connection_options(DEFAULT_TARGET)
@run_async
async def verify(expected_head: str, accesses: bool, **options) -> None:
    """Recompute the keyed hash chain; report the first broken link."""
    ledger = conductor_pb2.AUDIT_LEDGER_ACCESSES if accesses else conductor_pb2.AUDIT_LEDGER_HOPS
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).VerifyAudit(
            conductor_pb2.VerifyAuditRequest(expected_head_hash=expected_head, ledger=ledger)
        )
    name = "accesses ledger" if accesses else "ledger"
    if not reply.intact:
        raise click.ClickException(
            f"{name} broken at sequence {reply.first_broken_sequence}: "
            f"{_name(conductor_pb2.ChainBreak, reply.break_kind, 'CHAIN_BREAK_')} "
            f"({reply.records_checked} records checked)"
        )
    click.echo(f"{name} intact: {reply.records_checked} records, head {reply.head_sequence} {reply.head_hash}")
