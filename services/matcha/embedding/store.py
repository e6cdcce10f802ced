"""pgvector storage of collections and documents, always scoped by tenant."""

import hashlib
from typing import Any

import asyncpg
import numpy as np

from matcha.embedding.filters import SqlParams, compile_filter
from matcha.embedding.records import CollectionRecord, DocumentRow, SearchHit, StoredDocument, StoredState
from matcha.models.encoders import ModelInfo
from matcha.runtime.data_map import SubjectHolding, class_name_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.errors import AlreadyExists, NotFound
from matcha.runtime.governance import DataClass, RecordPolicy

# Search session settings: enough candidates for recall >= 0.95, and iterative
# scans so that filtered searches still fill top_k (pgvector >= 0.8).
SEARCH_SERVER_SETTINGS = {
    "hnsw.ef_search": "100",
    "hnsw.iterative_scan": "relaxed_order",
    # Partial per-collection indexes are only usable by plans that see the collection id.
    "plan_cache_mode": "force_custom_plan",
}


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _collection(row: asyncpg.Record) -> CollectionRecord:
    return CollectionRecord(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        model=ModelInfo(row["model_id"], row["model_version"], row["dimension"]),
        created_at=row["created_at"],
        document_count=row.get("document_count"),
    )


def _visible_to(purpose_placeholder: str) -> str:
    """What a call may see: public records, and records whose subjects consented to the call's purpose."""
    return RecordPolicy.visibility_sql(purpose_placeholder)


_COLLECTION_COLUMNS = "c.id, c.name, c.description, c.model_id, c.model_version, c.dimension, c.created_at"
_DOCUMENT_COUNT = "(SELECT count(*) FROM embedding_documents d WHERE d.collection_id = c.id) AS document_count"


class VectorStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._database.pool

    async def create_collection(self, tenant: str, name: str, description: str, model: ModelInfo) -> CollectionRecord:
        async with self._pool.acquire() as connection, connection.transaction():
            collection_id = await connection.fetchval(
                """INSERT INTO embedding_collections (tenant, name, description, model_id, model_version, dimension)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, name) DO NOTHING RETURNING id""",
                tenant,
                name,
                description,
                model.id,
                model.version,
                model.dimension,
            )
            if collection_id is None:
                raise AlreadyExists(
                    f"collection {name!r} already exists",
                    reason="COLLECTION_EXISTS",
                    metadata={"collection": name},
                )
            await connection.execute(collection_index_ddl(collection_id, model.dimension))
            row = await connection.fetchrow(
                f"SELECT {_COLLECTION_COLUMNS}, 0 AS document_count FROM embedding_collections c WHERE c.id = $1",
                collection_id,
            )
        assert row is not None  # inserted above, in the same transaction
        return _collection(row)

    async def get_collection(self, tenant: str, name: str, *, count_documents: bool = False) -> CollectionRecord:
        columns = f"{_COLLECTION_COLUMNS}, {_DOCUMENT_COUNT}" if count_documents else _COLLECTION_COLUMNS
        row = await self._pool.fetchrow(
            f"SELECT {columns} FROM embedding_collections c WHERE c.tenant = $1 AND c.name = $2",
            tenant,
            name,
        )
        if row is None:
            raise NotFound(
                f"collection {name!r} not found", reason="COLLECTION_NOT_FOUND", metadata={"collection": name}
            )
        return _collection(row)

    async def list_collections(self, tenant: str) -> list[CollectionRecord]:
        rows = await self._pool.fetch(
            f"SELECT {_COLLECTION_COLUMNS}, {_DOCUMENT_COUNT} FROM embedding_collections c "
            "WHERE c.tenant = $1 ORDER BY c.name",
            tenant,
        )
        return [_collection(row) for row in rows]

    async def delete_collection(self, tenant: str, name: str) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT id, (SELECT count(*) FROM embedding_documents WHERE collection_id = c.id) AS documents "
                "FROM embedding_collections c WHERE tenant = $1 AND name = $2 FOR UPDATE",
                tenant,
                name,
            )
            if row is None:
                raise NotFound(
                    f"collection {name!r} not found",
                    reason="COLLECTION_NOT_FOUND",
                    metadata={"collection": name},
                )
            await connection.execute(f"DROP INDEX IF EXISTS {_index_name(row['id'])}")
            await connection.execute("DELETE FROM embedding_collections WHERE id = $1", row["id"])
        return row["documents"]

    async def stored_states(self, collection_id: int, external_ids: list[str]) -> dict[str, StoredState]:
        rows = await self._pool.fetch(
            """SELECT external_id, text_sha256, metadata, data_class, consented_purposes, source, subject_id
               FROM embedding_documents WHERE collection_id = $1 AND external_id = ANY($2::text[])""",
            collection_id,
            external_ids,
        )
        return {
            row["external_id"]: StoredState(row["text_sha256"], row["metadata"], RecordPolicy.from_row(row))
            for row in rows
        }

    async def write_documents(self, collection_id: int, model: ModelInfo, rows: list[DocumentRow]) -> None:
        """Inserts or replaces all rows in one transaction: all are written, or none."""
        if not rows:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.executemany(
                """INSERT INTO embedding_documents AS d
                       (collection_id, external_id, text, text_sha256, metadata, data_class, consented_purposes,
                        source, subject_id, model_id, model_version, embedding)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (collection_id, external_id) DO UPDATE SET
                       text = EXCLUDED.text, text_sha256 = EXCLUDED.text_sha256, metadata = EXCLUDED.metadata,
                       data_class = EXCLUDED.data_class, consented_purposes = EXCLUDED.consented_purposes,
                       source = EXCLUDED.source, subject_id = EXCLUDED.subject_id,
                       model_id = EXCLUDED.model_id, model_version = EXCLUDED.model_version,
                       embedding = coalesce(EXCLUDED.embedding, d.embedding), updated_at = now()""",
                [
                    (
                        collection_id,
                        row.external_id,
                        row.text,
                        text_digest(row.text),
                        row.metadata,
                        int(row.policy.data_class),
                        sorted(row.policy.consented_purposes),
                        row.policy.source,
                        row.policy.subject_id,
                        model.id,
                        model.version,
                        row.embedding,
                    )
                    for row in rows
                ],
            )

    async def search(
        self,
        collection: CollectionRecord,
        vector: np.ndarray,
        *,
        top_k: int,
        purpose: str,
        max_data_class: DataClass,
        metadata_filter: dict[str, Any],
        min_score: float,
    ) -> list[SearchHit]:
        params = SqlParams([vector, collection.id, purpose, top_k, int(max_data_class)])
        filter_sql = compile_filter(metadata_filter, params)
        distance = f"embedding::vector({collection.model.dimension}) <=> $1"
        # Iterative scans may return candidates slightly out of order: re-sort the materialised top k. The scan's
        # settings (SEARCH_SERVER_SETTINGS) hold inside the database's transaction, also through a pooler.
        async with self._database.transaction(readonly=True) as connection:
            rows = await connection.fetch(
                f"""WITH candidates AS MATERIALIZED (
                        SELECT external_id, text, metadata, data_class, consented_purposes, source, subject_id,
                               {distance} AS distance
                        FROM embedding_documents
                        WHERE collection_id = $2 AND {_visible_to("$3")} AND data_class <= $5 AND {filter_sql}
                        ORDER BY {distance}
                        LIMIT $4)
                    SELECT * FROM candidates WHERE 1 - distance >= {params.add(min_score)}::float8 ORDER BY distance""",
                *params.values,
            )
        return [
            SearchHit(
                row["external_id"], 1.0 - row["distance"], row["text"], row["metadata"], RecordPolicy.from_row(row)
            )
            for row in rows
        ]

    async def list_documents(
        self,
        collection: CollectionRecord,
        *,
        purpose: str,
        max_data_class: DataClass,
        metadata_filter: dict[str, Any],
        after_id: str | None,
        limit: int,
        include_vectors: bool,
    ) -> list[StoredDocument]:
        """Visible documents in id order after `after_id`: keyset pagination over the primary key."""
        params = SqlParams([collection.id, purpose, int(max_data_class), after_id, limit])
        filter_sql = compile_filter(metadata_filter, params)
        vector = ", embedding" if include_vectors else ""
        rows = await self._pool.fetch(
            f"""SELECT external_id, text, metadata, data_class, consented_purposes, source, subject_id, updated_at
                       {vector}
                FROM embedding_documents
                WHERE collection_id = $1 AND {_visible_to("$2")} AND data_class <= $3
                  AND ($4::text IS NULL OR external_id > $4) AND {filter_sql}
                ORDER BY external_id
                LIMIT $5""",
            *params.values,
        )
        return [
            StoredDocument(
                row["external_id"],
                row["text"],
                row["metadata"],
                RecordPolicy.from_row(row),
                row["updated_at"],
                row["embedding"].to_numpy() if include_vectors else None,
            )
            for row in rows
        ]

    async def delete_documents(self, collection_id: int, external_ids: list[str]) -> int:
        result = await self._pool.execute(
            "DELETE FROM embedding_documents WHERE collection_id = $1 AND external_id = ANY($2::text[])",
            collection_id,
            external_ids,
        )
        return int(result.split()[-1])

    async def erase_subject(self, tenant: str, subject_id: str) -> tuple[int, list[str]]:
        rows = await self._pool.fetch(
            """WITH erased AS (
                   DELETE FROM embedding_documents d USING embedding_collections c
                   WHERE d.collection_id = c.id AND c.tenant = $1 AND d.subject_id = $2
                   RETURNING c.name)
               SELECT name, count(*) AS documents FROM erased GROUP BY name ORDER BY name""",
            tenant,
            subject_id,
        )
        return sum(row["documents"] for row in rows), [row["name"] for row in rows]

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        """The subject's documents, one holding per collection."""
        return await describe_kind(
            self._pool,
            "documents",
            f"""SELECT c.name AS scope, d.data_class, d.consented_purposes AS purposes, d.external_id AS ordering,
                       jsonb_build_object('id', d.external_id, 'text', d.text, 'metadata', d.metadata,
                           'data_class', {class_name_sql("d.data_class")}, 'consented_purposes', d.consented_purposes,
                           'source', d.source, 'update_time', d.updated_at) AS record
                FROM embedding_documents d JOIN embedding_collections c ON c.id = d.collection_id
                WHERE c.tenant = $1 AND d.subject_id = $2""",
            tenant,
            subject_id,
            ceiling=ceiling,
        )


def _index_name(collection_id: int) -> str:
    return f"embedding_documents_hnsw_{int(collection_id)}"


def collection_index_ddl(collection_id: int, dimension: int) -> str:
    """The collection's own HNSW index; identifiers are integers from the database, never caller text."""
    return (
        f"CREATE INDEX {_index_name(collection_id)} ON embedding_documents "
        f"USING hnsw ((embedding::vector({int(dimension)})) vector_cosine_ops) "
        f"WHERE collection_id = {int(collection_id)}"
    )
