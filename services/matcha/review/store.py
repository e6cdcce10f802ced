"""PostgreSQL storage of review items, their versions, decisions, events and outboxes; always scoped by tenant.

Rules live in the core; this module only knows rows and transactions. A change to an
item happens inside an `ItemTransaction` holding the item's row lock, so the status
machine is checked against the row as it is, and every write of a change (item,
version, decision, event, outbox rows) commits or rolls back together.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from matcha.review.audiences import AUDIENCE_SUBJECT_RECORDS, erase_audience_customer
from matcha.review.experiment_store import EXPERIMENT_SUBJECT_RECORDS, erase_experiment_customer
from matcha.review.records import (
    DecisionRow,
    DeliveryRow,
    EventRow,
    ItemDetails,
    ItemRow,
    ItemsErased,
    ListFilter,
    NewItem,
    NewVersion,
    OutboxEntry,
    PublicationRow,
    SinkDeliveryRow,
    SubjectItem,
    VersionRow,
)
from matcha.runtime.data_map import SubjectHolding, class_name_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.errors import NotFound
from matcha.runtime.governance import DataClass
from matcha.runtime.notifications import EventBus, NotificationListener

EVENTS_CHANNEL = "review_events"
OUTBOX_CHANNEL = "review_outbox"

RUN_SIGNAL = "run_signal"
SINK = "sink"


_ITEM_COLUMNS = """i.id::text AS id, i.tenant, i.status, i.version, i.format, i.channel, i.target, i.audience,
    i.provenance, i.voice_score, i.flags, i.priority, i.due_at, i.four_eyes, i.submitter, i.data_class, i.purpose,
    i.claimed_by, i.claimed_at, i.claim_expires_at, i.approved_version, i.approved_sha256,
    i.approved_provenance_sha256, i.approved_diff,
    i.resume_run_id, i.resume_signal_key, i.resume_capability, i.subject_ids, i.created_at, i.updated_at,
    v.title, v.content, v.content_sha256, v.author AS version_author"""
_ITEM_FROM = "review_items i JOIN review_versions v ON v.item_id = i.id AND v.number = i.version"


# An item as listed, in one round trip: its latest run signal joined in, publications (rare in a queue)
# looked up after.
_SUMMARY_SELECT = f"""SELECT {_ITEM_COLUMNS}, d.id AS d_id, d.state AS d_state, d.attempts AS d_attempts,
        d.last_error_code AS d_last_error_code, d.last_error AS d_last_error, d.delivered_at AS d_delivered_at,
        EXISTS (SELECT 1 FROM review_publications p WHERE p.item_id = i.id) AS published
    FROM {_ITEM_FROM}
    LEFT JOIN LATERAL (SELECT * FROM review_outbox o WHERE o.item_id = i.id AND o.kind = '{RUN_SIGNAL}'
                       ORDER BY o.id DESC LIMIT 1) d ON true"""

_ITEM_FIELDS = tuple(ItemRow.__dataclass_fields__)


def _item(row: asyncpg.Record) -> ItemRow:
    return ItemRow(**{name: row[name] for name in _ITEM_FIELDS})


def _version(row: asyncpg.Record) -> VersionRow:
    return VersionRow(
        number=row["number"],
        title=row["title"],
        content=row["content"],
        content_sha256=row["content_sha256"],
        origin=row["origin"],
        author=row["author"],
        provenance=row["provenance"],
        comment=row["comment"],
        diff=row["diff"],
        created_at=row["created_at"],
    )


def _decision(row: asyncpg.Record, prefix: str = "") -> DecisionRow:
    return DecisionRow(
        id=row[f"{prefix}id"],
        outcome=row[f"{prefix}outcome"],
        comment=row[f"{prefix}comment"],
        reviewer=row[f"{prefix}reviewer"],
        role=row[f"{prefix}role"],
        version=row[f"{prefix}version"],
        content_sha256=row[f"{prefix}content_sha256"],
        decided_at=row[f"{prefix}decided_at"],
        provenance_sha256=row[f"{prefix}provenance_sha256"],
    )


def _delivery(row: asyncpg.Record, prefix: str = "") -> DeliveryRow:
    return DeliveryRow(
        id=row[f"{prefix}id"],
        state=row[f"{prefix}state"],
        attempts=row[f"{prefix}attempts"],
        last_error_code=row[f"{prefix}last_error_code"],
        last_error=row[f"{prefix}last_error"],
        delivered_at=row[f"{prefix}delivered_at"],
    )


_EVENT_QUERY = """SELECT e.sequence, e.at, e.type, e.item_id::text AS item_id, e.status, e.version, e.actor,
        d.id AS d_id, d.outcome AS d_outcome, d.comment AS d_comment, d.reviewer AS d_reviewer, d.role AS d_role,
        d.version AS d_version, d.content_sha256 AS d_content_sha256, d.decided_at AS d_decided_at,
        d.provenance_sha256 AS d_provenance_sha256
    FROM review_events e LEFT JOIN review_decisions d ON d.id = e.decision_id"""


def _event(row: asyncpg.Record) -> EventRow:
    return EventRow(
        sequence=row["sequence"],
        at=row["at"],
        type=row["type"],
        item_id=row["item_id"],
        status=row["status"],
        version=row["version"],
        actor=row["actor"],
        decision=_decision(row, "d_") if row["d_id"] is not None else None,
    )


def _parse_uuid(item_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(item_id)
    except ValueError:
        return None


def _not_found(item_id: str) -> NotFound:
    return NotFound(f"review item {item_id!r} not found", reason="ITEM_NOT_FOUND", metadata={"item_id": item_id})


class ItemTransaction:
    """The writes of one change to one item, under its row lock."""

    def __init__(self, connection: asyncpg.Connection | PoolConnectionProxy, item: ItemRow) -> None:
        self._connection = connection
        self.item = item
        self.notify_outbox = False

    async def update(self, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ${index}" for index, name in enumerate(columns, start=2))
        await self._connection.execute(
            f"UPDATE review_items SET {assignments}, updated_at = now() WHERE id = $1",
            uuid.UUID(self.item.id),
            *columns.values(),
        )

    async def add_version(self, number: int, version: NewVersion, idempotency_key: str | None) -> None:
        await _insert_version(self._connection, uuid.UUID(self.item.id), number, version, idempotency_key)

    async def version(self, number: int) -> VersionRow:
        row = await self._connection.fetchrow(
            "SELECT * FROM review_versions WHERE item_id = $1 AND number = $2", uuid.UUID(self.item.id), number
        )
        if row is None:
            raise LookupError(f"review item {self.item.id} has no version {number}")
        return _version(row)

    async def latest_ai_version(self) -> VersionRow:
        row = await self._connection.fetchrow(
            """SELECT * FROM review_versions WHERE item_id = $1 AND origin IN ('AI_DRAFT', 'REGENERATED')
               ORDER BY number DESC LIMIT 1""",
            uuid.UUID(self.item.id),
        )
        assert row is not None  # version 1 is the submitted AI draft
        return _version(row)

    async def decision_with_key(self, idempotency_key: str) -> DecisionRow | None:
        row = await self._connection.fetchrow(
            "SELECT * FROM review_decisions WHERE item_id = $1 AND idempotency_key = $2",
            uuid.UUID(self.item.id),
            idempotency_key,
        )
        return _decision(row) if row else None

    async def version_with_key(self, idempotency_key: str) -> int | None:
        return await self._connection.fetchval(
            "SELECT number FROM review_versions WHERE item_id = $1 AND idempotency_key = $2",
            uuid.UUID(self.item.id),
            idempotency_key,
        )

    async def add_decision(
        self,
        outcome: str,
        comment: str,
        reviewer: str,
        role: str,
        version: int,
        content_sha256: str,
        key: str | None,
        provenance_sha256: str = "",
    ) -> DecisionRow:
        row = await self._connection.fetchrow(
            """INSERT INTO review_decisions (item_id, outcome, comment, reviewer, role, version, content_sha256,
                   idempotency_key, provenance_sha256)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
            uuid.UUID(self.item.id),
            outcome,
            comment,
            reviewer,
            role,
            version,
            content_sha256,
            key,
            provenance_sha256,
        )
        assert row is not None  # an INSERT … RETURNING without ON CONFLICT returns its row
        return _decision(row)

    async def add_event(
        self, event_type: str, status: str, version: int, actor: str, decision_id: int | None = None
    ) -> None:
        await _insert_event(
            self._connection, self.item.tenant, self.item.id, event_type, status, version, actor, decision_id
        )

    async def enqueue(
        self,
        kind: str,
        destination: str,
        key: str,
        payload: dict[str, Any],
        *,
        publication_id: str | None = None,
        capability: str = "",
    ) -> bool:
        """Adds a delivery; False when one with the same destination and key exists (it is delivered once)."""
        inserted = await self._connection.fetchval(
            """INSERT INTO review_outbox (tenant, item_id, kind, destination, key, publication_id, payload,
                   data_class, purpose, capability)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (kind, destination, key) DO NOTHING RETURNING id""",
            self.item.tenant,
            uuid.UUID(self.item.id),
            kind,
            destination,
            key,
            uuid.UUID(publication_id) if publication_id else None,
            payload,
            self.item.data_class,
            self.item.purpose,
            capability,
        )
        if inserted is not None:
            self.notify_outbox = True
        return inserted is not None

    async def approver(self) -> str | None:
        """Who approved the item's approved version."""
        return await self._connection.fetchval(
            """SELECT reviewer FROM review_decisions WHERE item_id = $1 AND outcome = 'APPROVE' AND version = $2
               ORDER BY id DESC LIMIT 1""",
            uuid.UUID(self.item.id),
            self.item.approved_version,
        )

    @property
    def connection(self) -> asyncpg.Connection | PoolConnectionProxy:
        """The change's connection, inside its transaction, for writes kept with other stores' code."""
        return self._connection

    async def publication(self) -> str | None:
        return await self._connection.fetchval(
            "SELECT id::text FROM review_publications WHERE item_id = $1", uuid.UUID(self.item.id)
        )

    async def add_publication(self, version: int, content_sha256: str, publisher: str, trace_id: str = "") -> str:
        publication_id = uuid.uuid4()
        await self._connection.execute(
            """INSERT INTO review_publications (id, tenant, item_id, version, content_sha256, publisher, trace_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            publication_id,
            self.item.tenant,
            uuid.UUID(self.item.id),
            version,
            content_sha256,
            publisher,
            trace_id,
        )
        return str(publication_id)


async def _insert_version(
    connection: asyncpg.Connection | PoolConnectionProxy,
    item_id: uuid.UUID,
    number: int,
    version: NewVersion,
    key: str | None,
) -> None:
    await connection.execute(
        """INSERT INTO review_versions (item_id, number, title, content, content_sha256, origin, author, provenance,
               comment, diff, idempotency_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        item_id,
        number,
        version.title,
        version.content,
        version.content_sha256,
        version.origin,
        version.author,
        version.provenance,
        version.comment,
        version.diff,
        key,
    )


async def _insert_event(
    connection: asyncpg.Connection | PoolConnectionProxy,
    tenant: str,
    item_id: str,
    event_type: str,
    status: str,
    version: int,
    actor: str,
    decision_id: int | None = None,
) -> None:
    # Held to commit: a tenant's events commit in sequence order, so a watcher that has read up to
    # sequence N never sees a smaller sequence commit later (it would skip it).
    await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"review-events/{tenant}")
    await connection.execute(
        """INSERT INTO review_events (tenant, item_id, type, status, version, actor, decision_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        tenant,
        uuid.UUID(item_id),
        event_type,
        status,
        version,
        actor,
        decision_id,
    )
    # Delivered at commit, to every replica's listener.
    await connection.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, tenant)


# Items (`i`) naming the subject; what is kept for them carries their class and the purpose they were submitted
# for (the review service keeps no consented purposes).
_NAMES_SUBJECT = "i.tenant = $1 AND i.subject_ids @> ARRAY[$2::text]"
# Per kind of record about a subject, the rows `describe_kind` reads (see matcha.runtime.data_map).
_SUBJECT_RECORDS = (
    *EXPERIMENT_SUBJECT_RECORDS,
    *AUDIENCE_SUBJECT_RECORDS,
    (
        "drafts",
        f"""SELECT '' AS scope, i.data_class, ARRAY[i.purpose] AS purposes, (i.created_at, i.id) AS ordering,
                   jsonb_build_object('id', i.id, 'status', i.status, 'channel', i.channel, 'target', i.target,
                       'audience', i.audience, 'provenance', i.provenance, 'flags', i.flags,
                       'submitter', i.submitter, 'data_class', {class_name_sql("i.data_class")},
                       'purpose', i.purpose, 'subject_ids', i.subject_ids, 'create_time', i.created_at,
                       'update_time', i.updated_at,
                       'versions', (SELECT jsonb_agg(jsonb_build_object('number', v.number, 'title', v.title,
                                        'content', v.content, 'origin', v.origin, 'author', v.author,
                                        'comment', v.comment, 'diff', v.diff, 'create_time', v.created_at)
                                        ORDER BY v.number)
                                    FROM review_versions v WHERE v.item_id = i.id)) AS record
            FROM review_items i WHERE {_NAMES_SUBJECT}""",
    ),
    (
        "decisions",
        f"""SELECT '' AS scope, i.data_class, ARRAY[i.purpose] AS purposes, d.id AS ordering,
                   jsonb_build_object('item_id', i.id, 'outcome', d.outcome, 'comment', d.comment,
                       'reviewer', d.reviewer, 'role', d.role, 'version', d.version,
                       'content_sha256', d.content_sha256, 'decide_time', d.decided_at) AS record
            FROM review_items i JOIN review_decisions d ON d.item_id = i.id WHERE {_NAMES_SUBJECT}""",
    ),
    (
        "review-events",
        f"""SELECT '' AS scope, i.data_class, ARRAY[i.purpose] AS purposes, e.sequence AS ordering,
                   jsonb_build_object('sequence', e.sequence, 'item_id', i.id, 'type', e.type, 'status', e.status,
                       'version', e.version, 'actor', e.actor, 'time', e.at) AS record
            FROM review_items i JOIN review_events e ON e.item_id = i.id WHERE {_NAMES_SUBJECT}""",
    ),
    (
        "publications",
        f"""SELECT '' AS scope, i.data_class, ARRAY[i.purpose] AS purposes, p.published_at AS ordering,
                   jsonb_build_object('id', p.id, 'item_id', i.id, 'version', p.version,
                       'content_sha256', p.content_sha256, 'publisher', p.publisher,
                       'publish_time', p.published_at) AS record
            FROM review_items i JOIN review_publications p ON p.item_id = i.id WHERE {_NAMES_SUBJECT}""",
    ),
    (
        # Run signals and sink deliveries with their payloads (the resume capability is a credential: left out).
        "outbox",
        f"""SELECT '' AS scope, o.data_class, ARRAY[o.purpose] AS purposes, o.id AS ordering,
                   jsonb_build_object('item_id', i.id, 'kind', o.kind, 'destination', o.destination,
                       'state', o.state, 'attempts', o.attempts, 'payload', o.payload,
                       'create_time', o.created_at, 'deliver_time', o.delivered_at) AS record
            FROM review_items i JOIN review_outbox o ON o.item_id = i.id WHERE {_NAMES_SUBJECT}""",
    ),
)


class ReviewStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self.events = EventBus()
        self.outbox_ready = asyncio.Event()
        self._listener: NotificationListener | None = None

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._database.pool

    async def listen(self) -> None:
        def everything_may_have_changed() -> None:
            self.events.notify_all()
            self.outbox_ready.set()

        self._listener = NotificationListener(
            self._database.session_url,
            {EVENTS_CHANNEL: self.events.notify, OUTBOX_CHANNEL: lambda _payload: self.outbox_ready.set()},
            on_reconnect=everything_may_have_changed,
        )
        await self._listener.start()

    async def stop_listening(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    # -- items -----------------------------------------------------------------------------------

    async def submit(
        self, tenant: str, item: NewItem, version: NewVersion, idempotency_key: str | None
    ) -> tuple[str, bool]:
        """Creates the item with its first version; with a known idempotency key, returns the existing item."""
        async with self._pool.acquire() as connection, connection.transaction():
            item_id = uuid.uuid4()
            inserted = await connection.fetchval(
                """INSERT INTO review_items (id, tenant, status, version, format, channel, target, audience,
                       provenance, voice_score, flags, priority, due_at, four_eyes, submitter, data_class, purpose,
                       resume_run_id, resume_signal_key, resume_capability, idempotency_key, subject_ids)
                   VALUES ($1, $2, 'PENDING', 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                       $18, $19, $20)
                   ON CONFLICT (tenant, idempotency_key) DO NOTHING RETURNING id""",
                item_id,
                tenant,
                item.format,
                item.channel,
                item.target,
                item.audience,
                item.provenance,
                item.voice_score,
                item.flags,
                item.priority,
                item.due_at,
                item.four_eyes,
                item.submitter,
                item.data_class,
                item.purpose,
                item.resume_run_id,
                item.resume_signal_key,
                item.resume_capability,
                idempotency_key,
                item.subject_ids,
            )
            if inserted is None:
                existing = await connection.fetchval(
                    "SELECT id::text FROM review_items WHERE tenant = $1 AND idempotency_key = $2",
                    tenant,
                    idempotency_key,
                )
                return existing, False
            await _insert_version(connection, item_id, 1, version, None)
            await _insert_event(connection, tenant, str(item_id), "SUBMITTED", "PENDING", 1, item.submitter)
            return str(item_id), True

    @asynccontextmanager
    async def change(self, tenant: str, item_id: str) -> AsyncIterator[ItemTransaction]:
        """Locks the item for a change; NOT_FOUND when it is not the tenant's."""
        key = _parse_uuid(item_id)
        if key is None:
            raise _not_found(item_id)
        async with self._pool.acquire() as connection:
            async with connection.transaction():
                row = await connection.fetchrow(
                    f"SELECT {_ITEM_COLUMNS} FROM {_ITEM_FROM} WHERE i.tenant = $1 AND i.id = $2 FOR UPDATE OF i",
                    tenant,
                    key,
                )
                if row is None:
                    raise _not_found(item_id)
                transaction = ItemTransaction(connection, _item(row))
                yield transaction
                if transaction.notify_outbox:
                    await connection.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
            if transaction.notify_outbox:
                self.outbox_ready.set()

    async def get(self, tenant: str, item_id: str, *, full: bool) -> ItemDetails:
        key = _parse_uuid(item_id)
        if key is None:
            raise _not_found(item_id)
        if not full:
            rows = await self._pool.fetch(f"{_SUMMARY_SELECT} WHERE i.tenant = $1 AND i.id = $2", tenant, key)
            if not rows:
                raise _not_found(item_id)
            return (await self._summaries(rows))[0]
        async with self._pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            row = await connection.fetchrow(
                f"SELECT {_ITEM_COLUMNS} FROM {_ITEM_FROM} WHERE i.tenant = $1 AND i.id = $2", tenant, key
            )
            if row is None:
                raise _not_found(item_id)
            item = _item(row)
            delivery = await self._resume_delivery(connection, key)
            publication = await self._publication(connection, key)
            versions = await connection.fetch("SELECT * FROM review_versions WHERE item_id = $1 ORDER BY number", key)
            decisions = await connection.fetch("SELECT * FROM review_decisions WHERE item_id = $1 ORDER BY id", key)
            events = await connection.fetch(f"{_EVENT_QUERY} WHERE e.item_id = $1 ORDER BY e.sequence", key)
            return ItemDetails(
                item,
                delivery,
                publication,
                versions=[_version(version) for version in versions],
                decisions=[_decision(decision) for decision in decisions],
                events=[_event(event) for event in events],
            )

    @staticmethod
    async def _resume_delivery(
        connection: asyncpg.Connection | PoolConnectionProxy, item_id: uuid.UUID
    ) -> DeliveryRow | None:
        row = await connection.fetchrow(
            "SELECT * FROM review_outbox WHERE item_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1",
            item_id,
            RUN_SIGNAL,
        )
        return _delivery(row) if row else None

    @staticmethod
    async def _publication(
        connection: asyncpg.Connection | PoolConnectionProxy, item_id: uuid.UUID
    ) -> PublicationRow | None:
        row = await connection.fetchrow("SELECT * FROM review_publications WHERE item_id = $1", item_id)
        if row is None:
            return None
        sinks = await connection.fetch(
            "SELECT * FROM review_outbox WHERE publication_id = $1 ORDER BY destination", row["id"]
        )
        return PublicationRow(
            id=str(row["id"]),
            version=row["version"],
            content_sha256=row["content_sha256"],
            publisher=row["publisher"],
            published_at=row["published_at"],
            sinks=[SinkDeliveryRow(sink["destination"], _delivery(sink)) for sink in sinks],
            trace_id=row["trace_id"],
        )

    async def list_items(
        self, tenant: str, where: ListFilter, page_size: int, after: tuple[datetime, int, uuid.UUID] | None
    ) -> list[ItemDetails]:
        """One page in queue order, plus one row to tell whether another page follows."""
        conditions = ["i.tenant = $1"]
        params: list[Any] = [tenant]

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if where.statuses:
            conditions.append(f"i.status = ANY({param(where.statuses)}::text[])")
        if where.channel:
            conditions.append(f"i.channel = {param(where.channel)}")
        if where.segment_id:
            conditions.append(f"i.audience->>'segment_id' = {param(where.segment_id)}")
        if where.due_before is not None:
            conditions.append(f"i.due_at < {param(where.due_before)}")
        if where.claimed_by == "":
            conditions.append("(i.claimed_by IS NULL OR i.claim_expires_at <= now())")
        elif where.claimed_by is not None:
            conditions.append(f"i.claimed_by = {param(where.claimed_by)} AND i.claim_expires_at > now()")
        if after is not None:
            due, priority, last_id = after
            due_at, prio, item_key = param(due), param(priority), param(last_id)
            # Spelled out (not a row comparison) so the queue index bounds the scan at the last due time.
            conditions.append(
                f"i.due_at >= {due_at} AND (i.due_at > {due_at} OR i.priority < {prio}"
                f" OR (i.priority = {prio} AND i.id > {item_key}))"
            )
        rows = await self._pool.fetch(
            f"""{_SUMMARY_SELECT} WHERE {" AND ".join(conditions)}
                ORDER BY i.due_at, i.priority DESC, i.id LIMIT {param(page_size + 1)}""",
            *params,
        )
        return await self._summaries(rows)

    async def _summaries(self, rows: list[asyncpg.Record]) -> list[ItemDetails]:
        publications: dict[str, PublicationRow | None] = {}
        published = [row["id"] for row in rows if row["published"]]
        if published:
            async with self._pool.acquire() as connection:
                for item_id in published:
                    publications[item_id] = await self._publication(connection, uuid.UUID(item_id))
        return [
            ItemDetails(
                _item(row),
                _delivery(row, "d_") if row["d_id"] is not None else None,
                publications.get(row["id"]),
            )
            for row in rows
        ]

    # -- events ----------------------------------------------------------------------------------

    async def last_sequence(self, tenant: str) -> int:
        return await self._pool.fetchval(
            "SELECT coalesce(max(sequence), 0) FROM review_events WHERE tenant = $1", tenant
        )

    async def events_after(
        self, tenant: str, after: int, item_id: str, types: list[str], limit: int = 500
    ) -> list[EventRow]:
        conditions = ["e.tenant = $1", "e.sequence > $2"]
        params: list[Any] = [tenant, after]
        if item_id:
            params.append(_parse_uuid(item_id))
            conditions.append(f"e.item_id = ${len(params)}")
        if types:
            params.append(types)
            conditions.append(f"e.type = ANY(${len(params)}::text[])")
        params.append(limit)
        rows = await self._pool.fetch(
            f"{_EVENT_QUERY} WHERE {' AND '.join(conditions)} ORDER BY e.sequence LIMIT ${len(params)}", *params
        )
        return [_event(row) for row in rows]

    # -- sweeping --------------------------------------------------------------------------------

    async def overdue_items(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self._pool.fetch(
            """SELECT tenant, id::text AS id FROM review_items
               WHERE status IN ('PENDING', 'REVISED') AND due_at <= $1 ORDER BY due_at LIMIT $2""",
            now,
            limit,
        )
        return [(row["tenant"], row["id"]) for row in rows]

    async def release_lapsed_claims(self, now: datetime) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """UPDATE review_items SET claimed_by = NULL, claimed_at = NULL, claim_expires_at = NULL,
                       updated_at = now()
                   WHERE claimed_by IS NOT NULL AND claim_expires_at <= $1
                   RETURNING tenant, id::text AS id, status, version""",
                now,
            )
            for row in sorted(rows, key=lambda row: row["tenant"]):  # one lock order across tenants
                await _insert_event(connection, row["tenant"], row["id"], "RELEASED", row["status"], row["version"], "")
            return len(rows)

    # -- outbox ----------------------------------------------------------------------------------

    async def lease_due(
        self, limit: int, lease_seconds: float, *, signals: bool, sinks: list[str]
    ) -> list[OutboxEntry]:
        """Takes due deliveries this replica can make for `lease_seconds`: other replicas skip them meanwhile."""
        rows = await self._pool.fetch(
            """UPDATE review_outbox o SET next_attempt_at = now() + make_interval(secs => $2)
               WHERE o.id IN (SELECT id FROM review_outbox
                              WHERE state = 'PENDING' AND next_attempt_at <= now()
                                AND ((kind = $3 AND $4) OR (kind = $5 AND destination = ANY($6::text[])))
                              ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING o.id, o.tenant, o.item_id::text AS item_id, o.kind, o.destination, o.key, o.payload,
                         o.data_class, o.purpose, o.attempts, o.capability, o.retry_from""",
            limit,
            lease_seconds,
            RUN_SIGNAL,
            signals,
            SINK,
            sinks,
        )
        return [OutboxEntry(**dict(row)) for row in rows]

    async def next_due_in(self, *, signals: bool, sinks: list[str]) -> float | None:
        """Seconds until the earliest pending delivery this replica can make is due; None when there is none."""
        seconds = await self._pool.fetchval(
            """SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
               FROM review_outbox WHERE state = 'PENDING'
                 AND ((kind = $1 AND $2) OR (kind = $3 AND destination = ANY($4::text[])))""",
            RUN_SIGNAL,
            signals,
            SINK,
            sinks,
        )
        return None if seconds is None else max(0.0, seconds)

    async def record_attempt(
        self,
        entry: OutboxEntry,
        *,
        state: str,
        error_code: int | None = None,
        error: str = "",
        retry_in_seconds: float = 0.0,
    ) -> bool:
        """Records the attempt; False when the row is gone (its item was erased while it was delivered)."""
        async with self._pool.acquire() as connection, connection.transaction():
            recorded = await connection.fetchval(
                """UPDATE review_outbox SET state = $2, attempts = attempts + 1, last_error_code = $3, last_error = $4,
                       next_attempt_at = now() + make_interval(secs => $5),
                       delivered_at = CASE WHEN $2 = 'DELIVERED' THEN now() END
                   WHERE id = $1 RETURNING true""",
                entry.id,
                state,
                error_code,
                error,
                retry_in_seconds,
            )
            if recorded is None:
                return False
            if state == "DELIVERED" and entry.kind == RUN_SIGNAL:
                item = await connection.fetchrow(
                    "SELECT status, version FROM review_items WHERE id = $1", uuid.UUID(entry.item_id)
                )
                assert item is not None  # the outbox row just updated belongs to it (ON DELETE CASCADE)
                await _insert_event(
                    connection, entry.tenant, entry.item_id, "RUN_SIGNALLED", item["status"], item["version"], ""
                )
            return True

    async def redeliver(self, tenant: str, item_id: str) -> int:
        """Queues the item's FAILED deliveries again, due now with a new retry window; returns how many."""
        key = _parse_uuid(item_id)
        if key is None:
            raise _not_found(item_id)
        async with self._pool.acquire() as connection, connection.transaction():
            exists = await connection.fetchval(
                "SELECT true FROM review_items WHERE tenant = $1 AND id = $2 FOR SHARE", tenant, key
            )
            if exists is None:
                raise _not_found(item_id)
            requeued = await connection.fetchval(
                """WITH requeued AS (
                           UPDATE review_outbox SET state = 'PENDING', next_attempt_at = now(), retry_from = now()
                           WHERE item_id = $1 AND state = 'FAILED' RETURNING 1)
                       SELECT count(*) FROM requeued""",
                key,
            )
            if requeued:
                await connection.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
        if requeued:
            self.outbox_ready.set()
        return requeued

    # -- data subjects ---------------------------------------------------------------------------

    async def erase_subject(
        self, tenant: str, subject_id: str, forget_files: Callable[[list[str]], Awaitable[int]]
    ) -> ItemsErased:
        """Deletes the items naming the subject with everything kept for them, in one transaction; the files
        the file sink wrote for them go (`forget_files`) before it commits, so a failure leaves it to a retry."""
        async with self._pool.acquire() as connection, connection.transaction():
            item_ids = await connection.fetchval(
                """SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM (
                       SELECT id FROM review_items WHERE tenant = $1 AND subject_ids @> ARRAY[$2::text]
                       ORDER BY id FOR UPDATE) AS locked""",
                tenant,
                subject_id,
            )
            arms, outcome_events = await erase_experiment_customer(connection, tenant, subject_id)
            memberships = await erase_audience_customer(connection, tenant, subject_id)
            if not item_ids:
                return ItemsErased(
                    experiment_arms=arms, outcome_events=outcome_events, audience_memberships=memberships
                )
            deleted = {}
            # Children first: events refer to decisions, outbox rows to publications.
            for table in (
                "review_events",
                "review_outbox",
                "review_publications",
                "review_decisions",
                "review_versions",
            ):
                status = await connection.execute(f"DELETE FROM {table} WHERE item_id = ANY($1::uuid[])", item_ids)
                deleted[table] = int(status.split()[-1])
            await connection.execute("DELETE FROM review_items WHERE id = ANY($1::uuid[])", item_ids)
            files = await forget_files([str(item_id) for item_id in item_ids])
        return ItemsErased(
            items=len(item_ids),
            versions=deleted["review_versions"],
            decisions=deleted["review_decisions"],
            events=deleted["review_events"],
            outbox_rows=deleted["review_outbox"],
            publications=deleted["review_publications"],
            files=files,
            experiment_arms=arms,
            outcome_events=outcome_events,
            audience_memberships=memberships,
        )

    async def describe_subject(
        self, tenant: str, subject_id: str, ceiling: DataClass
    ) -> tuple[list[SubjectHolding], list[SubjectItem]]:
        """What the store holds about the subject, kind by kind, read in one snapshot; and the items naming it."""
        async with self._pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            holdings = []
            for kind, records_sql in _SUBJECT_RECORDS:
                holdings += await describe_kind(connection, kind, records_sql, tenant, subject_id, ceiling=ceiling)
            rows = await connection.fetch(
                f"SELECT id::text AS id, data_class, purpose FROM review_items i WHERE {_NAMES_SUBJECT} ORDER BY id",
                tenant,
                subject_id,
            )
        return holdings, [SubjectItem(row["id"], DataClass(row["data_class"]), row["purpose"]) for row in rows]
