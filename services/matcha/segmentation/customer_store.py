"""PostgreSQL storage of customers and their history (transactions, events, purchases): what ingestion writes,
and the feature table builds, scoring and recommendations read of it; idempotent replies; a data subject's
records for erasure and description.

Every statement is scoped by tenant. Bulk paths are set-based: batches arrive as
arrays (`unnest`) and feature matrices move by binary COPY.
"""

import asyncio
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy

from matcha.runtime.data_map import SubjectHolding, class_name_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.errors import NotFound
from matcha.runtime.governance import DataClass, RecordPolicy
from matcha.segmentation import binary_copy
from matcha.segmentation.features import RAW_FEATURES, FeatureTable
from matcha.segmentation.records import (
    READY,
    ChangeRecord,
    CustomerRow,
    ErasedRecords,
    EventBatch,
    EventCustomers,
    MembershipRecord,
    StoredCustomer,
    StoredEvents,
    TransactionBatch,
    Unsubscribed,
)
from matcha.segmentation.versions_store import change_record

PURPOSE_SEPARATOR = "\x1f"
BULK_ROWS = 5_000
_PURCHASE_EVENT = 1
_FEW_CUSTOMERS = 1_000


def eligible_sql(purpose: str) -> str:
    """Customers (`c`) whose data may serve the purpose held by the `purpose` parameter: PUBLIC ones, or
    those who consented to it."""
    return RecordPolicy.visibility_sql(purpose, "c")


# Built-in raw features in SQL, at reference time $2. Trend: least-squares slope of
# spend over the twelve 30-day buckets before the reference time (zero-filled), which
# reduces to sum((bucket - 5.5) * amount) / 143.
_FEATURE_SQL = """
SELECT c.key,
       greatest(extract(epoch FROM $2::timestamptz - coalesce(c.last_purchase_at, c.join_time, c.created_at)) / 86400,
                0)::float8,
       c.purchases::float8,
       CASE WHEN c.purchases > 0 THEN c.spend / c.purchases ELSE 0 END::float8,
       greatest(extract(epoch FROM $2::timestamptz - coalesce(c.join_time, c.first_purchase_at, c.created_at)) / 86400,
                0)::float8,
       CASE WHEN c.purchases > 0 THEN c.quantity / c.purchases ELSE 0 END::float8,
       CASE WHEN c.purchases > 1
            THEN extract(epoch FROM c.last_purchase_at - c.first_purchase_at) / 86400 / (c.purchases - 1)
            ELSE 0 END::float8,
       coalesce(t.trend, 0)::float8,
       coalesce(e.visits, 0)::float8,
       coalesce(e.clicks, 0)::float8
       {custom}
FROM segmentation_customers c
LEFT JOIN (
    SELECT customer_key,
           sum((floor(extract(epoch FROM time - ($2::timestamptz - interval '360 days')) / 2592000) - 5.5)
               * CASE WHEN refund THEN -amount ELSE amount END) / 143 AS trend
    FROM segmentation_transactions
    WHERE tenant = $1::text AND time > $2::timestamptz - interval '360 days' AND time <= $2::timestamptz
          {transaction_filter}
    GROUP BY customer_key) t ON t.customer_key = c.key
LEFT JOIN (
    SELECT customer_key, count(*) FILTER (WHERE type = 2) AS visits, count(*) FILTER (WHERE type = 3) AS clicks
    FROM segmentation_events
    WHERE tenant = $1::text AND time > $2::timestamptz - interval '30 days' AND time <= $2::timestamptz {event_filter}
    GROUP BY customer_key) e ON e.customer_key = c.key
WHERE c.tenant = $1::text AND {eligible} {customer_filter}
"""

# Folds each customer's row of `totals` (purchases, spend, quantity, first_at, last_at) into its aggregates:
# the transactions and the events statements end the same way.
_FOLD_TOTALS = """UPDATE segmentation_customers c SET
                   purchases = c.purchases + t.purchases, spend = c.spend + t.spend,
                   quantity = c.quantity + t.quantity,
                   first_purchase_at = least(c.first_purchase_at, t.first_at),
                   last_purchase_at = greatest(c.last_purchase_at, t.last_at), updated_at = now()
               FROM totals t WHERE c.key = t.customer_key"""

# A customer's caller features as (names in jsonb key order, their values packed as float8), stored
# beside the jsonb; both aggregates see jsonb_each's rows in one order.
_CUSTOM_ARRAYS = """SELECT coalesce(array_agg(key), '{{}}') AS feature_names,
       coalesce(string_agg(float8send(coalesce((value #>> '{{}}')::float8, 'NaN')), ''::bytea), '') AS feature_values
FROM jsonb_each({features})"""
_NEW_ARRAYS = _CUSTOM_ARRAYS.format(features="i.features")
_MERGED_ARRAYS = _CUSTOM_ARRAYS.format(features="c.custom_features || EXCLUDED.custom_features")

# Caller features only, when a build needs no built-in feature: no history to aggregate.
_CUSTOM_FEATURE_SQL = """
SELECT c.key {custom}
FROM segmentation_customers c
WHERE c.tenant = $1::text AND $2::timestamptz IS NOT NULL
  AND {eligible} {customer_filter}
"""


# Rows keyed by customer without a foreign key to it (migration 0013): an erasure deletes them itself.
_PER_EVENT_TABLES = (
    "segmentation_events",
    "segmentation_transactions",
    "segmentation_purchases",
    "segmentation_condition_members",
    "segmentation_changes",
)


# The tenant's erasure lock, shared by writers of the per-event tables and held alone by an erasure.
_ERASURE_LOCK = "hashtextextended('segmentation erasure ' || $1::text, 0)"


async def hold_off_erasure(connection: asyncpg.Connection | PoolConnectionProxy, tenant: str) -> None:
    """Holds erasure in `tenant` off until the connection's transaction ends, waiting for one in progress; the
    first statement of a transaction that writes events, transactions, purchases, condition members or
    changes. Those tables have no foreign key to customers (migration 0013): what the transaction reads after
    this sees every erasure done, and no erasure misses what it writes (erasures delete their rows)."""
    await connection.execute(f"SELECT pg_advisory_xact_lock_shared({_ERASURE_LOCK})", tenant)


class CustomerStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def pool(self) -> asyncpg.Pool:
        return self._database.pool

    # --- customers and their history ----------------------------------------------------------

    async def upsert_customers(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, rows: list[CustomerRow]
    ) -> tuple[int, int, list[int]]:
        """Returns (inserted, updated, keys of changed customers); identical rows are left alone."""
        records = await connection.fetch(
            f"""INSERT INTO segmentation_customers AS c
                   (tenant, id, attributes, custom_features, custom_names, custom_values, join_time, data_class,
                    consented_purposes, source, subject_id, opted_out_channels)
               SELECT $1, i.id, i.attributes, i.features, a.feature_names, a.feature_values, i.join_time, i.data_class,
                      string_to_array(i.purposes, E'\\x1f'), i.source, i.subject_id,
                      string_to_array(i.opted_out, E'\\x1f')
               FROM unnest($2::text[], $3::jsonb[], $4::jsonb[], $5::timestamptz[], $6::int2[], $7::text[],
                           $8::text[], $9::text[], $10::text[])
                    AS i(id, attributes, features, join_time, data_class, purposes, source, subject_id, opted_out),
                    LATERAL ({_NEW_ARRAYS}) a
               ON CONFLICT (tenant, id) DO UPDATE SET
                   attributes = EXCLUDED.attributes,
                   custom_features = c.custom_features || EXCLUDED.custom_features,
                   (custom_names, custom_values) = ({_MERGED_ARRAYS}),
                   join_time = EXCLUDED.join_time, data_class = EXCLUDED.data_class,
                   consented_purposes = EXCLUDED.consented_purposes, source = EXCLUDED.source,
                   subject_id = EXCLUDED.subject_id, opted_out_channels = EXCLUDED.opted_out_channels,
                   updated_at = now()
               WHERE (c.attributes, c.custom_features || EXCLUDED.custom_features, c.join_time, c.data_class,
                      c.consented_purposes, c.source, c.subject_id, c.opted_out_channels)
                     IS DISTINCT FROM
                     (EXCLUDED.attributes, c.custom_features, EXCLUDED.join_time, EXCLUDED.data_class,
                      EXCLUDED.consented_purposes, EXCLUDED.source, EXCLUDED.subject_id, EXCLUDED.opted_out_channels)
               RETURNING key, (xmax = 0) AS inserted""",
            tenant,
            [row.id for row in rows],
            [row.attributes for row in rows],
            [row.features for row in rows],
            [row.join_time for row in rows],
            [int(row.policy.data_class) for row in rows],
            [PURPOSE_SEPARATOR.join(sorted(row.policy.consented_purposes)) for row in rows],
            [row.policy.source for row in rows],
            [row.policy.subject_id or row.id for row in rows],
            [PURPOSE_SEPARATOR.join(sorted(row.opted_out_channels)) for row in rows],
        )
        if records:
            # Consent or data class may have changed: who counts in recommendations.
            await self._purchases_changed(connection, tenant)
        if len(rows) >= BULK_ROWS:
            await connection.execute("ANALYZE segmentation_customers")
        inserted = sum(1 for record in records if record["inserted"])
        return inserted, len(records) - inserted, [record["key"] for record in records]

    async def unknown_customers(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, ids: list[str]
    ) -> set[str]:
        rows = await connection.fetch(
            """SELECT u.id FROM unnest($2::text[]) AS u(id)
               WHERE NOT EXISTS (SELECT 1 FROM segmentation_customers c WHERE c.tenant = $1 AND c.id = u.id)""",
            tenant,
            list(set(ids)),
        )
        return {row["id"] for row in rows}

    async def create_missing_customers(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, ids: list[str], policy: RecordPolicy
    ) -> list[asyncpg.Record]:
        """Creates the customers not stored yet; the created ones' `key` and `id`."""
        return await connection.fetch(
            """INSERT INTO segmentation_customers (tenant, id, data_class, consented_purposes, source, subject_id)
               SELECT $1, u.id, $3, $4, $5, coalesce(nullif($6, ''), u.id)
               FROM (SELECT DISTINCT id FROM unnest($2::text[]) AS u(id)) u
               ON CONFLICT (tenant, id) DO NOTHING
               RETURNING key, id""",
            tenant,
            ids,
            int(policy.data_class),
            sorted(policy.consented_purposes),
            policy.source,
            policy.subject_id,
        )

    async def event_customers(
        self,
        connection: asyncpg.Connection | PoolConnectionProxy,
        tenant: str,
        ids: list[str],
        attribute_keys: Sequence[str] = (),
        feature_names: Sequence[str] = (),
    ) -> EventCustomers:
        """The stored customers among `ids` with what an events message needs of them, in one statement:
        their keys, their policies (consent is checked on them), the properties condition segments read."""
        rows = await connection.fetch(
            f"""WITH ready AS (SELECT EXISTS (SELECT 1 FROM segmentation_versions
                                              WHERE tenant = $1 AND state = {READY}) AS any)
               SELECT ready.any AS has_ready, c.key, c.id, c.data_class, c.consented_purposes,
                      CASE WHEN cardinality($3::text[]) > 0 THEN
                          (SELECT coalesce(jsonb_object_agg(k, c.attributes -> k), '{{}}')
                           FROM unnest($3::text[]) AS k WHERE c.attributes ? k) END AS attributes,
                      CASE WHEN cardinality($4::text[]) > 0 THEN
                          (SELECT coalesce(jsonb_object_agg(k, c.custom_features -> k), '{{}}')
                           FROM unnest($4::text[]) AS k WHERE c.custom_features ? k) END AS features,
                      c.purchases, c.spend
               FROM ready LEFT JOIN segmentation_customers c ON c.tenant = $1 AND c.id = ANY($2::text[])""",
            tenant,
            ids,
            list(attribute_keys),
            list(feature_names),
        )
        has_ready = bool(rows[0]["has_ready"])
        return EventCustomers([row for row in rows if row["key"] is not None], has_ready)

    async def customer_policies(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, ids: list[str]
    ) -> dict:
        rows = await connection.fetch(
            """SELECT id, data_class, consented_purposes, source, subject_id FROM segmentation_customers
               WHERE tenant = $1 AND id = ANY($2::text[])""",
            tenant,
            list(set(ids)),
        )
        return {row["id"]: RecordPolicy.from_row(row) for row in rows}

    async def insert_transactions(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, batch: TransactionBatch
    ) -> tuple[int, list[int]]:
        """Stores new transactions and folds them into their customers' aggregates; (inserted, touched keys)."""
        rows = await connection.fetch(
            f"""WITH inserted AS (
                   INSERT INTO segmentation_transactions
                       (tenant, id, customer_key, time, amount, quantity, channel, item_id, refund)
                   SELECT $1, i.id, c.key, i.time, i.amount, i.quantity, i.channel, i.item_id, i.refund
                   FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[], $7::text[],
                               $8::text[], $9::bool[])
                        AS i(id, customer_id, time, amount, quantity, channel, item_id, refund)
                   JOIN segmentation_customers c ON c.tenant = $1 AND c.id = i.customer_id
                   ON CONFLICT (tenant, id) DO NOTHING
                   RETURNING customer_key, time, amount, quantity, refund, item_id),
               bought AS (
                   INSERT INTO segmentation_purchases AS p (tenant, customer_key, item_id, purchases, last_at)
                   SELECT $1, customer_key, item_id, count(*), max(time) FROM inserted
                   WHERE item_id <> '' AND NOT refund GROUP BY customer_key, item_id
                   ON CONFLICT (customer_key, item_id) DO UPDATE SET
                       purchases = p.purchases + EXCLUDED.purchases, last_at = greatest(p.last_at, EXCLUDED.last_at)),
               totals AS (
                   SELECT customer_key, count(*) AS stored,
                          count(*) FILTER (WHERE NOT refund) AS purchases,
                          sum(CASE WHEN refund THEN -amount ELSE amount END) AS spend,
                          coalesce(sum(quantity) FILTER (WHERE NOT refund), 0) AS quantity,
                          min(time) FILTER (WHERE NOT refund) AS first_at,
                          max(time) FILTER (WHERE NOT refund) AS last_at
                   FROM inserted GROUP BY customer_key)
               {_FOLD_TOTALS}
               RETURNING c.key, t.stored""",
            tenant,
            batch.ids,
            batch.customer_ids,
            batch.times,
            batch.amounts,
            batch.quantities,
            batch.channels,
            batch.item_ids,
            batch.refunds,
        )
        await self._advance_reference_time(connection, tenant, max(batch.times))
        if rows:
            await self._purchases_changed(connection, tenant)
        if len(batch.ids) >= BULK_ROWS:
            # Fresh statistics keep the planner from guessing on tables that just grew a lot.
            await connection.execute(
                "ANALYZE segmentation_customers, segmentation_transactions, segmentation_purchases"
            )
        return sum(row["stored"] for row in rows), [row["key"] for row in rows]

    async def store_events(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, batch: EventBatch
    ) -> StoredEvents:
        """Stores an events message in one statement, in a transaction holding erasure off since before its
        customers were read (their keys are not checked again): the new events (a stored id is skipped),
        purchases as transactions folded into their customers' aggregates and the purchase table, the tenant's
        reference time and purchases version."""
        count = len(batch.ids)
        row = await connection.fetchrow(
            f"""WITH input AS (
                   SELECT i.* FROM unnest($2::text[], $3::int8[], $4::int2[], $5::timestamptz[], $6::text[],
                                          $7::float8[], $8::float8[])
                        AS i(id, customer_key, type, time, item_id, amount, quantity)),
               stored AS (
                   INSERT INTO segmentation_events (tenant, id, customer_key, type, time, item_id, amount, quantity)
                   SELECT $1, id, customer_key, type, time, item_id, amount, quantity FROM input
                   ON CONFLICT (tenant, id) DO NOTHING
                   RETURNING id),
               bought_rows AS (
                   INSERT INTO segmentation_transactions
                       (tenant, id, customer_key, time, amount, quantity, channel, item_id, refund)
                   SELECT $1, id, customer_key, time, amount, quantity, '', item_id, false
                   FROM input WHERE type = {_PURCHASE_EVENT}
                   ON CONFLICT (tenant, id) DO NOTHING
                   RETURNING customer_key, time, amount, quantity, item_id),
               bought AS (
                   INSERT INTO segmentation_purchases AS p (tenant, customer_key, item_id, purchases, last_at)
                   SELECT $1, customer_key, item_id, count(*), max(time) FROM bought_rows
                   WHERE item_id <> '' GROUP BY customer_key, item_id
                   ON CONFLICT (customer_key, item_id) DO UPDATE SET
                       purchases = p.purchases + EXCLUDED.purchases,
                       last_at = greatest(p.last_at, EXCLUDED.last_at)),
               totals AS (
                   SELECT customer_key, count(*) AS purchases, sum(amount) AS spend, sum(quantity) AS quantity,
                          min(time) AS first_at, max(time) AS last_at
                   FROM bought_rows GROUP BY customer_key),
               folded AS (
                   {_FOLD_TOTALS}
                   RETURNING c.key, c.purchases, c.spend),
               -- The reference time advances; purchases stored mark what recommendations count as changed
               -- (see migration 0006).
               tenant_row AS (
                   INSERT INTO segmentation_tenants AS t (tenant, reference_time, purchases_version)
                   SELECT $1, $9, (EXISTS (SELECT 1 FROM totals))::int
                   ON CONFLICT (tenant) DO UPDATE
                   SET reference_time = greatest(t.reference_time, EXCLUDED.reference_time),
                       purchases_version = t.purchases_version + EXCLUDED.purchases_version)
               SELECT s.stored, s.stored_ids, f.keys, f.purchases, f.spend
               FROM (SELECT count(*) AS stored,
                            CASE WHEN count(*) < $10 THEN coalesce(array_agg(id), '{{}}') END AS stored_ids
                     FROM stored) s,
                    (SELECT array_agg(key) AS keys, array_agg(purchases) AS purchases, array_agg(spend) AS spend
                     FROM folded) f""",
            tenant,
            batch.ids,
            batch.customer_keys,
            batch.types,
            batch.times,
            batch.item_ids,
            batch.amounts,
            batch.quantities,
            max(batch.times),
            count,
        )
        assert row is not None  # a select from two aggregates gives one row
        folded = list(zip(row["keys"] or (), row["purchases"] or (), row["spend"] or (), strict=True))
        return StoredEvents(row["stored_ids"], row["stored"], folded)

    @staticmethod
    async def _purchases_changed(connection: asyncpg.Connection | PoolConnectionProxy, tenant: str) -> None:
        """Marks what recommendations count as changed, in the caller's transaction (see migration 0006)."""
        await connection.execute(
            """INSERT INTO segmentation_tenants AS t (tenant, purchases_version) VALUES ($1, 1)
               ON CONFLICT (tenant) DO UPDATE SET purchases_version = t.purchases_version + 1""",
            tenant,
        )

    async def _advance_reference_time(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, latest: datetime
    ) -> None:
        await connection.execute(
            """INSERT INTO segmentation_tenants AS t (tenant, reference_time) VALUES ($1, $2)
               ON CONFLICT (tenant) DO UPDATE
               SET reference_time = greatest(t.reference_time, EXCLUDED.reference_time)""",
            tenant,
            latest,
        )

    # --- reading customers and their features -------------------------------------------------

    async def reference_time(
        self, connection: asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool, tenant: str
    ) -> datetime:
        value = await connection.fetchval("SELECT reference_time FROM segmentation_tenants WHERE tenant = $1", tenant)
        return value or datetime.now(UTC)

    async def load_features(
        self,
        connection: asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool,
        tenant: str,
        purpose: str,
        custom_features: Sequence[str],
        keys: Sequence[int] | None = None,
        *,
        built_in: bool = True,
    ) -> tuple[FeatureTable, datetime]:
        """Raw built-in (unless `built_in` is false) and the named custom features of eligible customers,
        by binary COPY. A customer without one of the custom features has NaN there.
        """
        reference = await self.reference_time(connection, tenant)
        params: list[Any] = [tenant, reference, purpose]
        # A few customers (live re-assignment) read their jsonb directly: not worth a lookup of the common set.
        many = keys is None or len(keys) > _FEW_CUSTOMERS
        shared = (
            await self._common_custom_names(connection, tenant, custom_features) if custom_features and many else []
        )
        custom_sql = ""
        if shared:
            # Customers with the common set of names give their packed values as they are stored; the
            # others the same names' values from jsonb (NaN where missing), so every row has one width.
            params.append(shared)
            marker = f"${len(params)}::text[]"
            from_json = " || ".join(
                f"float8send(coalesce((c.custom_features ->> ({marker})[{index + 1}])::float8, 'NaN'))"
                for index in range(len(shared))
            )
            custom_sql += f", CASE WHEN c.custom_names = {marker} THEN c.custom_values ELSE {from_json} END"
        alone = [name for name in custom_features if name not in shared]
        for name in alone:
            params.append(name)
            custom_sql += f", coalesce((c.custom_features ->> ${len(params)}::text)::float8, 'NaN')"
        filters = {"transaction_filter": "", "event_filter": "", "customer_filter": ""}
        if keys is not None:
            params.append(list(keys))
            marker = f"${len(params)}::int8[]"
            filters = {
                "transaction_filter": f"AND customer_key = ANY({marker})",
                "event_filter": f"AND customer_key = ANY({marker})",
                "customer_filter": f"AND c.key = ANY({marker})",
            }
        template = _FEATURE_SQL if built_in else _CUSTOM_FEATURE_SQL
        query = template.format(custom=custom_sql, eligible=eligible_sql("$3"), **filters)
        buffer = io.BytesIO()
        if isinstance(connection, asyncpg.Pool):
            async with connection.acquire() as acquired, acquired.transaction():
                await _copy_features(acquired, query, params, buffer)
        else:
            await _copy_features(connection, query, params, buffer)
        table = await asyncio.to_thread(
            _decode_features, buffer.getvalue(), list(RAW_FEATURES) if built_in else [], shared, alone, custom_features
        )
        return table, reference

    async def _common_custom_names(self, connection, tenant: str, wanted: Sequence[str]) -> list[str]:
        """The set of custom feature names most of a sample of the tenant's customers have, in stored order,
        if it holds one of the wanted features."""
        names = await connection.fetchval(
            """SELECT custom_names FROM (SELECT custom_names FROM segmentation_customers
                                         WHERE tenant = $1 AND custom_names <> '{}' LIMIT 1000) s
               GROUP BY custom_names ORDER BY count(*) DESC, custom_names LIMIT 1""",
            tenant,
        )
        names = list(names or [])
        return names if set(names) & set(wanted) else []

    async def customer(self, connection, tenant: str, customer_id: str) -> StoredCustomer:
        row = await connection.fetchrow(
            """SELECT key, id, attributes, custom_features, join_time, data_class, consented_purposes, source,
                      subject_id, opted_out_channels, unsubscribed_channels
               FROM segmentation_customers WHERE tenant = $1 AND id = $2""",
            tenant,
            customer_id,
        )
        if row is None:
            raise NotFound(
                f"customer {customer_id!r} not found",
                reason="CUSTOMER_NOT_FOUND",
                metadata={"customer_id": customer_id},
            )
        return StoredCustomer(
            row["key"],
            CustomerRow(
                row["id"],
                row["attributes"],
                row["custom_features"],
                row["join_time"],
                RecordPolicy.from_row(row),
                tuple(row["opted_out_channels"]),
                tuple(row["unsubscribed_channels"]),
            ),
        )

    async def unsubscribe(self, tenant: str, customer_id: str, channel: str) -> Unsubscribed:
        """Adds `channel` to the customer's unsubscriptions."""
        row = await self.pool.fetchrow(
            """WITH current AS (
                   SELECT key, $3 = ANY(unsubscribed_channels) AS already
                   FROM segmentation_customers WHERE tenant = $1 AND id = $2 FOR UPDATE)
               UPDATE segmentation_customers c
                  SET unsubscribed_channels = CASE WHEN current.already THEN c.unsubscribed_channels
                                                   ELSE c.unsubscribed_channels || $3 END,
                      updated_at = CASE WHEN current.already THEN c.updated_at ELSE now() END
               FROM current WHERE c.key = current.key
               RETURNING c.unsubscribed_channels, NOT current.already AS changed, c.data_class,
                         c.consented_purposes, c.source, c.subject_id""",
            tenant,
            customer_id,
            channel,
        )
        if row is None:
            raise NotFound(
                f"customer {customer_id!r} not found",
                reason="CUSTOMER_NOT_FOUND",
                metadata={"customer_id": customer_id},
            )
        return Unsubscribed(tuple(row["unsubscribed_channels"]), row["changed"], RecordPolicy.from_row(row))

    async def customer_ids(self, connection, keys: Sequence[int]) -> dict[int, str]:
        rows = await connection.fetch(
            "SELECT key, id FROM segmentation_customers WHERE key = ANY($1::int8[])", list(map(int, keys))
        )
        return {row["key"]: row["id"] for row in rows}

    async def memberships_of_customer(self, tenant: str, customer_key: int) -> list[MembershipRecord]:
        rows = await self.pool.fetch(
            """SELECT DISTINCT ON (v.name) v.name, v.version, s.id AS segment_id, s.name AS segment_name, m.since
               FROM segmentation_versions v
               JOIN segmentation_memberships m ON m.version_id = v.id AND m.customer_key = $2
               JOIN segmentation_segments s ON s.version_id = v.id AND s.position = m.position
               WHERE v.tenant = $1 AND v.state = 2
                 AND v.version = (SELECT max(version) FROM segmentation_versions w
                                  WHERE w.tenant = v.tenant AND w.name = v.name AND w.state = 2)
               ORDER BY v.name""",
            tenant,
            customer_key,
        )
        return [
            MembershipRecord(row["name"], row["version"], row["segment_id"], row["segment_name"], row["since"])
            for row in rows
        ]

    async def history_of_customer(self, tenant: str, customer_key: int, limit: int) -> list[ChangeRecord]:
        rows = await self.pool.fetch(
            """SELECT * FROM segmentation_changes WHERE tenant = $1 AND customer_key = $2
               ORDER BY sequence DESC LIMIT $3""",
            tenant,
            customer_key,
            limit,
        )
        return [change_record(row) for row in rows]

    # --- idempotency and erasure --------------------------------------------------------------

    async def recall(self, tenant: str, method: str, key: str) -> dict[str, Any] | None:
        if not key:
            return None
        return await self.pool.fetchval(
            "SELECT reply FROM segmentation_idempotency WHERE tenant = $1 AND method = $2 AND key = $3",
            tenant,
            method,
            key,
        )

    async def remember(
        self, connection, tenant: str, method: str, key: str, reply: dict[str, Any], subject_ids: Sequence[str] = ()
    ) -> None:
        """Stores a call's reply under its idempotency key, with the data subjects whose records it carried."""
        if key:
            await connection.execute(
                """INSERT INTO segmentation_idempotency (tenant, method, key, reply, subject_ids)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                tenant,
                method,
                key,
                reply,
                sorted(set(subject_ids)),
            )

    async def erase_subject(self, tenant: str, subject_id: str) -> ErasedRecords:
        async with self.pool.acquire() as connection, connection.transaction():
            # Alone in the tenant: writers of the per-event tables in progress finish first, later ones wait.
            await connection.execute(f"SELECT pg_advisory_xact_lock({_ERASURE_LOCK})", tenant)
            replies = await connection.execute(
                "DELETE FROM segmentation_idempotency WHERE tenant = $1 AND subject_ids @> ARRAY[$2::text]",
                tenant,
                subject_id,
            )
            keys = [
                row["key"]
                for row in await connection.fetch(
                    "SELECT key FROM segmentation_customers WHERE tenant = $1 AND subject_id = $2 FOR UPDATE",
                    tenant,
                    subject_id,
                )
            ]
            erased_replies = int(replies.split()[-1])
            if not keys:
                return ErasedRecords(0, 0, 0, erased_replies)
            # Through each version's primary key (the customer).
            await connection.execute(
                """DELETE FROM segmentation_memberships WHERE customer_key = ANY($2::int8[])
                   AND version_id IN (SELECT id FROM segmentation_versions WHERE tenant = $1)""",
                tenant,
                keys,
            )
            deleted = {}
            for table in _PER_EVENT_TABLES:  # no foreign key: see migration 0013
                status = await connection.execute(f"DELETE FROM {table} WHERE customer_key = ANY($1::int8[])", keys)
                deleted[table] = int(status.split()[-1])
            # Exemplars go with the customer (ON DELETE CASCADE).
            await connection.execute("DELETE FROM segmentation_customers WHERE key = ANY($1::int8[])", keys)
            await self._purchases_changed(connection, tenant)
        transactions, events = deleted["segmentation_transactions"], deleted["segmentation_events"]
        return ErasedRecords(len(keys), transactions, events, erased_replies)

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        """What the store holds about the subject, kind by kind, read in one snapshot."""
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            holdings = []
            for kind, records_sql in _SUBJECT_RECORDS:
                holdings += await describe_kind(connection, kind, records_sql, tenant, subject_id, ceiling=ceiling)
            return holdings


# Customers (`c`) of the subject: their records carry the customer's class and consented purposes.
_OF_SUBJECT = "c.tenant = $1 AND c.subject_id = $2"
# Per kind of record about a subject, the rows `describe_kind` reads (see matcha.runtime.data_map).
_SUBJECT_RECORDS = (
    (
        "customers",
        f"""SELECT '' AS scope, c.data_class, c.consented_purposes AS purposes, c.id AS ordering,
                   jsonb_build_object('id', c.id, 'attributes', c.attributes, 'features', c.custom_features,
                       'join_time', c.join_time, 'data_class', {class_name_sql("c.data_class")},
                       'consented_purposes', c.consented_purposes, 'source', c.source, 'purchases', c.purchases,
                       'spend', c.spend, 'quantity', c.quantity, 'first_purchase_time', c.first_purchase_at,
                       'last_purchase_time', c.last_purchase_at, 'create_time', c.created_at,
                       'update_time', c.updated_at) AS record
            FROM segmentation_customers c WHERE {_OF_SUBJECT}""",
    ),
    (
        "transactions",
        f"""SELECT '' AS scope, c.data_class, c.consented_purposes AS purposes, (t.time, t.id) AS ordering,
                   jsonb_build_object('id', t.id, 'customer_id', c.id, 'time', t.time, 'amount', t.amount,
                       'quantity', t.quantity, 'channel', t.channel, 'item_id', t.item_id, 'refund', t.refund) AS record
            FROM segmentation_customers c JOIN segmentation_transactions t ON t.customer_key = c.key
            WHERE {_OF_SUBJECT}""",
    ),
    (
        "events",
        f"""SELECT '' AS scope, c.data_class, c.consented_purposes AS purposes, (e.time, e.id) AS ordering,
                   jsonb_build_object('id', e.id, 'customer_id', c.id,
                       'type', (ARRAY['PURCHASE', 'VISIT', 'CLICK'])[e.type], 'time', e.time, 'item_id', e.item_id,
                       'amount', e.amount, 'quantity', e.quantity) AS record
            FROM segmentation_customers c JOIN segmentation_events e ON e.customer_key = c.key
            WHERE {_OF_SUBJECT}""",
    ),
    (
        "segment-memberships",
        f"""SELECT '' AS scope, c.data_class, c.consented_purposes AS purposes, (v.name, v.version) AS ordering,
                   jsonb_build_object('customer_id', c.id, 'segmentation', v.name, 'version', v.version,
                       'segment_id', s.id, 'segment_name', s.name, 'distance', m.distance,
                       'confidence', m.confidence, 'since', m.since) AS record
            FROM segmentation_customers c
            JOIN segmentation_memberships m ON m.customer_key = c.key
            JOIN segmentation_versions v ON v.id = m.version_id
            LEFT JOIN segmentation_segments s ON s.version_id = v.id AND s.position = m.position
            WHERE {_OF_SUBJECT}
            UNION ALL
            SELECT '', c.data_class, c.consented_purposes, (g.name, g.version),
                   jsonb_build_object('customer_id', c.id, 'condition_segment', g.name, 'version', g.version,
                       'since', cm.since)
            FROM segmentation_customers c
            JOIN segmentation_condition_members cm ON cm.customer_key = c.key
            JOIN segmentation_condition_segments g ON g.id = cm.segment_id
            WHERE {_OF_SUBJECT}""",
    ),
    (
        "segment-changes",
        f"""SELECT '' AS scope, c.data_class, c.consented_purposes AS purposes, ch.sequence AS ordering,
                   jsonb_build_object('sequence', ch.sequence, 'time', ch.time, 'customer_id', ch.customer_id,
                       'segmentation', ch.segmentation, 'version', ch.version, 'from_segment', ch.from_segment,
                       'to_segment', ch.to_segment, 'to_name', ch.to_name, 'cause_id', ch.cause_id) AS record
            FROM segmentation_customers c JOIN segmentation_changes ch ON ch.customer_key = c.key
            WHERE {_OF_SUBJECT}""",
    ),
    (
        # A stored reply names the subjects whose customers its call ingested, which is personal data itself.
        "idempotency-replies",
        f"""SELECT '' AS scope, {int(DataClass.PERSONAL)} AS data_class, '{{}}'::text[] AS purposes,
                   (i.created_at, i.key) AS ordering,
                   jsonb_build_object('method', i.method, 'key', i.key, 'reply', i.reply,
                       'create_time', i.created_at) AS record
            FROM segmentation_idempotency i WHERE i.tenant = $1 AND i.subject_ids @> ARRAY[$2::text]""",
    ),
)


async def _copy_features(
    connection: asyncpg.Connection | PoolConnectionProxy, query: str, params: list, buffer: io.BytesIO
) -> None:
    # Joining every customer to its aggregates must hash or merge: a nested loop over
    # freshly loaded, not yet analysed tables is quadratic. Every row goes to the client, so
    # the planner's charge for passing rows from parallel workers would only keep the
    # scanning, filtering and feature arithmetic of a large tenant on one core.
    await connection.execute("SET LOCAL enable_nestloop = off; SET LOCAL parallel_tuple_cost = 0")
    await connection.copy_from_query(query, *params, output=buffer, format="binary")
    await connection.execute("RESET enable_nestloop; RESET parallel_tuple_cost")


def _decode_features(
    buffer: bytes, raw_names: list[str], shared: list[str], alone: list[str], custom_features: Sequence[str]
) -> FeatureTable:
    """The feature table of a binary COPY of `_FEATURE_SQL` or `_CUSTOM_FEATURE_SQL`, in key order."""
    types: list = [">i8"] + [">f8"] * len(raw_names)
    if shared:
        types.append(binary_copy.packed_float8(len(shared)))
    types += [">f8"] * len(alone)
    decoded = binary_copy.decode(buffer, types)
    keys = decoded[0]
    # Rows come in the scan's order; sorting them here is cheaper than asking the database to.
    if (keys[1:] < keys[:-1]).any():
        order = np.argsort(keys, kind="stable")
        decoded = [column[order] for column in decoded]
    columns = dict(zip(raw_names, decoded[1 : 1 + len(raw_names)], strict=True))
    rest = decoded[1 + len(raw_names) :]
    if shared:
        matrix = rest.pop(0)
        columns |= {
            name: np.ascontiguousarray(matrix[:, shared.index(name)]) for name in custom_features if name in shared
        }
    columns |= dict(zip(alone, rest, strict=True))
    return FeatureTable(decoded[0], {name: columns[name] for name in [*raw_names, *custom_features]})
