"""Alert triggers against the real classification service (a watch whose windows close every few seconds) and
real conductors: an alert starts one run with the mapped inputs, acting for the trigger's creator; a replay, a
restart and a second replica start no second run; a trigger starts after the watch's latest alert; a sentiment
shift gives its tracked topic's terms and posts; a revoked creator's trigger stops and starts nothing, as does one
whose watch is deleted; bad triggers are refused."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from click.testing import CliRunner

from matcha.classification.app import SERVICE_NAME as CLASSIFICATION_SERVICE
from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2 as cpb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.cli.main import cli
from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2 as pb
from matcha.conductor.v1 import conductor_pb2_grpc
from matcha.runtime.server import MatchaServer
from tests.classification.listening_support import COMPLAINTS, PRAISE, RECALL, seconds, stamp
from tests.conductor.support import EMBEDDING_SERVICE
from tests.support import refused, struct

PLAN = """
name: alert-brief
purposes: [listening]
inputs:
  - {name: brand, type: string, required: true}
  - {name: watch, type: string, required: true}
  - {name: sequence, type: integer, required: true}
  - {name: kind, type: string, default_value: ""}
  - {name: topic, type: string, default_value: ""}
  - {name: post_texts, type: list, required: true}
steps:
  - id: review
    await: {roles: [reviewer]}
"""
MAPPING = {"watch": "watch", "sequence": "sequence", "kind": "kind", "topic": "topic", "post_texts": "post_texts"}
SHIPPED_PLAN = Path(__file__).parents[2] / "services" / "matcha" / "plans" / "listening-response.yaml"


@pytest.fixture(scope="module")
async def watch_server(postgres_url, state_dir, serve, local_encoder) -> AsyncIterator[MatchaServer]:
    settings = ClassificationSettings(
        database_url=postgres_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        classification_alert_poll_seconds=0.5,
        classification_watch_lease_seconds=3.0,
    )
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
def conductor_on(conductor_settings, serve, embedding_server, watch_server, isolated_database):
    """`async with conductor_on() as server`: a conductor replica on this test's database, whose capabilities are
    the embedding service and the watches' classification service."""

    def start():
        settings = conductor_settings(
            database_url=isolated_database,
            conductor_endpoints={
                EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}",
                CLASSIFICATION_SERVICE: f"127.0.0.1:{watch_server.port}",
            },
        )
        return serve(build_conductor_service(settings), settings)

    return start


@pytest.fixture
def listening(watch_server, connect, tenant):
    def make(**kwargs) -> classification_pb2_grpc.ClassificationServiceStub:
        return classification_pb2_grpc.ClassificationServiceStub(
            connect(watch_server, tenant, purpose="listening", **kwargs)
        )

    return make


@pytest.fixture
def conductor(connect, tenant):
    """`conductor(server, subject=..., roles=..., purpose=...)`: a stub of the tenant, purpose listening."""

    def make(server, **kwargs) -> conductor_pb2_grpc.ConductorServiceStub:
        options = {"purpose": "listening", **kwargs}
        return conductor_pb2_grpc.ConductorServiceStub(connect(server, tenant, **options))

    return make


async def make_watch(stub, name: str, **fields) -> cpb.Watch:
    created = await stub.CreateWatch(
        cpb.CreateWatchRequest(
            watch=cpb.Watch(
                name=name,
                sources=[cpb.WatchSource(name="api", push=cpb.PushSource())],
                window=seconds(2.0),
                look_back_windows=4,
                thresholds=cpb.SignalThresholds(min_topic_size=3),
                **fields,
            )
        )
    )
    return created.watch


async def complain(stub, watch: str, texts: list[str] = COMPLAINTS, at: datetime | None = None) -> None:
    """Posts that make a strong new signal when their window closes, a few seconds from now."""
    moment = at or datetime.now(UTC)
    prefix = "c" if texts is COMPLAINTS else texts[0].split()[0].lower()
    posts = [cpb.WatchPost(id=f"{prefix}-{i}", text=text, time=stamp(moment)) for i, text in enumerate(texts)]
    await stub.IngestPosts(cpb.IngestPostsRequest(watch=watch, posts=posts))


async def window_alerts(stub, watch: str, after: int = 0) -> list[cpb.WatchAlert]:
    """The alerts of the first window that raised any after the sequence `after` (stored together, with its
    report)."""
    request = cpb.WatchAlertsRequest(watch=watch, after_sequence=after, from_start=not after)
    stream = stub.WatchAlerts(request)
    async with asyncio.timeout(30):
        first = (await stream.read()).alert
    stream.cancel()
    reports = await stub.ListWatchReports(cpb.ListWatchReportsRequest(watch=watch, page_size=100))
    (report,) = [report for report in reports.reports if report.window_end == first.window_end]
    stream = stub.WatchAlerts(request)
    async with asyncio.timeout(10):
        alerts = [(await stream.read()).alert for _ in range(report.alert_count)]
    stream.cancel()
    return alerts


def trigger(name: str, watch: str = "brand", **fields) -> pb.AlertTrigger:
    values = {
        "plan_name": "alert-brief",
        "alert_inputs": MAPPING,
        "fixed_inputs": struct({"brand": "Acme"}),
        **fields,
    }
    return pb.AlertTrigger(name=name, watch=watch, **values)


async def runs_of(stub, name: str, at_least: int = 0) -> list[pb.Run]:
    """The trigger's runs; none until there are `at_least`."""
    reply = await stub.ListRuns(pb.ListRunsRequest(labels={"alert-trigger": name}))
    return list(reply.runs) if len(reply.runs) >= at_least else []


async def invoke(*args: str):
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def eventually(probe, within: float = 20.0):
    """The probe's first truthy answer."""
    async with asyncio.timeout(within):
        while not (answer := await probe()):  # noqa: ASYNC110 (polling the public API)
            await asyncio.sleep(0.2)
    return answer


async def test_an_alert_starts_one_run_once_across_replays_restarts_and_replicas(
    conductor_on, conductor, listening, isolated_database
):
    stub = listening()
    await make_watch(stub, "brand")
    async with conductor_on() as first:
        client = conductor(first)
        await client.RegisterPlan(pb.RegisterPlanRequest(document=PLAN))
        created = (
            await client.CreateAlertTrigger(
                pb.CreateAlertTriggerRequest(trigger=trigger("briefs", kinds=[pb.ALERT_KIND_NEW_SIGNAL]))
            )
        ).trigger
        assert created.state == pb.ALERT_TRIGGER_STATE_ACTIVE
        assert (created.creator.subject, created.purpose) == ("user-1", "listening")
        await complain(stub, "brand")
        alerts = await window_alerts(stub, "brand")
        assert {alert.type for alert in alerts} == {cpb.ALERT_TYPE_NEW_SIGNAL}

        started = await eventually(lambda: runs_of(client, "briefs", len(alerts)))
        by_sequence = {int(run.labels["alert-sequence"]): run for run in started}
        assert sorted(by_sequence) == sorted(alert.sequence for alert in alerts)
        for alert in alerts:
            run_id = by_sequence[alert.sequence].id
            run = (await client.GetRun(pb.GetRunRequest(run_id=run_id, view=pb.RUN_VIEW_FULL))).run
            inputs = dict(run.inputs)
            assert inputs["brand"] == "Acme" and inputs["watch"] == "brand" and inputs["kind"] == "NEW_SIGNAL"
            assert int(inputs["sequence"]) == alert.sequence
            assert inputs["topic"] == alert.topic.label
            assert list(inputs["post_texts"]) == [post.text for post in alert.topic.representative_posts]
            assert inputs["post_texts"] and set(inputs["post_texts"]) <= set(COMPLAINTS)
            # Governed like a run its creator started: their principal and roles, the purpose listening.
            assert run.context.principal.subject == "user-1" and run.context.purpose == "listening"
            assert set(run.context.principal.roles) == {"analyst", "author", "operator"}
        last = max(alert.sequence for alert in alerts)
        shown = (await client.GetAlertTrigger(pb.GetAlertTriggerRequest(name="briefs"))).trigger
        assert (shown.last_alert_sequence, shown.runs_started) == (last, len(alerts))

    # The cursor lost (as if the process had died before it moved): the alerts are replayed from the start by
    # two replicas at once, and the alert's run is found by its key, not started again.
    database = await asyncpg.connect(isolated_database)
    try:
        await database.execute("UPDATE conductor_alert_triggers SET last_sequence = 0, lease_owner = NULL")
    finally:
        await database.close()
    async with conductor_on() as second, conductor_on() as third:
        client = conductor(second)

        async def caught_up():
            found = (await client.GetAlertTrigger(pb.GetAlertTriggerRequest(name="briefs"))).trigger
            return found.last_alert_sequence == last

        await eventually(caught_up)
        again = await runs_of(conductor(third), "briefs")
        assert sorted(run.id for run in again) == sorted(run.id for run in started)
        shown = (await client.GetAlertTrigger(pb.GetAlertTriggerRequest(name="briefs"))).trigger
        assert shown.runs_started == len(alerts) and shown.state == pb.ALERT_TRIGGER_STATE_ACTIVE
        deleted = await client.DeleteAlertTrigger(pb.DeleteAlertTriggerRequest(name="briefs"))
        assert deleted.runs_started == len(alerts)
        listed = await client.ListAlertTriggers(pb.ListAlertTriggersRequest())
        assert list(listed.triggers) == []


async def test_a_revoked_creator_s_trigger_stops_and_starts_no_run(
    conductor_on, conductor, listening, isolated_database
):
    stub = listening()
    await make_watch(stub, "brand")
    async with conductor_on() as server:
        author = conductor(server)
        await author.RegisterPlan(pb.RegisterPlanRequest(document=PLAN))
        for subject, name in (("user-1", "revoked"), ("user-4", "revoked-behind"), ("user-3", "control")):
            await conductor(server, subject=subject).CreateAlertTrigger(
                pb.CreateAlertTriggerRequest(trigger=trigger(name))
            )
        # A plan whose next version wants an input the trigger does not give.
        changing = PLAN.replace("name: alert-brief", "name: changing")
        await author.RegisterPlan(pb.RegisterPlanRequest(document=changing))
        await conductor(server, subject="user-3").CreateAlertTrigger(
            pb.CreateAlertTriggerRequest(trigger=trigger("stale", plan_name="changing"))
        )
        region = "  - {name: region, type: string, required: true}\nsteps:"
        await author.RegisterPlan(pb.RegisterPlanRequest(document=changing.replace("steps:", region)))
        admin = conductor(server, subject="admin-1", roles=("admin",))
        await admin.RevokePrincipal(pb.RevokePrincipalRequest(subject="user-1", reason="left the company"))
        stopped = (await author.GetAlertTrigger(pb.GetAlertTriggerRequest(name="revoked"))).trigger
        assert stopped.state == pb.ALERT_TRIGGER_STATE_STOPPED
        assert stopped.stop_reason == "PRINCIPAL_REVOKED" and "user-1" in stopped.stop_message
        # A revocation the trigger was not told of (written past the RPC): the run's start refuses it anyway.
        database = await asyncpg.connect(isolated_database)
        try:
            await database.execute(
                """INSERT INTO conductor_revoked_principals (tenant, subject, reason, revoked_by)
                   SELECT tenant, 'user-4', 'compromised', 'admin-1' FROM conductor_alert_triggers LIMIT 1"""
            )
        finally:
            await database.close()
        # The revoked creator cannot make another.
        details = await refused(
            conductor(server).CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=trigger("again"))),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert details.reason == "PRINCIPAL_REVOKED"

        await complain(stub, "brand")
        await window_alerts(stub, "brand")
        control = await eventually(lambda: runs_of(author, "control"))
        assert len(control) >= 1 and control[0].context.principal.subject == "user-3"

        async def stopped_behind():
            found = (await author.GetAlertTrigger(pb.GetAlertTriggerRequest(name="revoked-behind"))).trigger
            return found if found.state == pb.ALERT_TRIGGER_STATE_STOPPED else None

        behind = await eventually(stopped_behind)
        assert behind.stop_reason == "PRINCIPAL_REVOKED" and "user-4" in behind.stop_message
        assert behind.runs_started == 0

        async def stale_stopped():
            found = (await author.GetAlertTrigger(pb.GetAlertTriggerRequest(name="stale"))).trigger
            return found if found.state == pb.ALERT_TRIGGER_STATE_STOPPED else None

        stale = await eventually(stale_stopped)
        assert stale.stop_reason == "INPUTS_REJECTED" and "region" in stale.stop_message
        assert await runs_of(author, "stale") == []
        await asyncio.sleep(1.0)  # as long again as the control needed, for a run that should not exist
        assert await runs_of(author, "revoked") == []
        assert await runs_of(author, "revoked-behind") == []
        every_run = (await author.ListRuns(pb.ListRunsRequest())).runs
        assert {run.labels["alert-trigger"] for run in every_run} == {"control"}
        final = (await author.GetAlertTrigger(pb.GetAlertTriggerRequest(name="revoked"))).trigger
        assert (final.state, final.runs_started, final.last_alert_sequence) == (pb.ALERT_TRIGGER_STATE_STOPPED, 0, 0)


async def test_bad_triggers_are_refused_with_what_is_wrong(conductor_on, conductor, listening, issuer, tenant):
    stub = listening()
    await make_watch(stub, "brand")
    async with conductor_on() as server:
        client = conductor(server)
        await client.RegisterPlan(pb.RegisterPlanRequest(document=PLAN))

        async def violations(bad: pb.AlertTrigger) -> dict[str, str]:
            details = await refused(client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=bad)))
            return details.field_violations

        assert "trigger.plan_name" in await violations(trigger("t", plan_name="no-such-plan"))
        assert "trigger.plan_version" in await violations(trigger("t", plan_version=7))
        found = await violations(
            trigger(
                "t",
                alert_inputs={**MAPPING, "nope": "watch", "brand": "post_ids", "kind": "mood"},
                fixed_inputs=struct({"sequence": 3}),
            )
        )
        assert "has no input 'nope'" in found["trigger.alert_inputs.nope"]
        assert "LIST" in found["trigger.alert_inputs.brand"]
        assert "unknown alert field 'mood'" in found["trigger.alert_inputs.kind"]
        assert "also fed by an alert field" in found["trigger.fixed_inputs.sequence"]
        found = await violations(trigger("t", alert_inputs={"watch": "watch"}, fixed_inputs=struct({"brand": 3})))
        assert "expected STRING" in found["trigger.fixed_inputs.brand"]
        assert {"trigger.fixed_inputs.sequence", "trigger.fixed_inputs.post_texts"} <= found.keys()
        assert "trigger.watch" in await violations(trigger("t", watch=""))
        assert "trigger.watch" in await violations(trigger("t", watch="brand", all_watches=True))
        assert "no watch 'elsewhere'" in (await violations(trigger("t", watch="elsewhere")))["trigger.watch"]
        assert "trigger.name" in await violations(trigger("Bad Name"))
        assert "trigger.kinds[0]" in await violations(trigger("t", kinds=[pb.ALERT_KIND_UNSPECIFIED]))
        assert "trigger.kinds[1]" in await violations(trigger("t", kinds=[pb.ALERT_KIND_NEW_SIGNAL, 42]))

        details = await refused(
            conductor(server, purpose="campaign").CreateAlertTrigger(
                pb.CreateAlertTriggerRequest(trigger=trigger("t"))
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert details.reason == "PURPOSE_MISMATCH"
        details = await refused(
            conductor(server, roles=("analyst",)).CreateAlertTrigger(
                pb.CreateAlertTriggerRequest(trigger=trigger("t"))
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert details.reason == "MISSING_ROLE"
        await client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=trigger("t")))
        details = await refused(
            client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=trigger("t"))),
            grpc.StatusCode.ALREADY_EXISTS,
        )
        assert details.reason == "ALERT_TRIGGER_EXISTS"
        for call in (
            client.GetAlertTrigger(pb.GetAlertTriggerRequest(name="missing")),
            client.DeleteAlertTrigger(pb.DeleteAlertTriggerRequest(name="missing")),
        ):
            assert (await refused(call, grpc.StatusCode.NOT_FOUND)).reason == "ALERT_TRIGGER_NOT_FOUND"

        # The shipped listening-response plan, on every watch: its collection, brand and voice are fixed, the
        # alert's topic goes to its own field; without a voice it could never start.
        await client.RegisterPlan(pb.RegisterPlanRequest(document=SHIPPED_PLAN.read_text()))
        response = pb.AlertTrigger(
            name="responses",
            all_watches=True,
            plan_name="listening-response",
            fixed_inputs=struct({"collection": "brand-posts", "brand": "Acme", "voice": "acme"}),
            kinds=[pb.ALERT_KIND_NEW_SIGNAL],
        )
        missing_voice = pb.AlertTrigger()
        missing_voice.CopyFrom(response)
        del missing_voice.fixed_inputs.fields["voice"]
        assert "trigger.fixed_inputs.voice" in await violations(missing_voice)
        made = (await client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=response))).trigger
        assert made.all_watches and made.watch == "" and made.state == pb.ALERT_TRIGGER_STATE_ACTIVE

        # The same from the command line.
        token = issuer.mint(subject="ana", tenant=tenant, roles=["analyst", "operator"])
        connection = ["--target", f"127.0.0.1:{server.port}", "--token", token]
        mapping = [argument for name, field in MAPPING.items() for argument in ("--map", f"{name}={field}")]
        code, out, err = await invoke(
            "trigger", "create", "from-cli", "--plan", "alert-brief", "--watch", "brand", *mapping,
            "--input", "brand=Acme", "--kind", "sentiment-shift", *connection,
        )  # fmt: skip
        assert code == 0, err
        assert "from-cli: ACTIVE, watch brand (SENTIMENT_SHIFT) -> alert-brief latest, for ana" in out
        assert "input topic <- alert topic" in out and 'input brand = "Acme"' in out
        code, out, _ = await invoke("trigger", "list", *connection)
        assert code == 0 and "from-cli: ACTIVE" in out and "responses: ACTIVE, every watch" in out
        code, out, err = await invoke("trigger", "create", "bad", "--plan", "alert-brief", *connection)
        assert code == 1 and "trigger.watch" in err
        code, out, _ = await invoke("trigger", "delete", "from-cli", *connection)
        assert code == 0 and "started 0 runs" in out
        code, _, err = await invoke("trigger", "show", "from-cli", *connection)
        assert code == 1 and "NOT_FOUND" in err


async def test_a_trigger_starts_after_the_watch_s_latest_alert(conductor_on, conductor, listening, isolated_database):
    stub = listening()
    await make_watch(stub, "brand")
    await complain(stub, "brand")
    before = await window_alerts(stub, "brand")
    latest = (await stub.GetWatch(cpb.GetWatchRequest(name="brand"))).watch.last_alert_sequence
    assert latest == max(alert.sequence for alert in before)
    async with conductor_on() as server:
        client = conductor(server)
        await client.RegisterPlan(pb.RegisterPlanRequest(document=PLAN))
        created = (await client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=trigger("fresh")))).trigger
        # The cursor is recorded at creation: the alerts before start nothing.
        assert (created.last_alert_sequence, created.runs_started) == (latest, 0)
        every = pb.CreateAlertTriggerRequest(trigger=trigger("every", watch="", all_watches=True))
        assert (await client.CreateAlertTrigger(every)).trigger.last_alert_sequence == latest

    # The conductor that follows them next runs an hour ahead of the classification service's clock: alerts are
    # told apart by sequence, not by time, so those raised after the triggers still start their runs.
    database = await asyncpg.connect(isolated_database)
    try:
        await database.execute("UPDATE conductor_alert_triggers SET created_at = created_at + interval '1 hour'")
    finally:
        await database.close()
    async with conductor_on() as server:
        client = conductor(server)
        await complain(stub, "brand", RECALL)
        after = await window_alerts(stub, "brand", after=latest)
        sequences = sorted(alert.sequence for alert in after)
        for name in ("fresh", "every"):
            started = await eventually(lambda name=name: runs_of(client, name, len(after)))
            assert sorted(int(run.labels["alert-sequence"]) for run in started) == sequences
        run = (await client.GetRun(pb.GetRunRequest(run_id=started[0].id, view=pb.RUN_VIEW_FULL))).run
        assert set(run.inputs["post_texts"]) <= set(RECALL)


async def test_a_sentiment_shift_gives_its_run_the_tracked_topic_s_terms_and_posts(conductor_on, conductor, listening):
    stub = listening()
    await make_watch(
        stub,
        "moods",
        tracked_topics=[cpb.TrackedTopic(name="delivery", terms=["parcel", "courier"])],
        min_topic_posts=3,
    )
    async with conductor_on() as server:
        client = conductor(server)
        with_terms = PLAN.replace("steps:", "  - {name: terms, type: list, required: true}\nsteps:")
        await client.RegisterPlan(pb.RegisterPlanRequest(document=with_terms))
        shifts = trigger(
            "shifts", watch="moods", alert_inputs={**MAPPING, "terms": "terms"}, kinds=[pb.ALERT_KIND_SENTIMENT_SHIFT]
        )
        await client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=shifts))
        # Praise in one window, complaints in the next: the delivery topic sours. The window is one that will
        # not close before the praise is in.
        next_end = (await stub.GetWatch(cpb.GetWatchRequest(name="moods"))).watch.next_window_end
        first_end = next_end.ToDatetime(tzinfo=UTC)
        if first_end - datetime.now(UTC) < timedelta(seconds=1):
            first_end += timedelta(seconds=2)
        await complain(stub, "moods", PRAISE, at=first_end - timedelta(seconds=1))
        await complain(stub, "moods", COMPLAINTS, at=first_end + timedelta(seconds=1))
        (run,) = await eventually(lambda: runs_of(client, "shifts", 1), within=30.0)
        inputs = dict((await client.GetRun(pb.GetRunRequest(run_id=run.id, view=pb.RUN_VIEW_FULL))).run.inputs)
        assert inputs["kind"] == "SENTIMENT_SHIFT" and inputs["topic"] == "delivery"
        assert list(inputs["terms"]) == ["parcel", "courier"]
        assert inputs["post_texts"] and set(inputs["post_texts"]) <= set(COMPLAINTS)


async def test_a_trigger_stops_when_its_watch_is_deleted(conductor_on, conductor, listening):
    stub = listening()
    await make_watch(stub, "short-lived")
    async with conductor_on() as server:
        client = conductor(server)
        await client.RegisterPlan(pb.RegisterPlanRequest(document=PLAN))
        await client.CreateAlertTrigger(pb.CreateAlertTriggerRequest(trigger=trigger("orphan", watch="short-lived")))
        await asyncio.sleep(1.5)  # the follower is streaming the watch's alerts
        await stub.DeleteWatch(cpb.DeleteWatchRequest(name="short-lived"))

        async def stopped():
            found = (await client.GetAlertTrigger(pb.GetAlertTriggerRequest(name="orphan"))).trigger
            return found if found.state == pb.ALERT_TRIGGER_STATE_STOPPED else None

        # Told by the stream itself (the watch's alert poll is 0.5 s here), not on a reconnection.
        orphan = await eventually(stopped, within=5.0)
        assert orphan.stop_reason == "WATCH_DELETED" and "short-lived" in orphan.stop_message
        assert orphan.runs_started == 0
