"""PostgreSQL storage of prompt templates and voice profiles, always scoped by tenant.

Both are versioned by name: a new version is numbered under a transaction-scoped
advisory lock on (tenant, name), so concurrent writers never collide on a number.
"""

import dataclasses

import asyncpg
import numpy as np

from matcha.generation.records import ExemplarRecord, NewVoice, Page, SubjectErasure, TemplateRecord, VoiceRecord
from matcha.generation.voice import (
    AddressForm,
    LexicalProfile,
    RegisterMarkers,
    SemanticReference,
    SentenceLengthStats,
    SignatureTerm,
)
from matcha.models.encoders import ModelInfo
from matcha.runtime.data_map import SubjectHolding, class_name_sql, describe_kind
from matcha.runtime.database import Database
from matcha.runtime.errors import NotFound
from matcha.runtime.governance import DataClass


def _features_json(profile: LexicalProfile) -> dict:
    features = dataclasses.asdict(profile)
    features["register"]["address"] = profile.register.address.name
    return features


def _features(data: dict) -> LexicalProfile:
    register = dict(data["register"], address=AddressForm[data["register"]["address"]])
    return LexicalProfile(
        languages=data["languages"],
        document_count=data["document_count"],
        sentence_count=data["sentence_count"],
        sentence_length=SentenceLengthStats(**data["sentence_length"]),
        register=RegisterMarkers(**register),
        signature_terms=[SignatureTerm(**term) for term in data["signature_terms"]],
        word_distribution=data["word_distribution"],
        vocabulary_reference=data["vocabulary_reference"],
    )


def _template(row: asyncpg.Record) -> TemplateRecord:
    return TemplateRecord(
        name=row["name"],
        version=row["version"],
        description=row["description"],
        system=row["system"],
        template=row["template"],
        variables=list(row["variables"]),
        sha256=row["sha256"],
        create_subject=row["create_subject"],
        created_at=row["created_at"],
    )


def _template_not_found(name: str, version: int) -> NotFound:
    label = f"{name!r} version {version}" if version else repr(name)
    return NotFound(
        f"prompt template {label} not found",
        reason="TEMPLATE_NOT_FOUND",
        metadata={"template": name, "version": str(version)},
    )


def _voice_not_found(name: str, version: int) -> NotFound:
    label = f"{name!r} version {version}" if version else repr(name)
    return NotFound(
        f"voice profile {label} not found", reason="VOICE_NOT_FOUND", metadata={"voice": name, "version": str(version)}
    )


_LATEST_OR_VERSION = (
    "AND version = CASE WHEN $3 > 0 THEN $3 ELSE (SELECT max(version) FROM {table} WHERE tenant = $1 AND name = $2) END"
)


class GenerationStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._database.pool

    # Prompt templates

    async def create_template(
        self,
        tenant: str,
        *,
        name: str,
        description: str,
        system: str,
        template: str,
        variables: list[str],
        sha256: str,
        subject: str,
    ) -> tuple[TemplateRecord, bool]:
        """Stores the next version, unless the latest has the same content: returns (record, created)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('template/' || $1 || '/' || $2))", tenant, name
            )
            latest = await connection.fetchrow(
                "SELECT * FROM generation_prompt_templates WHERE tenant = $1 AND name = $2 "
                "ORDER BY version DESC LIMIT 1",
                tenant,
                name,
            )
            if latest is not None and latest["sha256"] == sha256:
                return _template(latest), False
            row = await connection.fetchrow(
                """INSERT INTO generation_prompt_templates
                       (tenant, name, version, description, system, template, variables, sha256, create_subject)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
                tenant,
                name,
                (latest["version"] if latest else 0) + 1,
                description,
                system,
                template,
                variables,
                sha256,
                subject,
            )
        # INSERT ... RETURNING always returns the inserted row.
        assert row is not None
        return _template(row), True

    async def get_template(self, tenant: str, name: str, version: int) -> TemplateRecord:
        row = await self._pool.fetchrow(
            "SELECT * FROM generation_prompt_templates WHERE tenant = $1 AND name = $2 "
            + _LATEST_OR_VERSION.format(table="generation_prompt_templates"),
            tenant,
            name,
            version,
        )
        if row is None:
            raise _template_not_found(name, version)
        return _template(row)

    async def list_templates(self, tenant: str, name: str, page_size: int, after: str | None) -> Page:
        rows = await self._list_rows("generation_prompt_templates", "*", tenant, name, page_size, after)
        return _page([_template(row) for row in rows], page_size, name)

    # Voice profiles

    async def voice_for_idempotency_key(self, tenant: str, key: str) -> VoiceRecord | None:
        row = await self._pool.fetchrow(
            "SELECT name, version FROM generation_voice_profiles WHERE tenant = $1 AND idempotency_key = $2",
            tenant,
            key,
        )
        return await self.get_voice(tenant, row["name"], row["version"]) if row else None

    async def create_voice(self, tenant: str, voice: NewVoice, *, subject: str, idempotency_key: str) -> VoiceRecord:
        """Stores the profile and its exemplars as the next version, in one transaction."""
        lexical, reference = voice.lexical, voice.reference
        if lexical is None or reference is None:
            raise ValueError(f"voice {voice.name!r} has no learned profile to store")
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('voice/' || $1 || '/' || $2))", tenant, voice.name
            )
            version = await connection.fetchval(
                "SELECT coalesce(max(version), 0) + 1 FROM generation_voice_profiles WHERE tenant = $1 AND name = $2",
                tenant,
                voice.name,
            )
            await connection.execute(
                """INSERT INTO generation_voice_profiles
                       (tenant, name, version, description, features, preferred_terms, banned_terms, centroid,
                        similarity_p05, similarity_p50, model_id, model_version, corpus_sha256, create_subject,
                        idempotency_key, source_collection)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)""",
                tenant,
                voice.name,
                version,
                voice.description,
                _features_json(lexical),
                voice.preferred_terms,
                voice.banned_terms,
                reference.centroid,
                reference.p05,
                reference.p50,
                voice.model.id,
                voice.model.version,
                voice.corpus_sha256,
                subject,
                idempotency_key,
                voice.source_collection,
            )
            await connection.executemany(
                """INSERT INTO generation_voice_exemplars
                       (tenant, name, version, position, text, document_id, centrality, embedding)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                [
                    (tenant, voice.name, version, position, e.text, e.document_id, e.centrality, e.embedding)
                    for position, e in enumerate(voice.exemplars)
                ],
            )
            await connection.executemany(
                """INSERT INTO generation_voice_sources
                       (tenant, name, version, document_id, subject_id, data_class, consented_purposes, source)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                [
                    (
                        tenant,
                        voice.name,
                        version,
                        source.document_id,
                        source.policy.subject_id,
                        int(source.policy.data_class),
                        sorted(source.policy.consented_purposes),
                        source.policy.source,
                    )
                    for source in voice.sources
                ],
            )
        return await self.get_voice(tenant, voice.name, version)

    async def get_voice(self, tenant: str, name: str, version: int) -> VoiceRecord:
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT * FROM generation_voice_profiles WHERE tenant = $1 AND name = $2 "
                + _LATEST_OR_VERSION.format(table="generation_voice_profiles"),
                tenant,
                name,
                version,
            )
            if row is None:
                raise _voice_not_found(name, version)
            exemplars = await connection.fetch(
                "SELECT text, document_id, centrality, embedding FROM generation_voice_exemplars "
                "WHERE tenant = $1 AND name = $2 AND version = $3 ORDER BY position",
                tenant,
                name,
                row["version"],
            )
        return _voice(
            row,
            [
                ExemplarRecord(e["text"], e["document_id"], e["centrality"], e["embedding"].to_numpy())
                for e in exemplars
            ],
        )

    async def list_voices(self, tenant: str, name: str, page_size: int, after: str | None) -> Page:
        rows = await self._list_rows("generation_voice_profiles", "*", tenant, name, page_size, after)
        return _page([_voice(row, []) for row in rows], page_size, name)

    # Data subjects

    async def erase_subject(self, tenant: str, subject_id: str) -> SubjectErasure:
        """Forgets the subject's documents: the exemplars taken from them go, and the versions learned from them
        are withdrawn, in one transaction."""
        async with self._pool.acquire() as connection, connection.transaction():
            erased = await connection.fetch(
                """DELETE FROM generation_voice_sources WHERE tenant = $1 AND subject_id = $2
                   RETURNING name, version, document_id""",
                tenant,
                subject_id,
            )
            by_version: dict[tuple[str, int], list[str]] = {}
            for row in erased:
                by_version.setdefault((row["name"], row["version"]), []).append(row["document_id"])
            exemplars = withdrawn = 0
            for (name, version), document_ids in sorted(by_version.items()):
                status = await connection.execute(
                    """DELETE FROM generation_voice_exemplars
                       WHERE tenant = $1 AND name = $2 AND version = $3 AND document_id = ANY($4::text[])""",
                    tenant,
                    name,
                    version,
                    document_ids,
                )
                exemplars += int(status.split()[-1])
                before = await connection.fetchrow(
                    """SELECT withdrawn_at FROM generation_voice_profiles
                       WHERE tenant = $1 AND name = $2 AND version = $3 FOR UPDATE""",
                    tenant,
                    name,
                    version,
                )
                # Every learned feature went through the subject's texts (signature terms, vocabulary, centroid).
                await connection.execute(
                    """UPDATE generation_voice_profiles
                       SET features = NULL, centroid = NULL, withdrawn_at = coalesce(withdrawn_at, now())
                       WHERE tenant = $1 AND name = $2 AND version = $3""",
                    tenant,
                    name,
                    version,
                )
                # The exemplars just deleted reference it (a foreign key), so it is there.
                assert before is not None
                withdrawn += before["withdrawn_at"] is None
        return SubjectErasure(exemplars, len(erased), withdrawn)

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        """The subject's source documents and the exemplars taken from them, read in one snapshot."""
        async with self._pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            holdings = []
            for kind, records_sql in _SUBJECT_RECORDS:
                holdings += await describe_kind(connection, kind, records_sql, tenant, subject_id, ceiling=ceiling)
            return holdings

    async def _list_rows(
        self, table: str, columns: str, tenant: str, name: str, page_size: int, after: str | None
    ) -> list[asyncpg.Record]:
        # One more row than asked tells whether a next page exists.
        if name:
            return await self._pool.fetch(
                f"SELECT {columns} FROM {table} WHERE tenant = $1 AND name = $2 AND version < $3 "
                "ORDER BY version DESC LIMIT $4",
                tenant,
                name,
                int(after) if after else 2**31 - 1,
                page_size + 1,
            )
        return await self._pool.fetch(
            f"""SELECT DISTINCT ON (name) {columns} FROM {table}
                WHERE tenant = $1 AND name > $2 ORDER BY name, version DESC LIMIT $3""",
            tenant,
            after or "",
            page_size + 1,
        )


# Source documents (`s`) of the subject; exemplars carry their document's policy.
_SUBJECT_RECORDS = (
    (
        "voice-sources",
        f"""SELECT '' AS scope, s.data_class, s.consented_purposes AS purposes,
                   (s.name, s.version, s.document_id) AS ordering,
                   jsonb_build_object('voice', s.name, 'version', s.version, 'document_id', s.document_id,
                       'data_class', {class_name_sql("s.data_class")}, 'consented_purposes', s.consented_purposes,
                       'source', s.source, 'withdrawn', p.withdrawn_at IS NOT NULL, 'learn_time', p.created_at)
                       AS record
            FROM generation_voice_sources s JOIN generation_voice_profiles p USING (tenant, name, version)
            WHERE s.tenant = $1 AND s.subject_id = $2""",
    ),
    (
        "voice-exemplars",
        f"""SELECT '' AS scope, s.data_class, s.consented_purposes AS purposes,
                   (e.name, e.version, e.position) AS ordering,
                   jsonb_build_object('voice', e.name, 'version', e.version, 'document_id', e.document_id,
                       'text', e.text, 'centrality', e.centrality,
                       'data_class', {class_name_sql("s.data_class")}) AS record
            FROM generation_voice_sources s
            JOIN generation_voice_exemplars e USING (tenant, name, version, document_id)
            WHERE s.tenant = $1 AND s.subject_id = $2""",
    ),
)


def _page(items: list, page_size: int, by_version: str) -> Page:
    if len(items) <= page_size:
        return Page(items, None)
    items = items[:page_size]
    last = items[-1]
    return Page(items, str(last.version) if by_version else last.name)


def _voice(row: asyncpg.Record, exemplars: list[ExemplarRecord]) -> VoiceRecord:
    # A withdrawn profile lost its learned features and centroid.
    lexical: LexicalProfile | None = None
    reference: SemanticReference | None = None
    dimension = 0
    if row["centroid"] is not None:
        centroid = row["centroid"].to_numpy().astype(np.float32)
        lexical = _features(row["features"])
        reference = SemanticReference(centroid, row["similarity_p05"], row["similarity_p50"])
        dimension = len(centroid)
    return VoiceRecord(
        name=row["name"],
        description=row["description"],
        lexical=lexical,
        preferred_terms=list(row["preferred_terms"]),
        banned_terms=list(row["banned_terms"]),
        exemplars=exemplars,
        reference=reference,
        model=ModelInfo(row["model_id"], row["model_version"], dimension),
        corpus_sha256=row["corpus_sha256"],
        source_collection=row["source_collection"],
        sources=(),
        version=row["version"],
        create_subject=row["create_subject"],
        created_at=row["created_at"],
        withdrawn_at=row["withdrawn_at"],
    )
