"""PostgreSQL storage of trained classifiers: versioned per tenant, with lineage. Every query is scoped by tenant."""

import asyncpg

from matcha.classification.records import ClassifierRecord, Lineage, NewClassifier, SubjectErasure
from matcha.classification.sentiment import ModelRef
from matcha.classification.training import LinearHead, Metrics
from matcha.runtime.data_map import SubjectHolding, class_name_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.errors import NotFound
from matcha.runtime.governance import DataClass

_COLUMNS = """name, version, description, labels, method, head, holdout_metrics, training_set_sha256, example_count,
              embedding_model_id, embedding_model_version, train_subject, seed, source_collection, created_at,
              withdrawn_at"""


def _record(row: asyncpg.Record, example_ids: list[str] | None = None) -> ClassifierRecord:
    return ClassifierRecord(
        name=row["name"],
        version=row["version"],
        description=row["description"],
        labels=list(row["labels"]),
        method=row["method"],
        head=LinearHead.from_bytes(row["head"]) if row["head"] is not None else None,
        holdout=Metrics.from_json(row["holdout_metrics"]),
        lineage=Lineage(
            training_set_sha256=row["training_set_sha256"],
            example_count=row["example_count"],
            example_ids=example_ids or [],
            embedding_model=ModelRef(row["embedding_model_id"], row["embedding_model_version"]),
            train_subject=row["train_subject"],
            seed=row["seed"],
            collection=row["source_collection"],
        ),
        created_at=row["created_at"],
        withdrawn_at=row["withdrawn_at"],
    )


class ClassifierStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def save(self, tenant: str, new: NewClassifier) -> ClassifierRecord:
        """Stores the next version of the name; with an idempotency key already used, returns that version."""
        async with self._database.pool.acquire() as connection:
            try:
                async with connection.transaction():
                    version = await connection.fetchval(
                        """INSERT INTO classification_classifier_names (tenant, name, last_version) VALUES ($1, $2, 1)
                           ON CONFLICT (tenant, name)
                           DO UPDATE SET last_version = classification_classifier_names.last_version + 1
                           RETURNING last_version""",
                        tenant,
                        new.name,
                    )
                    row = await connection.fetchrow(
                        f"""INSERT INTO classification_classifiers
                              (tenant, name, version, description, labels, method, head, holdout_metrics,
                               training_set_sha256, example_count, example_ids, embedding_model_id,
                               embedding_model_version, train_subject, seed, idempotency_key, source_collection)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                            RETURNING {_COLUMNS}""",
                        tenant,
                        new.name,
                        version,
                        new.description,
                        list(new.head.labels),
                        new.method,
                        new.head.to_bytes(),
                        new.holdout.to_json(),
                        new.lineage.training_set_sha256,
                        new.lineage.example_count,
                        new.lineage.example_ids,
                        new.lineage.embedding_model.id,
                        new.lineage.embedding_model.version,
                        new.lineage.train_subject,
                        new.lineage.seed,
                        new.idempotency_key,
                        new.lineage.collection,
                    )
                    await connection.executemany(
                        """INSERT INTO classification_example_subjects (tenant, name, version, example_id, subject_id,
                               label, data_class, consented_purposes, source)
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                        [
                            (
                                tenant,
                                new.name,
                                version,
                                subject.example_id,
                                subject.policy.subject_id,
                                subject.label,
                                int(subject.policy.data_class),
                                sorted(subject.policy.consented_purposes),
                                subject.policy.source,
                            )
                            for subject in new.lineage.subjects
                        ],
                    )
                    # INSERT ... RETURNING always returns the inserted row.
                    assert row is not None
                    return _record(row)
            except asyncpg.UniqueViolationError:
                # A concurrent call with the same idempotency key won; the transaction rolled back.
                existing = await self.find_by_idempotency_key(tenant, new.idempotency_key)
                if existing is None:
                    raise
                return existing

    async def find_by_idempotency_key(self, tenant: str, key: str) -> ClassifierRecord | None:
        row = await self._database.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM classification_classifiers WHERE tenant = $1 AND idempotency_key = $2",
            tenant,
            key,
        )
        return _record(row) if row else None

    async def get(self, tenant: str, name: str, version: int, *, include_example_ids: bool = False) -> ClassifierRecord:
        """`version` 0 means the latest."""
        columns = f"{_COLUMNS}, example_ids" if include_example_ids else _COLUMNS
        row = await self._database.pool.fetchrow(
            f"""SELECT {columns} FROM classification_classifiers
                WHERE tenant = $1 AND name = $2 AND ($3 = 0 OR version = $3)
                ORDER BY version DESC LIMIT 1""",
            tenant,
            name,
            version,
        )
        if row is None:
            raise _not_found(name, version)
        return _record(row, list(row["example_ids"]) if include_example_ids else None)

    async def list_latest(self, tenant: str, after_name: str, limit: int) -> list[ClassifierRecord]:
        rows = await self._database.pool.fetch(
            f"""SELECT DISTINCT ON (name) {_COLUMNS} FROM classification_classifiers
                WHERE tenant = $1 AND name > $2 ORDER BY name, version DESC LIMIT $3""",
            tenant,
            after_name,
            limit,
        )
        return [_record(row) for row in rows]

    async def list_versions(self, tenant: str, name: str, before_version: int, limit: int) -> list[ClassifierRecord]:
        rows = await self._database.pool.fetch(
            f"""SELECT {_COLUMNS} FROM classification_classifiers
                WHERE tenant = $1 AND name = $2 AND version < $3 ORDER BY version DESC LIMIT $4""",
            tenant,
            name,
            before_version,
            limit,
        )
        return [_record(row) for row in rows]

    async def delete(self, tenant: str, name: str, version: int) -> int:
        """`version` 0 deletes every version."""
        status = await self._database.pool.execute(
            "DELETE FROM classification_classifiers WHERE tenant = $1 AND name = $2 AND ($3 = 0 OR version = $3)",
            tenant,
            name,
            version,
        )
        deleted = int(status.split()[-1])
        if deleted == 0:
            raise _not_found(name, version)
        return deleted

    async def erase_subject(self, tenant: str, subject_id: str) -> SubjectErasure:
        """Forgets the subject's examples and withdraws the versions trained on them, in one transaction."""
        async with self._database.pool.acquire() as connection, connection.transaction():
            erased = await connection.fetch(
                """DELETE FROM classification_example_subjects WHERE tenant = $1 AND subject_id = $2
                   RETURNING name, version, example_id""",
                tenant,
                subject_id,
            )
            by_version: dict[tuple[str, int], list[str]] = {}
            for row in erased:
                by_version.setdefault((row["name"], row["version"]), []).append(row["example_id"])
            withdrawn = 0
            for (name, version), example_ids in sorted(by_version.items()):
                # The weights go: they were fitted on the subject's texts. The lineage forgets their ids.
                before = await connection.fetchrow(
                    """SELECT withdrawn_at FROM classification_classifiers
                       WHERE tenant = $1 AND name = $2 AND version = $3 FOR UPDATE""",
                    tenant,
                    name,
                    version,
                )
                await connection.execute(
                    """UPDATE classification_classifiers c
                       SET head = NULL, withdrawn_at = coalesce(withdrawn_at, now()),
                           example_ids = ARRAY(SELECT e FROM unnest(c.example_ids) WITH ORDINALITY AS u(e, n)
                                               WHERE e <> ALL($4::text[]) ORDER BY n)
                       WHERE tenant = $1 AND name = $2 AND version = $3""",
                    tenant,
                    name,
                    version,
                    example_ids,
                )
                # The subject rows just deleted reference it (a foreign key), so it is there.
                assert before is not None
                withdrawn += before["withdrawn_at"] is None
        return SubjectErasure(len(erased), withdrawn)

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        return await describe_kind(
            self._database.pool,
            "classifier-examples",
            f"""SELECT '' AS scope, s.data_class, s.consented_purposes AS purposes,
                       (s.name, s.version, s.example_id) AS ordering,
                       jsonb_build_object('classifier', s.name, 'version', s.version, 'example_id', s.example_id,
                           'label', s.label, 'data_class', {class_name_sql("s.data_class")},
                           'consented_purposes', s.consented_purposes, 'source', s.source,
                           'withdrawn', c.withdrawn_at IS NOT NULL, 'train_time', c.created_at) AS record
                FROM classification_example_subjects s
                JOIN classification_classifiers c USING (tenant, name, version)
                WHERE s.tenant = $1 AND s.subject_id = $2""",
            tenant,
            subject_id,
            ceiling=ceiling,
        )


def _not_found(name: str, version: int) -> NotFound:
    what = f"classifier {name!r}" + (f" version {version}" if version else "")
    return NotFound(f"{what} does not exist", reason="CLASSIFIER_NOT_FOUND", metadata={"classifier": name})
