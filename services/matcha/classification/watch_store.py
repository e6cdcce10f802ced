"""PostgreSQL storage of listening watches: the watches and their leases, posts, source counters, window reports
and alerts. Every query is scoped by tenant; writes of a window's owner are fenced by its lease."""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from matcha.classification.sentiment import ModelRef
from matcha.runtime.data_map import SubjectHolding, class_name_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.governance import DataClass
from matcha.runtime.notifications import EventBus, NotificationListener

ALERTS_CHANNEL = "classification_watch_alerts"
EMBEDDING_DTYPE = np.float32


@dataclass(frozen=True)
class WatchRow:
    tenant: str
    name: str
    description: str
    sources: list[dict[str, Any]]
    window_seconds: float
    look_back_windows: int
    start_time: datetime
    grace_seconds: float
    tracked_topics: list[dict[str, Any]]
    thresholds: dict[str, Any]
    shift_threshold: float
    min_topic_posts: int
    webhook_url: str
    creator: str
    data_class: DataClass
    created_at: datetime
    next_window_end: datetime
    report_count: int


@dataclass(frozen=True)
class SourceRow:
    source: str
    state: str
    accepted_posts: int
    duplicate_posts: int
    rejected_posts: int
    last_rejection: str
    last_error: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    cursor: dict[str, Any]


@dataclass(frozen=True)
class StoredPost:
    post_id: str
    text: str
    published_at: datetime
    source: str
    data_class: DataClass
    consented_purposes: list[str]
    subject_id: str


@dataclass(frozen=True)
class AnalysedPost:
    post_id: str
    text: str
    published_at: datetime
    source: str
    data_class: DataClass
    embedding: np.ndarray | None
    sentiment: str | None
    sentiment_model: ModelRef | None = None


@dataclass(frozen=True)
class ReportRow:
    watch: str
    window_start: datetime
    window_end: datetime
    closed_at: datetime
    window_posts: int
    report: dict[str, Any]
    centroids: np.ndarray
    data_class: DataClass
    alert_count: int


@dataclass(frozen=True)
class NewAlert:
    type: str
    alert: dict[str, Any]
    post_ids: list[str]
    data_class: DataClass


@dataclass(frozen=True)
class AlertRow:
    sequence: int
    tenant: str
    watch: str
    window_end: datetime
    type: str
    alert: dict[str, Any]
    data_class: DataClass
    created_at: datetime
    webhook_state: str
    webhook_attempts: int
    webhook_url: str = ""


class LeaseLost(Exception):
    """Another replica owns the watch now (or it was deleted): this one stops writing to it."""


_ANALYSED_COLUMNS = """post_id, text, published_at, source, data_class, embedding, sentiment, sentiment_model_id,
    sentiment_model_version"""
_WATCH_COLUMNS = """tenant, name, description, sources, window_seconds, look_back_windows, start_time, grace_seconds,
    tracked_topics, thresholds, shift_threshold, min_topic_posts, webhook_url, creator, data_class, created_at,
    next_window_end, report_count"""


def _watch(row: asyncpg.Record) -> WatchRow:
    values = dict(row)
    values["data_class"] = DataClass(values["data_class"])
    return WatchRow(**{key: values[key] for key in WatchRow.__dataclass_fields__})


def _source(row: asyncpg.Record) -> SourceRow:
    return SourceRow(**{key: row[key] for key in SourceRow.__dataclass_fields__})


def _alert(row: asyncpg.Record) -> AlertRow:
    return AlertRow(
        sequence=row["sequence"],
        tenant=row["tenant"],
        watch=row["watch"],
        window_end=row["window_end"],
        type=row["type"],
        alert=row["alert"],
        data_class=DataClass(row["data_class"]),
        created_at=row["created_at"],
        webhook_state=row["webhook_state"],
        webhook_attempts=row["webhook_attempts"],
        webhook_url=row.get("webhook_url", ""),
    )


class WatchStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self.alerts = EventBus()
        self._listener: NotificationListener | None = None

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._database.pool

    async def listen(self) -> None:
        self._listener = NotificationListener(
            self._database.session_url, {ALERTS_CHANNEL: self.alerts.notify}, on_reconnect=self.alerts.notify_all
        )
        await self._listener.start()

    async def stop_listening(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    # -- watches ---------------------------------------------------------------------------------

    async def create(self, row: WatchRow) -> WatchRow | None:
        """None when the tenant already has a watch of that name."""
        async with self._pool.acquire() as connection, connection.transaction():
            created = await connection.fetchrow(
                f"""INSERT INTO classification_watches (tenant, name, description, sources, window_seconds,
                        look_back_windows, start_time, grace_seconds, tracked_topics, thresholds, shift_threshold,
                        min_topic_posts, webhook_url, creator, data_class, next_window_end)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                    ON CONFLICT (tenant, name) DO NOTHING RETURNING {_WATCH_COLUMNS}""",
                row.tenant,
                row.name,
                row.description,
                row.sources,
                row.window_seconds,
                row.look_back_windows,
                row.start_time,
                row.grace_seconds,
                row.tracked_topics,
                row.thresholds,
                row.shift_threshold,
                row.min_topic_posts,
                row.webhook_url,
                row.creator,
                int(row.data_class),
                row.next_window_end,
            )
            if created is None:
                return None
            await connection.executemany(
                "INSERT INTO classification_watch_sources (tenant, watch, source, position) VALUES ($1, $2, $3, $4)",
                [(row.tenant, row.name, source["name"], index) for index, source in enumerate(row.sources)],
            )
            return _watch(created)

    async def get(self, tenant: str, name: str) -> WatchRow | None:
        row = await self._pool.fetchrow(
            f"SELECT {_WATCH_COLUMNS} FROM classification_watches WHERE tenant = $1 AND name = $2", tenant, name
        )
        return _watch(row) if row else None

    async def list_watches(self, tenant: str, after_name: str, limit: int) -> list[WatchRow]:
        rows = await self._pool.fetch(
            f"""SELECT {_WATCH_COLUMNS} FROM classification_watches WHERE tenant = $1 AND name > $2
                ORDER BY name LIMIT $3""",
            tenant,
            after_name,
            limit,
        )
        return [_watch(row) for row in rows]

    async def delete(self, tenant: str, name: str) -> tuple[int, int, int] | None:
        async with self._pool.acquire() as connection, connection.transaction():
            counts = await connection.fetchrow(
                """SELECT
                       (SELECT count(*) FROM classification_watch_posts WHERE tenant = $1 AND watch = $2) AS posts,
                       (SELECT count(*) FROM classification_watch_reports WHERE tenant = $1 AND watch = $2) AS reports,
                       (SELECT count(*) FROM classification_watch_alerts WHERE tenant = $1 AND watch = $2) AS alerts""",
                tenant,
                name,
            )
            status = await connection.execute(
                "DELETE FROM classification_watches WHERE tenant = $1 AND name = $2", tenant, name
            )
            if status.split()[-1] == "0":
                return None
            # Wakes the watch's alert streams on every replica, which end: the watch is gone.
            await connection.execute("SELECT pg_notify($1, $2)", ALERTS_CHANNEL, tenant)
            assert counts is not None  # a SELECT without FROM returns its one row
            return counts["posts"], counts["reports"], counts["alerts"]

    async def sources(self, tenant: str, name: str) -> list[SourceRow]:
        rows = await self._pool.fetch(
            """SELECT * FROM classification_watch_sources WHERE tenant = $1 AND watch = $2 ORDER BY position""",
            tenant,
            name,
        )
        return [_source(row) for row in rows]

    async def post_count(self, tenant: str, name: str, since: datetime) -> int:
        return await self._pool.fetchval(
            """SELECT count(*) FROM classification_watch_posts
               WHERE tenant = $1 AND watch = $2 AND published_at >= $3""",
            tenant,
            name,
            since,
        )

    # -- leases ----------------------------------------------------------------------------------

    async def claim(self, owner: str, lease_seconds: float) -> list[WatchRow]:
        """Renews this replica's leases and takes the watches whose lease is free or expired: one owner each."""
        rows = await self._pool.fetch(
            f"""UPDATE classification_watches
                SET lease_owner = $1, lease_expires = now() + make_interval(secs => $2)
                WHERE lease_owner = $1 OR lease_owner IS NULL OR lease_expires < now()
                RETURNING {_WATCH_COLUMNS}""",
            owner,
            lease_seconds,
        )
        return [_watch(row) for row in rows]

    async def release(self, owner: str) -> None:
        await self._pool.execute(
            "UPDATE classification_watches SET lease_owner = NULL, lease_expires = NULL WHERE lease_owner = $1", owner
        )

    async def skip_windows(self, watch: WatchRow, owner: str, next_window_end: datetime) -> None:
        """Moves the watch past windows left unreported (its owner was down longer than the look-back)."""
        moved = await self._pool.fetchval(
            """UPDATE classification_watches SET next_window_end = $4
               WHERE tenant = $1 AND name = $2 AND lease_owner = $3 AND next_window_end = $5 RETURNING 1""",
            watch.tenant,
            watch.name,
            owner,
            next_window_end,
            watch.next_window_end,
        )
        if moved is None:
            raise LeaseLost(watch.name)

    # -- posts -----------------------------------------------------------------------------------

    async def insert_posts(
        self, tenant: str, watch: str, source: str, posts: list[StoredPost], *, repeated: int = 0
    ) -> list[str]:
        """Stores the posts not already known; returns the ids stored. Counts them on the source, with
        `repeated` posts the caller already found twice in what it read."""
        async with self._pool.acquire() as connection, connection.transaction():
            stored = await connection.fetch(
                """INSERT INTO classification_watch_posts (tenant, watch, post_id, text, published_at, source,
                       data_class, consented_purposes, subject_id)
                   SELECT $1, $2, p.id, p.text, p.time, p.source, p.class, p.purposes::text[], p.subject
                   FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::smallint[], $8::text[],
                               $9::text[]) AS p(id, text, time, source, class, purposes, subject)
                   ON CONFLICT DO NOTHING RETURNING post_id""",
                tenant,
                watch,
                [post.post_id for post in posts],
                [post.text for post in posts],
                [post.published_at for post in posts],
                [post.source for post in posts],
                [int(post.data_class) for post in posts],
                # A text[] per post, passed as its literal: unnest cannot take an array of arrays of varying length.
                ["{" + ",".join(_array_item(purpose) for purpose in post.consented_purposes) + "}" for post in posts],
                [post.subject_id for post in posts],
            )
            accepted = [row["post_id"] for row in stored]
            await self._count(
                connection,
                tenant,
                watch,
                source,
                accepted=len(accepted),
                duplicates=repeated + len(posts) - len(accepted),
            )
            return accepted

    async def count_source(
        self,
        tenant: str,
        watch: str,
        source: str,
        *,
        rejected: int = 0,
        last_rejection: str = "",
        error: str | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> None:
        """Records a read of the source: its rejections, and whether it failed (`error`) or succeeded (None)."""
        await self._pool.execute(
            """UPDATE classification_watch_sources
               SET rejected_posts = rejected_posts + $4,
                   last_rejection = CASE WHEN $5 = '' THEN last_rejection ELSE $5 END,
                   state = CASE WHEN $6::text IS NULL THEN 'OK' ELSE 'FAILING' END,
                   last_error = coalesce($6, last_error),
                   last_attempt_at = now(),
                   last_success_at = CASE WHEN $6::text IS NULL THEN now() ELSE last_success_at END,
                   cursor = coalesce($7, cursor)
               WHERE tenant = $1 AND watch = $2 AND source = $3""",
            tenant,
            watch,
            source,
            rejected,
            last_rejection,
            error,
            cursor,
        )

    @staticmethod
    async def _count(connection, tenant: str, watch: str, source: str, *, accepted: int, duplicates: int) -> None:
        await connection.execute(
            """UPDATE classification_watch_sources
               SET accepted_posts = accepted_posts + $4, duplicate_posts = duplicate_posts + $5
               WHERE tenant = $1 AND watch = $2 AND source = $3""",
            tenant,
            watch,
            source,
            accepted,
            duplicates,
        )

    async def unanalysed_posts(self, tenant: str, watch: str, before: datetime, limit: int) -> list[AnalysedPost]:
        rows = await self._pool.fetch(
            f"""SELECT {_ANALYSED_COLUMNS}
               FROM classification_watch_posts
               WHERE tenant = $1 AND watch = $2 AND embedding IS NULL AND published_at < $3
               ORDER BY published_at LIMIT $4""",
            tenant,
            watch,
            before,
            limit,
        )
        return [_analysed(row) for row in rows]

    async def save_analysis(
        self,
        tenant: str,
        watch: str,
        post_ids: list[str],
        embeddings: np.ndarray,
        sentiments: list[str],
        models: list[ModelRef],
    ) -> None:
        await self._pool.execute(
            """UPDATE classification_watch_posts AS p
               SET embedding = a.embedding, sentiment = a.sentiment, sentiment_model_id = a.model_id,
                   sentiment_model_version = a.model_version
               FROM unnest($3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[])
                    AS a(id, embedding, sentiment, model_id, model_version)
               WHERE p.tenant = $1 AND p.watch = $2 AND p.post_id = a.id""",
            tenant,
            watch,
            post_ids,
            [row.astype(EMBEDDING_DTYPE).tobytes() for row in embeddings],
            sentiments,
            [model.id for model in models],
            [model.version for model in models],
        )

    async def posts_between(self, tenant: str, watch: str, start: datetime, end: datetime) -> list[AnalysedPost]:
        rows = await self._pool.fetch(
            f"""SELECT {_ANALYSED_COLUMNS}
               FROM classification_watch_posts
               WHERE tenant = $1 AND watch = $2 AND published_at >= $3 AND published_at < $4
               ORDER BY published_at, post_id""",
            tenant,
            watch,
            start,
            end,
        )
        return [_analysed(row) for row in rows]

    async def forget_posts_before(self, tenant: str, watch: str, before: datetime) -> None:
        """Posts older than every future report's look-back serve nothing more."""
        await self._pool.execute(
            "DELETE FROM classification_watch_posts WHERE tenant = $1 AND watch = $2 AND published_at < $3",
            tenant,
            watch,
            before,
        )

    # -- reports and alerts ----------------------------------------------------------------------

    async def previous_report(self, tenant: str, watch: str, before: datetime) -> ReportRow | None:
        row = await self._pool.fetchrow(
            """SELECT * FROM classification_watch_reports WHERE tenant = $1 AND watch = $2 AND window_end < $3
               ORDER BY window_end DESC LIMIT 1""",
            tenant,
            watch,
            before,
        )
        return _report(row) if row else None

    async def save_report(
        self,
        watch: WatchRow,
        owner: str,
        next_window_end: datetime,
        report: ReportRow,
        post_ids: list[str],
        alerts: list[NewAlert],
    ) -> list[int]:
        """Stores the report and its alerts and moves the watch to its next window, if `owner` still holds
        it; returns the alerts' sequences. LeaseLost otherwise (nothing is written)."""
        async with self._pool.acquire() as connection, connection.transaction():
            moved = await connection.fetchval(
                """UPDATE classification_watches SET next_window_end = $4, report_count = report_count + 1
                   WHERE tenant = $1 AND name = $2 AND lease_owner = $3 AND lease_expires > now()
                         AND next_window_end = $5
                   RETURNING 1""",
                watch.tenant,
                watch.name,
                owner,
                next_window_end,
                report.window_end,
            )
            if moved is None:
                raise LeaseLost(watch.name)
            await connection.execute(
                """INSERT INTO classification_watch_reports (tenant, watch, window_end, window_start, window_posts,
                       report, centroids, post_ids, data_class, alert_count)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                watch.tenant,
                watch.name,
                report.window_end,
                report.window_start,
                report.window_posts,
                report.report,
                report.centroids.astype(EMBEDDING_DTYPE).tobytes(),
                post_ids,
                int(report.data_class),
                len(alerts),
            )
            sequences = []
            if alerts:
                # Held to commit: a tenant's alerts commit in sequence order.
                await connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"classification-alerts/{watch.tenant}"
                )
                webhook_state = "PENDING" if watch.webhook_url else "NONE"
                for alert in alerts:
                    sequences.append(
                        await connection.fetchval(
                            """INSERT INTO classification_watch_alerts (tenant, watch, window_end, type, alert,
                                   post_ids, data_class, webhook_state, webhook_next_at)
                               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8 = 'PENDING' THEN now() END)
                               RETURNING sequence""",
                            watch.tenant,
                            watch.name,
                            report.window_end,
                            alert.type,
                            alert.alert,
                            alert.post_ids,
                            int(alert.data_class),
                            webhook_state,
                        )
                    )
                await connection.execute("SELECT pg_notify($1, $2)", ALERTS_CHANNEL, watch.tenant)
            return sequences

    async def reports(self, tenant: str, watch: str, before: datetime | None, limit: int) -> list[ReportRow]:
        rows = await self._pool.fetch(
            """SELECT * FROM classification_watch_reports
               WHERE tenant = $1 AND watch = $2 AND ($3::timestamptz IS NULL OR window_end < $3)
               ORDER BY window_end DESC LIMIT $4""",
            tenant,
            watch,
            before,
            limit,
        )
        return [_report(row) for row in rows]

    async def last_alert_sequences(self, tenant: str, watches: list[str], ceiling: DataClass) -> dict[str, int]:
        """Each watch's latest alert of class `ceiling` at most (watches without one are left out)."""
        rows = await self._pool.fetch(
            """SELECT watch, max(sequence) AS sequence FROM classification_watch_alerts
               WHERE tenant = $1 AND watch = ANY($2::text[]) AND data_class <= $3 GROUP BY watch""",
            tenant,
            watches,
            int(ceiling),
        )
        return {row["watch"]: row["sequence"] for row in rows}

    async def last_alert_sequence(self, tenant: str) -> int:
        return await self._pool.fetchval(
            "SELECT coalesce(max(sequence), 0) FROM classification_watch_alerts WHERE tenant = $1", tenant
        )

    async def alerts_after(self, tenant: str, watch: str, after: int, limit: int = 500) -> list[AlertRow]:
        rows = await self._pool.fetch(
            """SELECT * FROM classification_watch_alerts
               WHERE tenant = $1 AND sequence > $2 AND ($3 = '' OR watch = $3) ORDER BY sequence LIMIT $4""",
            tenant,
            after,
            watch,
            limit,
        )
        return [_alert(row) for row in rows]

    # -- webhook deliveries ----------------------------------------------------------------------

    async def claim_deliveries(self, owner: str, hold_seconds: float, limit: int = 20) -> list[AlertRow]:
        """Pending deliveries of the watches `owner` holds, due now; held for `hold_seconds` while they run."""
        rows = await self._pool.fetch(
            """WITH due AS (
                   SELECT a.sequence FROM classification_watch_alerts a
                   JOIN classification_watches w ON w.tenant = a.tenant AND w.name = a.watch
                   WHERE a.webhook_state = 'PENDING' AND a.webhook_next_at <= now() AND w.lease_owner = $1
                   ORDER BY a.sequence LIMIT $3 FOR UPDATE OF a SKIP LOCKED)
               UPDATE classification_watch_alerts a
               SET webhook_next_at = now() + make_interval(secs => $2)
               FROM due, classification_watches w
               WHERE a.sequence = due.sequence AND w.tenant = a.tenant AND w.name = a.watch
               RETURNING a.*, w.webhook_url""",
            owner,
            hold_seconds,
            limit,
        )
        return [_alert(row) for row in rows]

    async def record_delivery(self, sequence: int, *, delivered: bool, error: str, retry_in: float | None) -> None:
        """A delivery attempt: delivered, to retry in `retry_in` seconds, or given up (retry_in None)."""
        state = "DELIVERED" if delivered else ("PENDING" if retry_in is not None else "FAILED")
        await self._pool.execute(
            """UPDATE classification_watch_alerts
               SET webhook_attempts = webhook_attempts + 1, webhook_state = $2, webhook_error = $3,
                   webhook_next_at = CASE WHEN $2 = 'PENDING' THEN now() + make_interval(secs => $4) END
               WHERE sequence = $1""",
            sequence,
            state,
            error,
            retry_in or 0.0,
        )

    # -- data subjects ---------------------------------------------------------------------------

    async def erase_subject(self, tenant: str, subject_id: str) -> tuple[int, list[tuple[str, list[str]]]]:
        """Deletes the subject's posts; returns how many, and per watch the ids deleted (reports and alerts
        that show them are scrubbed by the caller)."""
        rows = await self._pool.fetch(
            """DELETE FROM classification_watch_posts WHERE tenant = $1 AND subject_id = $2
               RETURNING watch, post_id""",
            tenant,
            subject_id,
        )
        by_watch: dict[str, list[str]] = {}
        for row in rows:
            by_watch.setdefault(row["watch"], []).append(row["post_id"])
        return len(rows), sorted(by_watch.items())

    async def scrub(self, tenant: str, watch: str, post_ids: list[str], scrub_json) -> None:
        """Rewrites the reports and alerts of `watch` that show one of `post_ids` with `scrub_json`."""
        async with self._pool.acquire() as connection, connection.transaction():
            for table, key, column in (
                ("classification_watch_reports", "window_end", "report"),
                ("classification_watch_alerts", "sequence", "alert"),
            ):
                rows = await connection.fetch(
                    f"""SELECT {key} AS key, {column} AS body, post_ids FROM {table}
                        WHERE tenant = $1 AND watch = $2 AND post_ids && $3::text[] FOR UPDATE""",
                    tenant,
                    watch,
                    post_ids,
                )
                for row in rows:
                    await connection.execute(
                        f"""UPDATE {table} SET {column} = $4, post_ids = $5
                            WHERE tenant = $1 AND watch = $2 AND {key} = $3""",
                        tenant,
                        watch,
                        row["key"],
                        scrub_json(row["body"], set(post_ids)),
                        [post_id for post_id in row["post_ids"] if post_id not in set(post_ids)],
                    )

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        return await describe_kind(
            self._pool,
            "listening-posts",
            f"""SELECT '' AS scope, p.data_class, p.consented_purposes AS purposes,
                       (p.watch, p.post_id) AS ordering,
                       jsonb_build_object('watch', p.watch, 'post_id', p.post_id, 'text', p.text,
                           'time', p.published_at, 'source', p.source, 'data_class', {class_name_sql("p.data_class")},
                           'consented_purposes', p.consented_purposes) AS record
                FROM classification_watch_posts p WHERE p.tenant = $1 AND p.subject_id = $2""",
            tenant,
            subject_id,
            ceiling=ceiling,
        )


def _array_item(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _analysed(row: asyncpg.Record) -> AnalysedPost:
    embedding = row["embedding"]
    return AnalysedPost(
        post_id=row["post_id"],
        text=row["text"],
        published_at=row["published_at"],
        source=row["source"],
        data_class=DataClass(row["data_class"]),
        embedding=np.frombuffer(embedding, dtype=EMBEDDING_DTYPE) if embedding is not None else None,
        sentiment=row["sentiment"],
        sentiment_model=(
            ModelRef(row["sentiment_model_id"], row["sentiment_model_version"]) if row["sentiment_model_id"] else None
        ),
    )


def _report(row: asyncpg.Record) -> ReportRow:
    return ReportRow(
        watch=row["watch"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        closed_at=row["closed_at"],
        window_posts=row["window_posts"],
        report=row["report"],
        centroids=np.frombuffer(row["centroids"], dtype=EMBEDDING_DTYPE),
        data_class=DataClass(row["data_class"]),
        alert_count=row["alert_count"],
    )


async def wait_quietly(event: asyncio.Event, seconds: float) -> None:
    """Waits for `event` at most `seconds`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(seconds, 0.0))
