"""PostgreSQL storage of the catalogue and the reads recommendations make of purchases. Every statement is
scoped by tenant."""

import asyncio
from collections import OrderedDict

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from matcha.runtime.database import Database
from matcha.segmentation.customer_store import eligible_sql
from matcha.segmentation.recommend import BuyersByItem, PurchaseHistory, buyers_by_item, customer_history
from matcha.segmentation.records import ItemRow

# Tenants (and purposes) whose buyers by item a store keeps between recommendations.
_KEPT_BUYERS = 8


class RecommendationStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        # (tenant, purpose) -> (purchases_version, buyers by item), the most recently used last.
        self._buyers: OrderedDict[tuple[str, str], tuple[int, BuyersByItem]] = OrderedDict()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._database.pool

    async def lock_items(self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str) -> None:
        """Serialises catalogue writes of a tenant, so two batches cannot store two vector dimensions."""
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('segmentation_items/' || $1, 0))", tenant
        )

    async def item_vector_signature(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, replaced_ids: list[str]
    ) -> tuple[int, str, str] | None:
        """(dimension, model id, model version) of the vectors stored outside `replaced_ids`, if any."""
        row = await connection.fetchrow(
            """SELECT vector_dims(vector) AS dimension, model_id, model_version FROM segmentation_items
               WHERE tenant = $1 AND vector IS NOT NULL AND NOT (id = ANY($2::text[])) LIMIT 1""",
            tenant,
            replaced_ids,
        )
        return (row["dimension"], row["model_id"], row["model_version"]) if row else None

    async def upsert_items(
        self, connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, items: list[ItemRow]
    ) -> tuple[int, int]:
        """Inserts or replaces items; (inserted, replaced)."""
        rows = await connection.fetch(
            """INSERT INTO segmentation_items AS i
                   (tenant, id, name, category, attributes, vector, model_id, model_version)
               SELECT $1, u.id, u.name, u.category, u.attributes, nullif(u.vector, '')::vector, u.model_id,
                      u.model_version
               FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::text[])
                    AS u(id, name, category, attributes, vector, model_id, model_version)
               ON CONFLICT (tenant, id) DO UPDATE SET
                   name = EXCLUDED.name, category = EXCLUDED.category, attributes = EXCLUDED.attributes,
                   vector = EXCLUDED.vector, model_id = EXCLUDED.model_id, model_version = EXCLUDED.model_version,
                   updated_at = now()
               RETURNING (xmax = 0) AS inserted""",
            tenant,
            [item.id for item in items],
            [item.name for item in items],
            [item.category for item in items],
            [item.attributes for item in items],
            # pgvector's text form; '' stores no vector.
            ["[" + ",".join(map(repr, item.vector)) + "]" if item.vector else "" for item in items],
            [item.model_id for item in items],
            [item.model_version for item in items],
        )
        inserted = sum(1 for row in rows if row["inserted"])
        return inserted, len(rows) - inserted

    async def item_names(self, tenant: str, ids: list[str]) -> dict[str, str]:
        rows = await self.pool.fetch(
            "SELECT id, name FROM segmentation_items WHERE tenant = $1 AND id = ANY($2::text[]) AND name <> ''",
            tenant,
            ids,
        )
        return {row["id"]: row["name"] for row in rows}

    async def has_item_history(self, tenant: str) -> bool:
        return await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM segmentation_purchases WHERE tenant = $1)", tenant
        )

    async def purchase_history(
        self, tenant: str, purpose: str, customer_key: int, version_id: int
    ) -> tuple[PurchaseHistory, int]:
        """One customer's purchase history (see `recommend.PurchaseHistory`): its own purchases and those of
        the customers eligible for `purpose`; and its segment position in the version (-1: none), read in
        one snapshot. The tenant's buyers by item are read once per change of its purchases (one row per
        item with its buyers as an array) and kept between calls."""
        async with (
            self.pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            changes = await connection.fetchval(
                "SELECT purchases_version FROM segmentation_tenants WHERE tenant = $1", tenant
            )
            kept = self._buyers.get((tenant, purpose))
            if kept is not None and kept[0] == changes:
                buyers = kept[1]
                self._buyers.move_to_end((tenant, purpose))
            else:
                bought = await connection.fetch(
                    f"""SELECT p.item_id, array_agg(p.customer_key) AS buyers
                        FROM segmentation_purchases p
                        JOIN segmentation_customers c ON c.key = p.customer_key
                        WHERE p.tenant = $1 AND {eligible_sql("$2")}
                        GROUP BY p.item_id""",
                    tenant,
                    purpose,
                )
                buyers = await asyncio.to_thread(buyers_by_item, [(row["item_id"], row["buyers"]) for row in bought])
                self._buyers[(tenant, purpose)] = (changes, buyers)
                self._buyers.move_to_end((tenant, purpose))
                while len(self._buyers) > _KEPT_BUYERS:
                    self._buyers.popitem(last=False)
            position = await connection.fetchval(
                "SELECT position FROM segmentation_memberships WHERE version_id = $1 AND customer_key = $2",
                version_id,
                customer_key,
            )
            position = -1 if position is None else int(position)
            own = await connection.fetch(
                """SELECT item_id, extract(epoch FROM last_at)::float8 AS at FROM segmentation_purchases
                   WHERE customer_key = $1""",
                customer_key,
            )
            # Only the customer's own segment counts: its members, through the segment's index.
            segment = await connection.fetchval(
                """SELECT coalesce(array_agg(customer_key), '{}') FROM segmentation_memberships
                   WHERE version_id = $1 AND position = $2""",
                version_id,
                position,
            )
            catalogue = await connection.fetch("SELECT id FROM segmentation_items WHERE tenant = $1", tenant)
        history = await asyncio.to_thread(
            customer_history,
            buyers,
            {row["item_id"]: row["at"] for row in own},
            [row["id"] for row in catalogue],
            customer_key,
            (position, segment),
        )
        return history, position

    async def similar_items(self, tenant: str, anchors: list[str], neighbours: int) -> list[tuple[str, str, float]]:
        """(anchor, item, cosine) of each anchor's `neighbours` most similar items with a vector."""
        rows = await self.pool.fetch(
            """SELECT a.id AS anchor, n.id, n.similarity
               FROM segmentation_items a
               CROSS JOIN LATERAL (
                   SELECT i.id, 1 - (i.vector <=> a.vector) AS similarity FROM segmentation_items i
                   WHERE i.tenant = a.tenant AND i.vector IS NOT NULL AND i.id <> a.id
                   ORDER BY i.vector <=> a.vector, i.id LIMIT $3) n
               WHERE a.tenant = $1 AND a.id = ANY($2::text[]) AND a.vector IS NOT NULL""",
            tenant,
            anchors,
            neighbours,
        )
        return [(row["anchor"], row["id"], row["similarity"]) for row in rows]
