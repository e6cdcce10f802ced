"""PostgreSQL storage of segmentation versions: their segments, exemplars and memberships, and the change log
that live re-assignment appends to.

Every statement is scoped by tenant. Memberships move by binary COPY into a partition of their version's own.
"""

import asyncio
import io
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy

from matcha.runtime.database import Database
from matcha.runtime.errors import NotFound
from matcha.segmentation import binary_copy
from matcha.segmentation.feed import CHANGES_CHANNEL
from matcha.segmentation.records import (
    BUILDING,
    FAILED,
    READY,
    ChangeRecord,
    MembershipsToStore,
    Move,
    SegmentRecord,
    SegmentsToStore,
    VersionRecord,
)


def _version(row: asyncpg.Record) -> VersionRecord:
    return VersionRecord(
        id=row["id"],
        tenant=row["tenant"],
        name=row["name"],
        version=row["version"],
        description=row["description"],
        state=row["state"],
        progress=row["progress"],
        error=row["error"],
        method=row["method"],
        features=list(row["features"]),
        model=row["model"],
        silhouette=row["silhouette"],
        seed=row["seed"],
        population=row["population"],
        purpose=row["purpose"],
        create_subject=row["create_subject"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


_VERSION_COLUMNS = """id, tenant, name, version, description, state, progress, error, method, features, model,
    silhouette, seed, population, purpose, create_subject, created_at, completed_at"""


def segmentation_not_found(name: str, version: int = 0) -> NotFound:
    suffix = f" version {version}" if version else ""
    return NotFound(
        f"segmentation {name!r}{suffix} not found",
        reason="SEGMENTATION_NOT_FOUND",
        metadata={"segmentation": name, "version": str(version)},
    )


class VersionsStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def pool(self) -> asyncpg.Pool:
        return self._database.pool

    # --- segmentation versions ----------------------------------------------------------------

    async def start_version(
        self,
        tenant: str,
        name: str,
        *,
        description: str,
        method: int,
        features: list[str],
        seed: int,
        purpose: str,
        subject: str,
        idempotency_key: str,
    ) -> VersionRecord:
        async with self.pool.acquire() as connection, connection.transaction():
            # Serialises builds of one name so versions number without gaps or clashes.
            await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))", tenant, name)
            row = await connection.fetchrow(
                f"""INSERT INTO segmentation_versions
                        (tenant, name, version, description, state, progress, method, features, seed, purpose,
                         create_subject, idempotency_key)
                    SELECT $1, $2, coalesce(max(version), 0) + 1, $3, {BUILDING}, '{{"stage": "loading"}}', $4, $5,
                           $6, $7, $8, $9
                    FROM segmentation_versions WHERE tenant = $1 AND name = $2
                    RETURNING {_VERSION_COLUMNS}""",
                tenant,
                name,
                description,
                method,
                features,
                seed,
                purpose,
                subject,
                idempotency_key,
            )
        assert row is not None  # INSERT ... SELECT over an aggregate inserts one row
        return _version(row)

    async def version_by_idempotency_key(self, tenant: str, key: str) -> VersionRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM segmentation_versions WHERE tenant = $1 AND idempotency_key = $2",
            tenant,
            key,
        )
        return _version(row) if row else None

    async def set_progress(self, version_id: int, progress: dict[str, Any]) -> None:
        await self.pool.execute(
            "UPDATE segmentation_versions SET progress = $2 WHERE id = $1 AND state = $3",
            version_id,
            progress,
            BUILDING,
        )

    async def fail_version(self, version_id: int, error: dict[str, Any]) -> None:
        await self.pool.execute(
            "UPDATE segmentation_versions SET state = $2, error = $3, completed_at = now() WHERE id = $1",
            version_id,
            FAILED,
            error,
        )

    async def complete_version(
        self, version_id: int, memberships: MembershipsToStore, details: Awaitable[SegmentsToStore]
    ) -> None:
        """Writes memberships, segments and exemplars, then marks the version READY: all or nothing.

        The memberships are copied while `details` (the segments' profiles, computed off the event loop)
        completes, so the database's work overlaps the build's last stage.
        """
        async with self.pool.acquire() as connection, connection.transaction():
            copying = asyncio.create_task(self._copy_memberships(connection, version_id, memberships))
            try:
                stored = await details
            except BaseException:
                # Never leave the connection mid-COPY; the transaction then rolls back. The error reported
                # is the build's own.
                await asyncio.wait([copying])
                if not copying.cancelled():
                    copying.exception()
                raise
            await copying
            await connection.executemany(
                """INSERT INTO segmentation_segments
                       (version_id, position, id, name, size, share, outliers, condition, profile, top_features)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                [
                    (
                        version_id,
                        segment["position"],
                        segment["id"],
                        segment["name"],
                        segment["size"],
                        segment["share"],
                        segment["outliers"],
                        segment["condition"],
                        segment["profile"],
                        segment["top_features"],
                    )
                    for segment in stored.segments
                ],
            )
            await connection.executemany(
                """INSERT INTO segmentation_exemplars (version_id, position, rank, customer_key, distance)
                   VALUES ($1, $2, $3, $4, $5)""",
                [(version_id, *exemplar) for exemplar in stored.exemplars],
            )
            await connection.execute(
                """UPDATE segmentation_versions SET state = $2, model = $3, snapshot = $4, silhouette = $5,
                       population = $6, progress = '{}', completed_at = now() WHERE id = $1""",
                version_id,
                READY,
                stored.model,
                stored.snapshot,
                stored.silhouette,
                stored.population,
            )

    @staticmethod
    async def _copy_memberships(
        connection: asyncpg.Connection | PoolConnectionProxy, version_id: int, memberships: MembershipsToStore
    ) -> None:
        """Copies the memberships into a table of the version's own, indexes it, then attaches it as the
        version's partition (as migration 0004 lays partitions out)."""
        partition = _memberships_partition(version_id)
        await connection.execute(f"CREATE TABLE {partition} (LIKE segmentation_memberships INCLUDING DEFAULTS)")
        buffer = await asyncio.to_thread(_memberships_copy, version_id, memberships)
        await connection.copy_to_table(
            partition,
            source=io.BytesIO(buffer),
            columns=["version_id", "customer_key", "position", "build_position", "distance", "confidence"],
            format="binary",
        )
        await connection.execute(f"ALTER TABLE {partition} ADD PRIMARY KEY (customer_key)")
        await connection.execute(f"CREATE INDEX ON {partition} (position, distance)")
        # Statistics now, not at autovacuum's next pass: until then the planner takes the new partition for
        # empty, and member listings, audiences and live re-assignment plan as if it were.
        await connection.execute(f"ANALYZE {partition}")
        await connection.execute(
            f"ALTER TABLE segmentation_memberships ATTACH PARTITION {partition} FOR VALUES IN ({int(version_id)})"
        )

    async def get_version(self, tenant: str, name: str, version: int = 0, *, ready: bool = False) -> VersionRecord:
        """A version by number; 0 is the latest (the latest READY one when `ready`)."""
        conditions = "tenant = $1 AND name = $2"
        params: list[Any] = [tenant, name]
        if version:
            conditions += " AND version = $3"
            params.append(version)
        elif ready:
            conditions += f" AND state = {READY}"
        row = await self.pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM segmentation_versions WHERE {conditions} ORDER BY version DESC LIMIT 1",
            *params,
        )
        if row is None:
            raise segmentation_not_found(name, version)
        return _version(row)

    async def snapshot(self, version_id: int) -> bytes:
        return await self.pool.fetchval("SELECT snapshot FROM segmentation_versions WHERE id = $1", version_id)

    async def list_versions(self, tenant: str, name: str, limit: int, offset: int) -> list[VersionRecord]:
        if name:
            rows = await self.pool.fetch(
                f"""SELECT {_VERSION_COLUMNS} FROM segmentation_versions WHERE tenant = $1 AND name = $2
                    ORDER BY version DESC LIMIT $3 OFFSET $4""",
                tenant,
                name,
                limit,
                offset,
            )
        else:
            rows = await self.pool.fetch(
                f"""SELECT DISTINCT ON (name) {_VERSION_COLUMNS} FROM segmentation_versions WHERE tenant = $1
                    ORDER BY name, version DESC LIMIT $2 OFFSET $3""",
                tenant,
                limit,
                offset,
            )
        return [_version(row) for row in rows]

    async def latest_ready_versions(self, connection, tenant: str) -> list[VersionRecord]:
        rows = await connection.fetch(
            f"""SELECT DISTINCT ON (name) {_VERSION_COLUMNS} FROM segmentation_versions
                WHERE tenant = $1 AND state = {READY} ORDER BY name, version DESC""",
            tenant,
        )
        return [_version(row) for row in rows]

    async def latest_ready_version(self, tenant: str) -> VersionRecord | None:
        """The most recently built READY version of any segmentation of the tenant."""
        row = await self.pool.fetchrow(
            f"""SELECT {_VERSION_COLUMNS} FROM segmentation_versions WHERE tenant = $1 AND state = {READY}
                ORDER BY completed_at DESC, id DESC LIMIT 1""",
            tenant,
        )
        return _version(row) if row else None

    async def segments(self, version_id: int, *, with_details: bool = True) -> list[SegmentRecord]:
        rows = await self.pool.fetch(
            """SELECT * FROM segmentation_segments WHERE version_id = $1 ORDER BY size DESC, position""", version_id
        )
        exemplars: dict[int, list[tuple[str, float]]] = {}
        if with_details:
            for row in await self.pool.fetch(
                """SELECT e.position, c.id, e.distance FROM segmentation_exemplars e
                   JOIN segmentation_customers c ON c.key = e.customer_key
                   WHERE e.version_id = $1 ORDER BY e.position, e.rank""",
                version_id,
            ):
                exemplars.setdefault(row["position"], []).append((row["id"], row["distance"]))
        return [
            SegmentRecord(
                position=row["position"],
                id=row["id"],
                name=row["name"],
                size=row["size"],
                share=row["share"],
                outliers=row["outliers"],
                condition=row["condition"],
                profile=row["profile"] if with_details else [],
                top_features=list(row["top_features"]),
                persona=row["persona"],
                exemplars=exemplars.get(row["position"], []),
            )
            for row in rows
        ]

    async def memberships(self, version_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(customer keys, current positions, build-time positions) of a version, by key.

        Customers who joined the version by live re-assignment have no build-time position (-1).
        """
        buffer = io.BytesIO()
        async with self.pool.acquire() as connection:
            await connection.copy_from_query(
                """SELECT customer_key, position::int8, build_position::int8 FROM segmentation_memberships
                   WHERE version_id = $1 ORDER BY customer_key""",
                version_id,
                output=buffer,
                format="binary",
            )
        keys, positions, build_positions = binary_copy.decode(buffer.getvalue(), [">i8", ">i8", ">i8"])
        return keys, positions, build_positions

    async def members(
        self, version_id: int, position: int, limit: int, after: tuple[float, int] | None
    ) -> tuple[list[tuple[str, float, datetime, int]], int]:
        """A page of a segment's members, closest first, after a (distance, key) cursor; and the total."""
        rows = await self.pool.fetch(
            """SELECT c.id, m.distance, m.since, m.customer_key FROM segmentation_memberships m
               JOIN segmentation_customers c ON c.key = m.customer_key
               WHERE m.version_id = $1 AND m.position = $2
                 AND ($4::float8 IS NULL OR (m.distance, m.customer_key) > ($4, $5))
               ORDER BY m.distance, m.customer_key LIMIT $3""",
            version_id,
            position,
            limit,
            after[0] if after else None,
            after[1] if after else 0,
        )
        total = await self.pool.fetchval(
            "SELECT count(*) FROM segmentation_memberships WHERE version_id = $1 AND position = $2",
            version_id,
            position,
        )
        return [(row["id"], row["distance"], row["since"], row["customer_key"]) for row in rows], total

    async def attach_persona(self, version_id: int, segment_id: str, persona: dict[str, Any]) -> bool:
        result = await self.pool.execute(
            "UPDATE segmentation_segments SET persona = $3 WHERE version_id = $1 AND id = $2",
            version_id,
            segment_id,
            persona,
        )
        return result.endswith(" 1")

    # --- live re-assignment and the change log ------------------------------------------------

    async def current_positions(self, connection, version_id: int, keys: Sequence[int] | np.ndarray) -> dict[int, int]:
        rows = await connection.fetch(
            """SELECT customer_key, position FROM segmentation_memberships
               WHERE version_id = $1 AND customer_key = ANY($2::int8[])""",
            version_id,
            list(map(int, keys)),
        )
        return {row["customer_key"]: row["position"] for row in rows}

    async def apply_moves(
        self,
        connection: asyncpg.Connection | PoolConnectionProxy,
        tenant: str,
        version: VersionRecord,
        moves: list[Move],
        names: list,
    ) -> None:
        """Records moves in the version's memberships and appends them to the tenant's change log."""
        if not moves:
            return
        # Into the version's partition: its primary key (the customer) is the conflict's arbiter.
        await connection.execute(
            f"""INSERT INTO {_memberships_partition(version.id)}
                   (version_id, customer_key, position, build_position, distance, confidence)
               SELECT $1, m.key, m.position, -1, m.distance, m.confidence
               FROM unnest($2::int8[], $3::int2[], $4::float8[], $5::float8[]) AS m(key, position, distance, confidence)
               ON CONFLICT (customer_key) DO UPDATE SET position = EXCLUDED.position,
                   distance = EXCLUDED.distance, confidence = EXCLUDED.confidence, since = now()""",
            version.id,
            [move.customer_key for move in moves],
            [move.to_position for move in moves],
            [move.distance for move in moves],
            [move.confidence for move in moves],
        )
        last = await connection.fetchval(
            """INSERT INTO segmentation_tenants AS t (tenant, change_sequence) VALUES ($1, $2)
               ON CONFLICT (tenant) DO UPDATE SET change_sequence = t.change_sequence + $2
               RETURNING change_sequence""",
            tenant,
            len(moves),
        )
        first = last - len(moves) + 1
        await connection.execute(
            """INSERT INTO segmentation_changes
                   (tenant, sequence, customer_key, customer_id, segmentation, version, from_segment, to_segment,
                    to_name, cause_id)
               SELECT $1, m.sequence, m.key, c.id, $2, $3, m.from_segment, m.to_segment, m.to_name, m.cause_id
               FROM unnest($4::int8[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[])
                    AS m(sequence, key, from_segment, to_segment, to_name, cause_id)
               JOIN segmentation_customers c ON c.key = m.key""",
            tenant,
            version.name,
            version.version,
            list(range(first, last + 1)),
            [move.customer_key for move in moves],
            [move.from_segment for move in moves],
            [names[move.to_position][0] for move in moves],
            [names[move.to_position][1] for move in moves],
            [move.cause_id for move in moves],
        )
        await connection.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, tenant)

    async def last_change_sequence(self, tenant: str) -> int:
        value = await self.pool.fetchval("SELECT change_sequence FROM segmentation_tenants WHERE tenant = $1", tenant)
        return value or 0

    async def changes_after(
        self, tenant: str, sequence: int, segmentation: str, segment_ids: list[str], limit: int = 500
    ) -> list[ChangeRecord]:
        rows = await self.pool.fetch(
            """SELECT * FROM segmentation_changes
               WHERE tenant = $1 AND sequence > $2 AND ($3 = '' OR segmentation = $3)
                 AND (cardinality($4::text[]) = 0 OR from_segment = ANY($4) OR to_segment = ANY($4))
               ORDER BY sequence LIMIT $5""",
            tenant,
            sequence,
            segmentation,
            segment_ids,
            limit,
        )
        return [change_record(row) for row in rows]

    async def segmentation_exists(self, tenant: str, name: str) -> bool:
        return bool(
            await self.pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM segmentation_versions WHERE tenant = $1 AND name = $2)
                       OR EXISTS (SELECT 1 FROM segmentation_condition_segments WHERE tenant = $1 AND name = $2)""",
                tenant,
                name,
            )
        )


def _memberships_partition(version_id: int) -> str:
    return f"segmentation_memberships_{int(version_id)}"


def _memberships_copy(version_id: int, memberships: MembershipsToStore) -> bytes:
    """A binary COPY of the memberships, members of a segment together and closest first: the order
    the members of a segment are read in, and the segment index then sorts presorted rows."""
    order = np.lexsort((memberships.keys, memberships.distances, memberships.positions))
    positions = memberships.positions[order]
    return binary_copy.encode(
        [
            (np.full(len(order), version_id), ">i8"),
            (memberships.keys[order], ">i8"),
            (positions, ">i2"),
            (positions, ">i2"),
            (memberships.distances[order], ">f8"),
            (memberships.confidences[order], ">f8"),
        ]
    )


def change_record(row: asyncpg.Record) -> ChangeRecord:
    return ChangeRecord(
        sequence=row["sequence"],
        time=row["time"],
        customer_id=row["customer_id"],
        segmentation=row["segmentation"],
        version=row["version"],
        from_segment=row["from_segment"],
        to_segment=row["to_segment"],
        to_name=row["to_name"],
        cause_id=row["cause_id"],
    )
