"""PostgreSQL state of the conductor: plans, runs, checkpoints, events, signals, audit ledger.

Every query is scoped by tenant, or by a run id that was looked up under the caller's
tenant first. Writes an executor makes are fenced by its lease: a process that lost a
run (it stalled past its lease and another took over) can no longer write to it.
"""

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from matcha.conductor import audit
from matcha.conductor.plans import PlanDigestMismatch, spec_digest
from matcha.conductor.records import (
    AlertTriggerRow,
    AlertTriggerSpec,
    Claim,
    Event,
    NewRun,
    PlanRow,
    Revocation,
    RunFilter,
    RunRow,
    StepRow,
    StoredEvent,
)
from matcha.runtime.data_map import SubjectHolding, class_number_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.governance import DataClass, roles_satisfy
from matcha.runtime.notifications import EventBus, NotificationListener

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
RUNS_CHANNEL = "conductor_runs"
EVENTS_CHANNEL = "conductor_events"
TRIGGERS_CHANNEL = "conductor_alert_triggers"


class LeaseLost(Exception):
    """This process no longer holds the run (cancelled, finished or taken over)."""


def _revocation(row: asyncpg.Record) -> Revocation:
    return Revocation(row["subject"], row["reason"], row["revoked_by"], row["revoked_at"])


class TriggerLost(Exception):
    """This process no longer follows the trigger (deleted, stopped, or taken over by another process)."""


def revoked_reason(revocation: Revocation) -> dict:
    """A trigger's stop reason when its creator was revoked, in the shape of a run's error."""
    return {
        "code": 7,  # PERMISSION_DENIED
        "message": f"the principal who created the trigger, {revocation.subject}, was revoked",
        "reason": "PRINCIPAL_REVOKED",
        "metadata": {"subject": revocation.subject, "revoked_by": revocation.revoked_by},
    }


def _trigger(row: asyncpg.Record) -> AlertTriggerRow:
    spec = AlertTriggerSpec(
        name=row["name"],
        watch=row["watch"],
        all_watches=not row["watch"],
        plan_name=row["plan_name"],
        plan_version=row["plan_version"],
        alert_inputs=row["alert_inputs"],
        fixed_inputs=row["fixed_inputs"],
        kinds=tuple(row["kinds"]),
    )
    return AlertTriggerRow(
        tenant=row["tenant"],
        id=str(row["id"]),
        spec=spec,
        purpose=row["purpose"],
        data_class=row["data_class"],
        creator=row["creator"],
        roles=tuple(row["roles"]),
        credential=row["credential"],
        state=row["state"],
        stop_reason=row["stop_reason"],
        last_sequence=row["last_sequence"],
        runs_started=row["runs_started"],
        created_at=row["created_at"],
    )


def _run(row: asyncpg.Record, steps: tuple[StepRow, ...] = ()) -> RunRow:
    return RunRow(
        id=str(row["id"]),
        tenant=row["tenant"],
        plan_name=row["plan_name"],
        plan_version=row["plan_version"],
        state=row["state"],
        inputs=row["inputs"],
        outputs=row["outputs"],
        context=row["context"],
        credential=row["credential"],
        pseudonyms=row["pseudonyms"],
        error=row["error"],
        resumed_from=str(row["resumed_from"]) if row["resumed_from"] else None,
        key_root=str(row["key_root"]),
        labels=row["labels"],
        trace_id=row["trace_id"],
        trace_span_id=row["trace_span_id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        deadline=row["deadline"],
        steps=steps,
    )


def _step(row: asyncpg.Record) -> StepRow:
    return StepRow(
        step_id=row["step_id"],
        position=row["position"],
        state=row["state"],
        method=row["method"],
        attempts=row["attempts"],
        output=row["output"],
        error=row["error"],
        completed=row["completed"],
        total=row["total"],
        failed=row["failed"],
        awaited_keys=tuple(row["awaited_keys"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
    )


def _audit_record(row: asyncpg.Record) -> audit.AuditRecord:
    entry = dict(row["entry"])
    entry.update(
        time=row["time"],
        roles=tuple(entry["roles"]),
        models=tuple(tuple(model) for model in entry["models"]),
        decision=audit.Decision(entry["decision"]),
    )
    return audit.AuditRecord(
        row["tenant"], row["sequence"], audit.AuditEntry(**entry), row["previous_hash"], row["record_hash"]
    )


class ConductorStore:
    def __init__(self, database: Database, audit_key: bytes) -> None:
        self._database = database
        self._audit_key = audit_key
        self.bus = EventBus()
        self._listener: NotificationListener | None = None

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._database.pool

    # -- notifications ---------------------------------------------------------------------------

    async def listen(self) -> None:
        self._listener = NotificationListener(
            self._database.session_url,
            {
                EVENTS_CHANNEL: self.bus.notify,
                RUNS_CHANNEL: lambda _payload: self.bus.notify(RUNS_CHANNEL),
                TRIGGERS_CHANNEL: lambda _payload: self.bus.notify(TRIGGERS_CHANNEL),
            },
            on_reconnect=self.bus.notify_all,
        )
        await self._listener.start()

    async def stop_listening(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    # -- plans -----------------------------------------------------------------------------------

    async def register_plan(
        self, tenant: str, spec: dict, source: str, source_format: str, sha256: str, subject: str
    ) -> tuple[PlanRow, bool]:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"plan/{tenant}/{spec['name']}")
            latest = await connection.fetchrow(
                "SELECT * FROM conductor_plans WHERE tenant = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
                tenant,
                spec["name"],
            )
            # An altered latest row is no match: registering the plan again stores it anew.
            if latest is not None and latest["sha256"] == sha256 and spec_digest(latest["spec"]) == sha256:
                return self._plan(latest), False
            row = await connection.fetchrow(
                """INSERT INTO conductor_plans
                       (tenant, name, version, spec, source, source_format, sha256, create_subject)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
                tenant,
                spec["name"],
                (latest["version"] if latest else 0) + 1,
                spec,
                source,
                source_format,
                sha256,
                subject,
            )
            assert row is not None, "INSERT ... RETURNING gives the row"
            return self._plan(row), True

    @staticmethod
    def _plan(row: asyncpg.Record) -> PlanRow:
        return PlanRow(
            row["name"],
            row["version"],
            row["spec"],
            row["source"],
            row["source_format"],
            row["sha256"],
            row["create_subject"],
            row["created_at"],
        )

    async def get_plan(self, tenant: str, name: str, version: int = 0) -> PlanRow | None:
        """A plan version as registered; refused (PlanDigestMismatch) when its row was altered since: what
        runs, and what is shown as the plan, is what was registered, reviewed and audited."""
        row = await self._pool.fetchrow(
            """SELECT * FROM conductor_plans WHERE tenant = $1 AND name = $2 AND ($3 = 0 OR version = $3)
               ORDER BY version DESC LIMIT 1""",
            tenant,
            name,
            version,
        )
        if row is None:
            return None
        if spec_digest(row["spec"]) != row["sha256"]:
            raise PlanDigestMismatch(
                f"stored plan {name!r} version {row['version']} does not match its registered SHA-256",
                metadata={"name": name, "version": str(row["version"])},
            )
        return self._plan(row)

    async def list_plans(self, tenant: str, name: str, limit: int, offset: int) -> list[PlanRow]:
        if name:
            rows = await self._pool.fetch(
                """SELECT * FROM conductor_plans WHERE tenant = $1 AND name = $2
                   ORDER BY version DESC LIMIT $3 OFFSET $4""",
                tenant,
                name,
                limit,
                offset,
            )
        else:
            rows = await self._pool.fetch(
                """SELECT DISTINCT ON (name) * FROM conductor_plans WHERE tenant = $1
                   ORDER BY name, version DESC LIMIT $2 OFFSET $3""",
                tenant,
                limit,
                offset,
            )
        return [self._plan(row) for row in rows]

    # -- runs ------------------------------------------------------------------------------------

    async def create_run(self, new: NewRun) -> tuple[str, bool]:
        """Returns (run id, created); an idempotent repeat returns the first run."""
        async with self._pool.acquire() as connection, connection.transaction():
            run_id, created = await self._insert_run(connection, new)
            if created:
                await connection.execute("SELECT pg_notify($1, '')", RUNS_CHANNEL)
        return run_id, created

    async def _insert_run(self, connection, new: NewRun) -> tuple[str, bool]:
        run_id = str(uuid.uuid4())
        inserted = await connection.fetchval(
            """INSERT INTO conductor_runs (id, tenant, plan_name, plan_version, state, inputs, context, credential,
                   labels, deadline, trace_id, trace_span_id, start_key, resumed_from, key_root)
               VALUES ($1, $2, $3, $4, 'PENDING', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
               ON CONFLICT (tenant, start_key) WHERE start_key IS NOT NULL DO NOTHING
               RETURNING id""",
            run_id,
            new.tenant,
            new.plan_name,
            new.plan_version,
            new.inputs,
            new.context,
            new.credential,
            new.labels,
            new.deadline,
            new.trace_id,
            new.trace_span_id,
            new.start_key,
            new.resumed_from,
            new.key_root or run_id,
        )
        if inserted is None:
            existing = await connection.fetchval(
                "SELECT id FROM conductor_runs WHERE tenant = $1 AND start_key = $2", new.tenant, new.start_key
            )
            return str(existing), False
        step_rows = []
        for position, (step_id, method) in enumerate(new.steps):
            state, output = new.completed_steps.get(step_id, ("PENDING", None))
            step_rows.append((run_id, step_id, position, state, method, output))
        await connection.executemany(
            """INSERT INTO conductor_steps (run_id, step_id, position, state, method, output, ended_at)
               VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4 = 'PENDING' THEN NULL ELSE now() END)""",
            step_rows,
        )
        await connection.executemany(
            "INSERT INTO conductor_items (run_id, step_id, item_index, output) VALUES ($1, $2, $3, $4)",
            [(run_id, step_id, index, output) for step_id, index, output in new.completed_items],
        )
        return run_id, True

    async def get_run(self, tenant: str, run_id: str, *, with_steps: bool = True) -> RunRow | None:
        if not _is_run_id(run_id):
            return None
        row = await self._pool.fetchrow("SELECT * FROM conductor_runs WHERE id = $1 AND tenant = $2", run_id, tenant)
        if row is None:
            return None
        steps: tuple[StepRow, ...] = ()
        if with_steps:
            rows = await self._pool.fetch("SELECT * FROM conductor_steps WHERE run_id = $1 ORDER BY position", run_id)
            steps = tuple(_step(step) for step in rows)
        return _run(row, steps)

    async def run_for_execution(self, run_id: str) -> tuple[RunRow, dict[str, dict[int, Any]]]:
        row = await self._pool.fetchrow("SELECT * FROM conductor_runs WHERE id = $1", run_id)
        steps = await self._pool.fetch("SELECT * FROM conductor_steps WHERE run_id = $1 ORDER BY position", run_id)
        items: dict[str, dict[int, Any]] = {}
        for item in await self._pool.fetch(
            "SELECT step_id, item_index, output FROM conductor_items WHERE run_id = $1", run_id
        ):
            items.setdefault(item["step_id"], {})[item["item_index"]] = item["output"]
        assert row is not None, "runs are never deleted, and only existing ones are executed or resumed"
        return _run(row, tuple(_step(step) for step in steps)), items

    async def list_runs(self, tenant: str, where: RunFilter, limit: int, offset: int) -> list[RunRow]:
        rows = await self._pool.fetch(
            """SELECT * FROM conductor_runs
               WHERE tenant = $1 AND ($2 = '' OR plan_name = $2) AND (cardinality($3::text[]) = 0 OR state = ANY($3))
                 AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5)
                 AND labels @> $6::jsonb
               ORDER BY created_at DESC, id LIMIT $7 OFFSET $8""",
            tenant,
            where.plan_name,
            list(where.states),
            where.created_after,
            where.created_before,
            where.labels,
            limit,
            offset,
        )
        return [_run(row) for row in rows]

    # -- leases ----------------------------------------------------------------------------------

    async def claim_runs(self, owner: str, lease_seconds: float, limit: int, executing: list[str]) -> list[Claim]:
        """`executing`: the runs this process is executing now. One of those that outlived its lease is
        renewed, not restarted; but a run of ours whose execution ended abnormally is taken up again."""
        rows = await self._pool.fetch(
            """WITH claimable AS (
                   SELECT id, started_at IS NOT NULL AS started, state = 'RUNNING' AS abandoned
                   FROM conductor_runs
                   WHERE (state IN ('PENDING', 'RUNNING') AND (lease_expires IS NULL OR lease_expires < now())
                          AND id <> ALL($4::uuid[]))
                      -- A parked run past its deadline is taken up again to fail it.
                      OR (state = 'WAITING' AND deadline < now())
                   ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
               UPDATE conductor_runs AS runs
               SET lease_owner = $1, lease_expires = now() + make_interval(secs => $2), state = 'RUNNING'
               FROM claimable WHERE runs.id = claimable.id
               RETURNING runs.id, claimable.started, claimable.abandoned""",
            owner,
            lease_seconds,
            limit,
            executing,
        )
        return [Claim(str(row["id"]), row["started"], row["started"] and row["abandoned"]) for row in rows]

    async def renew_leases(self, owner: str, run_ids: list[str], lease_seconds: float) -> set[str]:
        rows = await self._pool.fetch(
            """UPDATE conductor_runs SET lease_expires = now() + make_interval(secs => $3)
               WHERE lease_owner = $1 AND id = ANY($2::uuid[]) AND state IN ('PENDING', 'RUNNING')
               RETURNING id""",
            owner,
            run_ids,
            lease_seconds,
        )
        return {str(row["id"]) for row in rows}

    async def release_leases(self, owner: str, run_ids: list[str]) -> None:
        await self._pool.execute(
            """UPDATE conductor_runs SET lease_owner = NULL, lease_expires = NULL
               WHERE lease_owner = $1 AND id = ANY($2::uuid[])""",
            owner,
            run_ids,
        )
        await self._pool.execute("SELECT pg_notify($1, '')", RUNS_CHANNEL)

    # -- events and transitions --------------------------------------------------------------------

    async def _append_event(
        self, connection, run_id: str, event: Event, *, owner: str | None, run_changes: dict[str, Any] | None = None
    ) -> int:
        """Appends an event (and applies `run_changes`) if `owner` still holds the run; raises LeaseLost otherwise."""
        changes = {"state": event.run_state, **(run_changes or {})}
        assignments = ", ".join(f"{column} = ${index}" for index, column in enumerate(changes, start=3))
        sequence = await connection.fetchval(
            f"""UPDATE conductor_runs SET event_count = event_count + 1, {assignments}
                WHERE id = $1 AND ($2::text IS NULL OR (lease_owner = $2 AND state IN ('PENDING', 'RUNNING')))
                RETURNING event_count""",
            run_id,
            owner,
            *changes.values(),
        )
        if sequence is None:
            raise LeaseLost(run_id)
        await connection.execute(
            """INSERT INTO conductor_events (run_id, sequence, type, run_state, step_id, step_state, item_index,
                   attempt, progress, signal_key, error)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            run_id,
            sequence,
            event.type,
            event.run_state,
            event.step_id,
            event.step_state,
            event.item_index,
            event.attempt,
            event.progress,
            event.signal_key,
            event.error,
        )
        await connection.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, run_id)
        return sequence

    async def record(
        self,
        run_id: str,
        owner: str,
        events: list[Event],
        *,
        run_changes: dict[str, Any] | None = None,
        step_changes: dict[str, dict[str, Any]] | None = None,
        item: tuple[str, int, Any] | None = None,
        audit_entries: Sequence[tuple[str, audit.AuditEntry]] = (),
        cancel_unfinished_steps: bool = False,
    ) -> None:
        """One atomic transition: run and step changes, an item checkpoint, audit rows and events."""
        async with self._pool.acquire() as connection, connection.transaction():
            if cancel_unfinished_steps:
                await connection.execute(
                    """UPDATE conductor_steps SET state = 'CANCELLED', ended_at = now()
                       WHERE run_id = $1 AND state IN ('PENDING', 'RUNNING', 'WAITING')""",
                    run_id,
                )
            for index, event in enumerate(events):
                await self._append_event(
                    connection, run_id, event, owner=owner, run_changes=run_changes if index == 0 else None
                )
            for step_id, changes in (step_changes or {}).items():
                assignments = ", ".join(f"{column} = ${index}" for index, column in enumerate(changes, start=3))
                await connection.execute(
                    f"UPDATE conductor_steps SET {assignments} WHERE run_id = $1 AND step_id = $2",
                    run_id,
                    step_id,
                    *changes.values(),
                )
            if item is not None:
                await connection.execute(
                    """INSERT INTO conductor_items (run_id, step_id, item_index, output) VALUES ($1, $2, $3, $4)
                       ON CONFLICT (run_id, step_id, item_index) DO UPDATE SET output = EXCLUDED.output""",
                    run_id,
                    *item,
                )
            for tenant, entry in audit_entries:
                await self._append_audit(connection, tenant, entry)

    async def park(self, run_id: str, owner: str) -> bool:
        """Hands a run whose steps all wait back to the pool, unless a signal they wait for is already there."""
        async with self._pool.acquire() as connection, connection.transaction():
            state = await connection.fetchval(
                "SELECT state FROM conductor_runs WHERE id = $1 AND lease_owner = $2 FOR UPDATE", run_id, owner
            )
            if state != "RUNNING":
                raise LeaseLost(run_id)
            pending_signal = await connection.fetchval(
                """SELECT EXISTS (SELECT 1 FROM conductor_signals AS signals JOIN conductor_steps AS steps
                       ON steps.run_id = signals.run_id AND signals.key = ANY(steps.awaited_keys)
                   WHERE signals.run_id = $1 AND steps.state = 'WAITING' AND NOT signals.consumed)""",
                run_id,
            )
            if pending_signal:
                return False
            await connection.execute(
                "UPDATE conductor_runs SET state = 'WAITING', lease_owner = NULL, lease_expires = NULL WHERE id = $1",
                run_id,
            )
            await connection.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, run_id)
            return True

    async def save_pseudonyms(self, run_id: str, owner: str, sealed: bytes) -> None:
        updated = await self._pool.fetchval(
            "UPDATE conductor_runs SET pseudonyms = $3 WHERE id = $1 AND lease_owner = $2 RETURNING id",
            run_id,
            owner,
            sealed,
        )
        if updated is None:
            raise LeaseLost(run_id)

    async def events_after(self, run_id: str, after: int) -> list[StoredEvent]:
        rows = await self._pool.fetch(
            "SELECT * FROM conductor_events WHERE run_id = $1 AND sequence > $2 ORDER BY sequence", run_id, after
        )
        return [
            StoredEvent(
                row["sequence"],
                row["time"],
                Event(
                    row["type"],
                    row["run_state"],
                    row["step_id"],
                    row["step_state"],
                    row["item_index"],
                    row["attempt"],
                    row["progress"],
                    row["signal_key"],
                    row["error"],
                ),
            )
            for row in rows
        ]

    async def cancel_run(self, tenant: str, run_id: str, error: dict) -> str | None:
        """Cancels an unfinished run; returns the state it was in (None when not found)."""
        if not _is_run_id(run_id):
            return None
        async with self._pool.acquire() as connection, connection.transaction():
            state = await connection.fetchval(
                "SELECT state FROM conductor_runs WHERE id = $1 AND tenant = $2 FOR UPDATE", run_id, tenant
            )
            if state is None or state in TERMINAL_STATES:
                return state
            active = await connection.fetch(
                "SELECT step_id FROM conductor_steps WHERE run_id = $1 AND state IN ('RUNNING', 'WAITING')", run_id
            )
            for step in active:
                await self._append_event(
                    connection,
                    run_id,
                    Event("STEP_CANCELLED", state, step["step_id"], "CANCELLED", error=error),
                    owner=None,
                )
            await connection.execute(
                """UPDATE conductor_steps SET state = 'CANCELLED', ended_at = now()
                   WHERE run_id = $1 AND state IN ('PENDING', 'RUNNING', 'WAITING')""",
                run_id,
            )
            await self._append_event(
                connection,
                run_id,
                Event("RUN_CANCELLED", "CANCELLED", error=error),
                owner=None,
                run_changes={"error": error, "ended_at": datetime.now(UTC), "lease_owner": None, "lease_expires": None},
            )
            return state

    # -- signals ---------------------------------------------------------------------------------

    async def put_signal(
        self, tenant: str, run_id: str, key: str, payload: dict, subject: str, roles: list[str], *, bound: bool = False
    ) -> tuple[str | None, str]:
        """Returns (run state before, outcome) with outcome STORED, RESUMED, DUPLICATE or CONFLICT; a finished run
        answers DUPLICATE to a repeat of a signal it has, and "" to anything else."""
        async with self._pool.acquire() as connection, connection.transaction():
            state = await connection.fetchval(
                "SELECT state FROM conductor_runs WHERE id = $1 AND tenant = $2 FOR UPDATE", run_id, tenant
            )
            if state is None:
                return state, ""
            existing = await connection.fetchrow(
                "SELECT payload FROM conductor_signals WHERE run_id = $1 AND key = $2", run_id, key
            )
            if state in TERMINAL_STATES:
                return state, "DUPLICATE" if existing is not None and existing["payload"] == payload else ""
            if existing is not None:
                return state, "DUPLICATE" if existing["payload"] == payload else "CONFLICT"
            await connection.execute(
                """INSERT INTO conductor_signals (run_id, key, payload, subject, roles, bound)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                run_id,
                key,
                payload,
                subject,
                roles,
                bound,
            )
            waiting = await connection.fetchval(
                """SELECT count(*) FROM conductor_steps
                   WHERE run_id = $1 AND state = 'WAITING' AND $2 = ANY(awaited_keys)""",
                run_id,
                key,
            )
            if state == "WAITING":
                # A parked run becomes claimable again; whoever claims it consumes the signal.
                await connection.execute(
                    """UPDATE conductor_runs SET state = 'PENDING', lease_owner = NULL, lease_expires = NULL
                       WHERE id = $1""",
                    run_id,
                )
                await connection.execute("SELECT pg_notify($1, '')", RUNS_CHANNEL)
            await connection.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, run_id)
            return state, "RESUMED" if waiting else "STORED"

    async def take_signal(self, run_id: str, key: str, required_roles: Iterable[str]) -> tuple[dict | None, str]:
        """Consumes the signal on `key` when its sender may resume the step: (payload, "") or (None, refused sender).

        The roles are checked here, when the signal is consumed, so one stored before the step waited is held
        to them too. A refused signal is dropped: the step keeps waiting and the key stays free for a sender
        who holds the role.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                """SELECT payload, subject, roles, bound FROM conductor_signals
                   WHERE run_id = $1 AND key = $2 FOR UPDATE""",
                run_id,
                key,
            )
            if row is None:
                return None, ""
            if not row["bound"] and not roles_satisfy(row["roles"], required_roles):
                await connection.execute("DELETE FROM conductor_signals WHERE run_id = $1 AND key = $2", run_id, key)
                return None, row["subject"]
            await connection.execute(
                "UPDATE conductor_signals SET consumed = true WHERE run_id = $1 AND key = $2", run_id, key
            )
            return row["payload"], ""

    # -- audit -----------------------------------------------------------------------------------

    async def _append_audit(self, connection, tenant: str, entry: audit.AuditEntry) -> None:
        # Serialises appends per tenant so the chain has no forks.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"audit/{tenant}")
        head = await connection.fetchrow(
            "SELECT sequence, record_hash FROM conductor_audit WHERE tenant = $1 ORDER BY sequence DESC LIMIT 1",
            tenant,
        )
        sequence, previous = (head["sequence"] + 1, head["record_hash"]) if head else (1, "")
        record = audit.seal(self._audit_key, tenant, sequence, entry, previous)
        stored = {key: value for key, value in record.entry.__dict__.items() if key != "time"}
        stored["decision"] = entry.decision.value
        await connection.execute(
            """INSERT INTO conductor_audit (tenant, sequence, time, entry, run_id, target_method, decision,
                   previous_hash, record_hash)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            tenant,
            sequence,
            entry.time,
            stored,
            entry.run_id,
            entry.target_method,
            entry.decision.value,
            previous,
            record.record_hash,
        )

    async def append_audit(self, tenant: str, entry: audit.AuditEntry) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await self._append_audit(connection, tenant, entry)

    async def list_audit(
        self,
        tenant: str,
        *,
        run_id: str,
        start: datetime | None,
        end: datetime | None,
        target: str,
        decision: str,
        after_sequence: int,
        limit: int,
    ) -> list[audit.AuditRecord]:
        rows = await self._pool.fetch(
            """SELECT * FROM conductor_audit
               WHERE tenant = $1 AND sequence > $2 AND ($3 = '' OR run_id = $3)
                 AND ($4::timestamptz IS NULL OR time >= $4) AND ($5::timestamptz IS NULL OR time < $5)
                 AND ($6 = '' OR target_method = $6 OR target_method LIKE $6 || '/%')
                 AND ($7 = '' OR decision = $7)
               ORDER BY sequence LIMIT $8""",
            tenant,
            after_sequence,
            run_id,
            start,
            end,
            target,
            decision,
            limit,
        )
        return [_audit_record(row) for row in rows]

    async def audit_chain(self, tenant: str, from_sequence: int) -> AsyncIterator[audit.AuditRecord]:
        async with self._pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            async for row in connection.cursor(
                "SELECT * FROM conductor_audit WHERE tenant = $1 AND sequence >= $2 ORDER BY sequence",
                tenant,
                from_sequence,
                prefetch=500,
            ):
                yield _audit_record(row)

    async def audit_hash(self, tenant: str, sequence: int) -> str | None:
        return await self._pool.fetchval(
            "SELECT record_hash FROM conductor_audit WHERE tenant = $1 AND sequence = $2", tenant, sequence
        )

    # -- revoked principals ----------------------------------------------------------------------

    async def revoke_principal(self, tenant: str, subject: str, reason: str, revoked_by: str) -> tuple[Revocation, int]:
        """Records the revocation (a repeat keeps the first) and counts the principal's runs not yet ended."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                """INSERT INTO conductor_revoked_principals (tenant, subject, reason, revoked_by)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, subject) DO NOTHING""",
                tenant,
                subject,
                reason,
                revoked_by,
            )
            row = await connection.fetchrow(
                "SELECT * FROM conductor_revoked_principals WHERE tenant = $1 AND subject = $2", tenant, subject
            )
            assert row is not None, "inserted above, or there already"
            revocation = _revocation(row)
            # The principal's alert triggers stop now, saying why; they would start no run anyway.
            await connection.execute(
                """UPDATE conductor_alert_triggers SET state = 'STOPPED', stop_reason = $3
                   WHERE tenant = $1 AND creator = $2 AND state = 'ACTIVE'""",
                tenant,
                subject,
                revoked_reason(revocation),
            )
            active = await connection.fetchval(
                """SELECT count(*) FROM conductor_runs
                   WHERE tenant = $1 AND context->>'subject' = $2 AND state <> ALL($3::text[])""",
                tenant,
                subject,
                list(TERMINAL_STATES),
            )
        return revocation, active

    async def reinstate_principal(self, tenant: str, subject: str) -> bool:
        status = await self._pool.execute(
            "DELETE FROM conductor_revoked_principals WHERE tenant = $1 AND subject = $2", tenant, subject
        )
        return status != "DELETE 0"

    async def revocation(self, tenant: str, subject: str) -> Revocation | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM conductor_revoked_principals WHERE tenant = $1 AND subject = $2", tenant, subject
        )
        return _revocation(row) if row else None

    # -- alert triggers --------------------------------------------------------------------------

    async def create_trigger(
        self,
        tenant: str,
        spec: AlertTriggerSpec,
        *,
        purpose: str,
        data_class: str,
        creator: str,
        roles: list[str],
        credential: bytes,
        last_sequence: int,
    ) -> AlertTriggerRow | None:
        """The stored trigger, its cursor at `last_sequence` (the watch's latest alert: those before start
        nothing); None when the tenant has one of that name."""
        row = await self._pool.fetchrow(
            """INSERT INTO conductor_alert_triggers (tenant, name, id, watch, plan_name, plan_version, alert_inputs,
                   fixed_inputs, kinds, purpose, data_class, creator, roles, credential, last_sequence)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
               ON CONFLICT (tenant, name) DO NOTHING RETURNING *""",
            tenant,
            spec.name,
            uuid.uuid4(),
            spec.watch,
            spec.plan_name,
            spec.plan_version,
            spec.alert_inputs,
            spec.fixed_inputs,
            list(spec.kinds),
            purpose,
            data_class,
            creator,
            roles,
            credential,
            last_sequence,
        )
        if row is not None:
            await self._pool.execute("SELECT pg_notify($1, '')", TRIGGERS_CHANNEL)
        return _trigger(row) if row else None

    async def get_trigger(self, tenant: str, name: str) -> AlertTriggerRow | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM conductor_alert_triggers WHERE tenant = $1 AND name = $2", tenant, name
        )
        return _trigger(row) if row else None

    async def list_triggers(self, tenant: str, limit: int, offset: int) -> list[AlertTriggerRow]:
        rows = await self._pool.fetch(
            "SELECT * FROM conductor_alert_triggers WHERE tenant = $1 ORDER BY name LIMIT $2 OFFSET $3",
            tenant,
            limit,
            offset,
        )
        return [_trigger(row) for row in rows]

    async def delete_trigger(self, tenant: str, name: str) -> int | None:
        """Runs the deleted trigger had started; None when there was none. Its follower stops at its next
        write (fenced) or lease renewal."""
        return await self._pool.fetchval(
            "DELETE FROM conductor_alert_triggers WHERE tenant = $1 AND name = $2 RETURNING runs_started",
            tenant,
            name,
        )

    async def claim_triggers(self, owner: str, lease_seconds: float) -> list[AlertTriggerRow]:
        """Renews this process's leases and takes the active triggers whose lease is free or expired: one
        follower each."""
        rows = await self._pool.fetch(
            """UPDATE conductor_alert_triggers
               SET lease_owner = $1, lease_expires = now() + make_interval(secs => $2)
               WHERE state = 'ACTIVE' AND (lease_owner = $1 OR lease_owner IS NULL OR lease_expires < now())
               RETURNING *""",
            owner,
            lease_seconds,
        )
        return [_trigger(row) for row in rows]

    async def release_triggers(self, owner: str) -> None:
        await self._pool.execute(
            "UPDATE conductor_alert_triggers SET lease_owner = NULL, lease_expires = NULL WHERE lease_owner = $1",
            owner,
        )

    async def _held_trigger(self, connection, trigger_id: str, owner: str) -> asyncpg.Record:
        row = await connection.fetchrow(
            """SELECT * FROM conductor_alert_triggers
               WHERE id = $1 AND lease_owner = $2 AND lease_expires > now() AND state = 'ACTIVE' FOR UPDATE""",
            trigger_id,
            owner,
        )
        if row is None:
            raise TriggerLost(trigger_id)
        return row

    async def skip_alert(self, trigger_id: str, owner: str, sequence: int) -> None:
        """Moves the cursor past an alert that starts nothing (of a kind the trigger does not take)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await self._held_trigger(connection, trigger_id, owner)
            await connection.execute(
                "UPDATE conductor_alert_triggers SET last_sequence = greatest(last_sequence, $2) WHERE id = $1",
                trigger_id,
                sequence,
            )

    async def start_triggered_run(
        self, trigger_id: str, owner: str, sequence: int, new: NewRun
    ) -> tuple[str | None, Revocation | None]:
        """Creates the alert's run and moves the cursor past the alert in one transaction, if this process still
        follows the trigger: (run id, None), or (None, the revocation) when the creator was revoked, which stops
        the trigger and starts nothing. The run's start key makes a repeat of the alert return the first run."""
        async with self._pool.acquire() as connection, connection.transaction():
            held = await self._held_trigger(connection, trigger_id, owner)
            revoked = await connection.fetchrow(
                "SELECT * FROM conductor_revoked_principals WHERE tenant = $1 AND subject = $2",
                held["tenant"],
                held["creator"],
            )
            if revoked is not None:
                revocation = _revocation(revoked)
                await connection.execute(
                    "UPDATE conductor_alert_triggers SET state = 'STOPPED', stop_reason = $2 WHERE id = $1",
                    trigger_id,
                    revoked_reason(revocation),
                )
                return None, revocation
            if sequence <= held["last_sequence"]:
                return None, None
            run_id, created = await self._insert_run(connection, new)
            await connection.execute(
                """UPDATE conductor_alert_triggers
                   SET last_sequence = $2, runs_started = runs_started + $3 WHERE id = $1""",
                trigger_id,
                sequence,
                int(created),
            )
            if created:
                await connection.execute("SELECT pg_notify($1, '')", RUNS_CHANNEL)
            return run_id, None

    async def stop_trigger(self, trigger_id: str, reason: dict) -> None:
        await self._pool.execute(
            """UPDATE conductor_alert_triggers SET state = 'STOPPED', stop_reason = $2, lease_owner = NULL,
                   lease_expires = NULL
               WHERE id = $1 AND state = 'ACTIVE'""",
            trigger_id,
            reason,
        )

    # -- erasure ---------------------------------------------------------------------------------

    async def erase_subject(self, tenant: str, subject_id: str) -> int:
        """Scrubs the inputs, checkpoints, signals and pseudonym mappings of runs that hold the subject."""
        async with self._pool.acquire() as connection, connection.transaction():
            runs = await connection.fetch(
                f"SELECT id FROM conductor_runs AS runs WHERE {_HOLDS_SUBJECT}", tenant, json.dumps(subject_id)
            )
            run_ids = [row["id"] for row in runs]
            if run_ids:
                await connection.execute(
                    "UPDATE conductor_runs SET inputs = '{}', outputs = NULL, pseudonyms = NULL WHERE id = ANY($1)",
                    run_ids,
                )
                await connection.execute("UPDATE conductor_steps SET output = NULL WHERE run_id = ANY($1)", run_ids)
                await connection.execute("UPDATE conductor_items SET output = NULL WHERE run_id = ANY($1)", run_ids)
                await connection.execute("UPDATE conductor_signals SET payload = '{}' WHERE run_id = ANY($1)", run_ids)
            return len(run_ids)

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        """The runs holding the subject, with what they hold (the pseudonym mappings stay sealed)."""
        return await describe_kind(
            self._pool,
            "runs",
            f"""SELECT '' AS scope, {class_number_sql("runs.context->>'data_class'")} AS data_class,
                       ARRAY[runs.context->>'purpose'] AS purposes, (runs.created_at, runs.id) AS ordering,
                       jsonb_build_object('id', runs.id, 'plan', runs.plan_name, 'plan_version', runs.plan_version,
                           'state', runs.state, 'started_by', runs.context->>'subject',
                           'purpose', runs.context->>'purpose', 'data_class', runs.context->>'data_class',
                           'inputs', runs.inputs, 'outputs', runs.outputs,
                           'steps', (SELECT jsonb_object_agg(step_id, output) FROM conductor_steps
                                     WHERE run_id = runs.id AND output IS NOT NULL),
                           'items', (SELECT jsonb_agg(jsonb_build_object('step', step_id, 'index', item_index,
                                                          'output', output) ORDER BY step_id, item_index)
                                     FROM conductor_items WHERE run_id = runs.id AND output IS NOT NULL),
                           'signals', (SELECT jsonb_object_agg(key, payload) FROM conductor_signals
                                       WHERE run_id = runs.id),
                           'create_time', runs.created_at, 'end_time', runs.ended_at) AS record
                FROM conductor_runs AS runs WHERE {_HOLDS_SUBJECT}""",
            tenant,
            json.dumps(subject_id),
            ceiling=ceiling,
        )


# Runs of tenant $1 whose inputs, outputs, checkpoints or signals hold the JSON string $2 (a subject id).
_HOLDS_SUBJECT = """runs.tenant = $1 AND (
    position($2 in runs.inputs::text) > 0 OR position($2 in coalesce(runs.outputs::text, '')) > 0
    OR EXISTS (SELECT 1 FROM conductor_steps AS steps WHERE steps.run_id = runs.id
               AND position($2 in coalesce(steps.output::text, '')) > 0)
    OR EXISTS (SELECT 1 FROM conductor_items AS items WHERE items.run_id = runs.id
               AND position($2 in coalesce(items.output::text, '')) > 0)
    OR EXISTS (SELECT 1 FROM conductor_signals AS signals WHERE signals.run_id = runs.id
               AND position($2 in signals.payload::text) > 0))"""


def _is_run_id(value: str) -> bool:
    """Whether a caller's run id can name a run: ids are UUIDs, and PostgreSQL refuses to compare others."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
