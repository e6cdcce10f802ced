"""PostgreSQL storage of condition segments: versions, members, their changes, and the reads
the live counters and full re-evaluations need. Every statement is scoped by tenant."""

import io
from collections.abc import Sequence
from typing import Any

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy

from matcha.segmentation import binary_copy
from matcha.segmentation.customer_store import hold_off_erasure
from matcha.segmentation.feed import CHANGES_CHANNEL
from matcha.segmentation.partitions import SLOTS
from matcha.segmentation.records import BUILDING, READY, ConditionChange, ConditionRecord, CustomerFacts, PastEvents

_COLUMNS = """id, tenant, name, version, description, definition, state, progress, size, purpose, create_subject,
    created_at, completed_at"""


def _record(row: asyncpg.Record) -> ConditionRecord:
    return ConditionRecord(**dict(row))


class ConditionStore:
    def __init__(self, pool_source) -> None:
        # The service's database: its pool exists only once the service has started.
        self._source = pool_source

    @property
    def pool(self) -> asyncpg.Pool:
        return self._source.pool

    async def define(
        self, tenant: str, name: str, description: str, definition: dict, purpose: str, subject: str, key: str
    ) -> ConditionRecord:
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('segmentation_conditions/' || $1 || '/' || $2, 0))",
                tenant,
                name,
            )
            row = await connection.fetchrow(
                f"""INSERT INTO segmentation_condition_segments
                        (tenant, name, version, description, definition, state, progress, purpose, create_subject,
                         idempotency_key)
                    SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, {BUILDING}, '{{"stage": "events"}}', $5,
                           $6, $7
                    FROM segmentation_condition_segments WHERE tenant = $1 AND name = $2
                    RETURNING {_COLUMNS}""",
                tenant,
                name,
                description,
                definition,
                purpose,
                subject,
                key,
            )
        assert row is not None  # INSERT ... SELECT over an aggregate inserts one row
        return _record(row)

    async def by_idempotency_key(self, tenant: str, key: str) -> ConditionRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM segmentation_condition_segments WHERE tenant = $1 AND idempotency_key = $2",
            tenant,
            key,
        )
        return _record(row) if row else None

    async def get(self, tenant: str, name: str, version: int) -> ConditionRecord | None:
        row = await self.pool.fetchrow(
            f"""SELECT {_COLUMNS} FROM segmentation_condition_segments
                WHERE tenant = $1 AND name = $2 AND ($3 = 0 OR version = $3)
                ORDER BY version DESC LIMIT 1""",
            tenant,
            name,
            version,
        )
        return _record(row) if row else None

    async def latest(self, tenant: str) -> list[ConditionRecord]:
        rows = await self.pool.fetch(
            f"""SELECT DISTINCT ON (name) {_COLUMNS} FROM segmentation_condition_segments
                WHERE tenant = $1 ORDER BY name, version DESC""",
            tenant,
        )
        return [_record(row) for row in rows]

    async def tenants_building(self) -> list[str]:
        """Tenants with a condition segment version not evaluated for every slot yet."""
        rows = await self.pool.fetch(
            f"SELECT DISTINCT tenant FROM segmentation_condition_segments WHERE state = {BUILDING}"
        )
        return [row[0] for row in rows]

    async def exists(self, tenant: str, name: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM segmentation_condition_segments WHERE tenant = $1 AND name = $2)",
                tenant,
                name,
            )
        )

    async def set_progress(self, segment_ids: Sequence[int], progress: dict[str, Any]) -> None:
        await self.pool.execute(
            f"""UPDATE segmentation_condition_segments SET progress = $2
                WHERE id = ANY($1::int8[]) AND state = {BUILDING}""",
            list(segment_ids),
            progress,
        )

    async def complete(
        self, tenant: str, segment_id: int, keys: np.ndarray, slots: frozenset[int] | None = None
    ) -> None:
        """Replaces the version's members in `slots` (None: all) with `keys`, records those slots as evaluated,
        and marks the version READY once every slot is, in one transaction."""
        covered = sorted(slots) if slots is not None else list(range(SLOTS))
        async with self.pool.acquire() as connection, connection.transaction():
            await hold_off_erasure(connection, tenant)
            # Replicas completing their slots together: one at a time, each seeing the others' coverage.
            await connection.execute(
                "SELECT 1 FROM segmentation_condition_segments WHERE id = $1 FOR UPDATE", segment_id
            )
            if slots is None:
                await connection.execute("DELETE FROM segmentation_condition_members WHERE segment_id = $1", segment_id)
            else:
                await connection.execute(
                    """DELETE FROM segmentation_condition_members m USING segmentation_customers c
                       WHERE m.segment_id = $1 AND c.key = m.customer_key AND c.slot = ANY($2::int2[])""",
                    segment_id,
                    covered,
                )
            if len(keys):
                buffer = binary_copy.encode(
                    [(np.full(len(keys), segment_id, dtype=np.int64), ">i8"), (keys.astype(np.int64), ">i8")]
                )
                await connection.copy_to_table(
                    "segmentation_condition_members",
                    source=io.BytesIO(buffer),
                    columns=["segment_id", "customer_key"],
                    format="binary",
                )
                # Customers erased since the evaluation read them (about 0.3 s at 700,000 members).
                await connection.execute(
                    """DELETE FROM segmentation_condition_members m WHERE m.segment_id = $1
                       AND NOT EXISTS (SELECT FROM segmentation_customers c WHERE c.key = m.customer_key)""",
                    segment_id,
                )
            await connection.execute(
                """INSERT INTO segmentation_condition_coverage (segment_id, slot)
                   SELECT $1, unnest($2::int2[]) ON CONFLICT DO NOTHING""",
                segment_id,
                covered,
            )
            await connection.execute(
                f"""UPDATE segmentation_condition_segments
                    SET state = {READY}, progress = '{{}}', completed_at = now(),
                        size = (SELECT count(*) FROM segmentation_condition_members WHERE segment_id = $1)
                    WHERE id = $1 AND state = {BUILDING}
                      AND (SELECT count(*) FROM segmentation_condition_coverage WHERE segment_id = $1) = {SLOTS}""",
                segment_id,
            )

    async def record_changes(self, tenant: str, changes: Sequence[ConditionChange]) -> None:
        """Applies entries and exits to the members and appends them to the tenant's change log, in one
        statement holding erasure off. A customer may enter and leave a segment within `changes`: the
        members get the last of them, the log all of them in order."""
        if not changes:
            return
        sizes: dict[int, int] = {}
        last: dict[tuple[int, int], bool] = {}
        for change in changes:
            sizes[change.segment.id] = sizes.get(change.segment.id, 0) + (1 if change.entered else -1)
            last[change.segment.id, change.customer_key] = change.entered
        entered = [pair for pair, inside in last.items() if inside]
        left = [pair for pair, inside in last.items() if not inside]
        async with self.pool.acquire() as connection, connection.transaction():
            await hold_off_erasure(connection, tenant)
            await connection.execute(
                """WITH present AS (  -- a customer erased since its changes were decided gets none of them
                       SELECT key, id FROM segmentation_customers WHERE key = ANY($9::int8[])),
                   entered AS (
                       INSERT INTO segmentation_condition_members (segment_id, customer_key)
                       SELECT e.* FROM unnest($2::int8[], $3::int8[]) AS e(segment_id, customer_key)
                       WHERE e.customer_key IN (SELECT key FROM present) ON CONFLICT DO NOTHING),
                   left_segment AS (
                       DELETE FROM segmentation_condition_members m
                       USING unnest($4::int8[], $5::int8[]) AS d(segment_id, customer_key)
                       WHERE m.segment_id = d.segment_id AND m.customer_key = d.customer_key),
                   sized AS (
                       UPDATE segmentation_condition_segments s SET size = s.size + d.delta
                       FROM unnest($6::int8[], $7::int8[]) AS d(id, delta) WHERE s.id = d.id),
                   sequence AS (
                       INSERT INTO segmentation_tenants AS t (tenant, change_sequence) VALUES ($1, $8)
                       ON CONFLICT (tenant) DO UPDATE SET change_sequence = t.change_sequence + $8
                       RETURNING change_sequence),
                   logged AS (
                       INSERT INTO segmentation_changes
                           (tenant, sequence, customer_key, customer_id, segmentation, version, from_segment,
                            to_segment, to_name, cause_id)
                       SELECT $1, (SELECT change_sequence FROM sequence) - $8 + m.position, m.key, p.id,
                              m.segmentation, m.version,
                              CASE WHEN m.entered THEN '' ELSE m.segmentation END,
                              CASE WHEN m.entered THEN m.segmentation ELSE '' END,
                              CASE WHEN m.entered THEN m.segmentation ELSE '' END, m.cause_id
                       FROM unnest($9::int8[], $10::text[], $11::int4[], $12::bool[], $13::text[])
                            WITH ORDINALITY AS m(key, segmentation, version, entered, cause_id, position)
                       JOIN present p ON p.key = m.key)
                   SELECT pg_notify($14, $1)""",
                tenant,
                [segment_id for segment_id, _ in entered],
                [key for _, key in entered],
                [segment_id for segment_id, _ in left],
                [key for _, key in left],
                list(sizes),
                list(sizes.values()),
                len(changes),
                [change.customer_key for change in changes],
                [change.segment.name for change in changes],
                [change.segment.version for change in changes],
                [change.entered for change in changes],
                [change.cause_id for change in changes],
                CHANGES_CHANNEL,
            )

    async def member_keys(self, segment_id: int, slots: frozenset[int] | None = None) -> np.ndarray:
        """The version's members, those of customers in `slots` when given."""
        rows = await self.pool.fetch(
            """SELECT m.customer_key FROM segmentation_condition_members m
               WHERE m.segment_id = $1 AND ($2::int2[] IS NULL
                     OR m.customer_key IN (SELECT key FROM segmentation_customers WHERE slot = ANY($2::int2[])))""",
            segment_id,
            None if slots is None else sorted(slots),
        )
        return np.asarray([row[0] for row in rows], dtype=np.int64)

    async def members(self, segment_id: int, after_id: str, limit: int) -> tuple[list[str], int]:
        rows = await self.pool.fetch(
            """SELECT c.id FROM segmentation_condition_members m JOIN segmentation_customers c ON c.key = m.customer_key
               WHERE m.segment_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3""",
            segment_id,
            after_id,
            limit,
        )
        total = await self.pool.fetchval(
            "SELECT count(*) FROM segmentation_condition_members WHERE segment_id = $1", segment_id
        )
        return [row[0] for row in rows], total

    # --- what validation checks names against ---------------------------------------------------

    async def attribute_key_exists(self, tenant: str, key: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM segmentation_customers WHERE tenant = $1 AND attributes ? $2)",
                tenant,
                key,
            )
        )

    async def feature_exists(self, tenant: str, name: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM segmentation_customers WHERE tenant = $1 AND custom_features ? $2)",
                tenant,
                name,
            )
        )

    async def built_segments(self, tenant: str) -> dict[str, set[str]]:
        rows = await self.pool.fetch(
            """SELECT DISTINCT ON (v.name) v.name, array(SELECT s.id FROM segmentation_segments s
                                                   WHERE s.version_id = v.id) AS segments
               FROM segmentation_versions v WHERE v.tenant = $1 AND v.state = $2
               ORDER BY v.name, v.version DESC""",
            tenant,
            READY,
        )
        return {row["name"]: set(row["segments"]) for row in rows}

    async def built_name_exists(self, tenant: str, name: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM segmentation_versions WHERE tenant = $1 AND name = $2)", tenant, name
            )
        )

    # --- what evaluation reads ------------------------------------------------------------------

    async def customer_facts(
        self,
        tenant: str,
        keys: Sequence[int] | None,
        attributes: Sequence[str],
        features: Sequence[str],
        *,
        connection: asyncpg.Connection | PoolConnectionProxy | None = None,
        slots: frozenset[int] | None = None,
    ) -> list[CustomerFacts]:
        """The customers' ids, policies and the properties conditions test; every customer (of `slots` when
        given) when `keys` is None."""
        rows = await (connection or self.pool).fetch(
            """SELECT key, id, data_class, consented_purposes,
                      (SELECT coalesce(jsonb_object_agg(k, attributes -> k), '{}')
                       FROM unnest($3::text[]) AS k WHERE attributes ? k) AS attributes,
                      (SELECT coalesce(jsonb_object_agg(k, custom_features -> k), '{}')
                       FROM unnest($4::text[]) AS k WHERE custom_features ? k) AS features,
                      purchases, spend
               FROM segmentation_customers
               WHERE tenant = $1 AND ($2::int8[] IS NULL OR key = ANY($2::int8[]))
                     AND ($5::int2[] IS NULL OR slot = ANY($5::int2[]))""",
            tenant,
            None if keys is None else list(keys),
            list(attributes),
            list(features),
            None if slots is None else sorted(slots),
        )
        return [
            CustomerFacts(
                key=row["key"],
                id=row["id"],
                data_class=row["data_class"],
                consented_purposes=tuple(row["consented_purposes"]),
                attributes=row["attributes"],
                features=row["features"] | {"purchases": float(row["purchases"]), "spend": row["spend"]},
            )
            for row in rows
        ]

    async def built_positions(
        self,
        tenant: str,
        segmentation: str,
        keys: Sequence[int] | None,
        *,
        connection: asyncpg.Connection | PoolConnectionProxy | None = None,
    ) -> tuple[dict[int, str], int]:
        """Segment id of each customer in the latest READY version of a built segmentation, and that version's id."""
        source = connection or self.pool
        version_id = await source.fetchval(
            """SELECT id FROM segmentation_versions WHERE tenant = $1 AND name = $2 AND state = $3
               ORDER BY version DESC LIMIT 1""",
            tenant,
            segmentation,
            READY,
        )
        if version_id is None:
            return {}, 0
        rows = await source.fetch(
            """SELECT m.customer_key, s.id FROM segmentation_memberships m
               JOIN segmentation_segments s ON s.version_id = m.version_id AND s.position = m.position
               WHERE m.version_id = $1 AND ($2::int8[] IS NULL OR m.customer_key = ANY($2::int8[]))""",
            version_id,
            None if keys is None else list(keys),
        )
        return {row[0]: row[1] for row in rows}, version_id

    @staticmethod
    async def past_events(
        connection: asyncpg.Connection | PoolConnectionProxy,
        tenant: str,
        since: float,
        types: Sequence[int],
        item_lists: Sequence[Sequence[str]],
    ) -> PastEvents:
        """Stored events of the given types from `since` (epoch seconds), by binary COPY, in the
        connection's snapshot."""
        flags = "".join(f", (item_id = ANY(${4 + index}::text[]))::int::int2" for index in range(len(item_lists)))
        query = f"""SELECT customer_key, type, extract(epoch FROM time)::float8, amount{flags}
                    FROM segmentation_events
                    WHERE tenant = $1 AND time >= to_timestamp($2) AND type = ANY($3::int2[])
                    ORDER BY time"""
        buffer = io.BytesIO()
        await connection.copy_from_query(
            query, tenant, since, list(types), *[list(items) for items in item_lists], output=buffer, format="binary"
        )
        columns = binary_copy.decode(buffer.getvalue(), [">i8", ">i2", ">f8", ">f8"] + [">i2"] * len(item_lists))
        return PastEvents(columns[0], columns[1], columns[2], columns[3], [c.astype(bool) for c in columns[4:]])
