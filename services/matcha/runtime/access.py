"""The access ledger: every call a service serves on a tenant's data, one hash-chained row each.

The conductor's ledger records the hops of runs; this one records every call that reached a capability,
directly (gateway, CLI, any gRPC client) or from a run, so "who accessed subject X, for what purpose" has one
answer. The server interceptor writes the row before the reply leaves (no access without its record: if the
ledger cannot be written, the call fails). Rows of concurrent calls share one INSERT per tenant (group commit),
which does not wait for the disk flush (`synchronous_commit = off`): a crash of PostgreSQL itself may lose its
last fraction of a second of rows, never a chain's consistency.

Content never goes in: request and reply are SHA-256 digests, subjects are digests keyed with the ledger key
(so erasing a subject leaves nothing to erase here, and nobody without the key can test a guess).
"""

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from matcha.runtime.chain import ChainedRecord, seal
from matcha.runtime.database import Database, configured_database, load_migrations
from matcha.runtime.secrets import load_or_create_secret
from matcha.runtime.settings import ServiceSettings

logger = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "matcha.runtime.access_migrations"
# Writers that extend one tenant's chain at the same moment retry on the new head; this many times at most.
_MAX_CHAIN_RACES = 50


@dataclass(frozen=True)
class AccessEntry:
    """One call as it is known once served (or refused)."""

    time: datetime
    method: str
    principal: str
    roles: tuple[str, ...]
    purpose: str
    data_class_declared: str
    data_class_derived: str
    # What the call named or returned: "collection:reviews", "classifier:intent", ...
    resources: tuple[str, ...]
    subject_digests: tuple[str, ...]
    records: int
    # (model id, version) pairs the call used.
    models: tuple[tuple[str, str], ...]
    request_sha256: str
    response_sha256: str
    decision: str  # ALLOW, or DENY when the runtime refused the call before it ran
    reason: str
    status_code: str
    request_id: str
    trace_id: str
    span_id: str
    # The run whose hop this was, from the conductor's verified workload token ("" for a direct call).
    run_id: str


AccessRecord = ChainedRecord[AccessEntry]


def subject_digest(key: bytes, tenant: str, subject_id: str) -> str:
    """The ledger's name for a subject: keyed, so it cannot be reversed by guessing ids."""
    return hmac.new(key, f"subject\0{tenant}\0{subject_id}".encode(), hashlib.sha256).hexdigest()


def access_record(row: asyncpg.Record) -> AccessRecord:
    entry = dict(row["entry"])
    entry.update(
        time=row["time"],
        method=row["method"],
        principal=row["principal"],
        purpose=row["purpose"],
        resources=tuple(row["resources"]),
        subject_digests=tuple(row["subject_digests"]),
        roles=tuple(entry["roles"]),
        models=tuple(tuple(model) for model in entry["models"]),
    )
    return ChainedRecord(row["tenant"], row["sequence"], AccessEntry(**entry), row["previous_hash"], row["record_hash"])


class AccessLedger:
    """Appends access rows for one process; `record` returns once the row is committed."""

    def __init__(self, database: Database, key: bytes) -> None:
        self._database = database
        self.key = key
        self._pending: list[tuple[str, AccessEntry, asyncio.Future]] = []
        # Each tenant's chain head as this process last wrote or read it.
        self._heads: dict[str, tuple[int, str]] = {}
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None

    async def open(self) -> None:
        await self._database.connect(load_migrations("access_ledger", MIGRATIONS_PACKAGE))
        self._writer = asyncio.create_task(self._write_forever(), name="access-ledger-writer")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        for _, _, done in self._pending:
            if not done.done():
                done.set_exception(RuntimeError("the access ledger closed before the row was written"))
        self._pending.clear()
        await self._database.close()

    @property
    def database(self) -> Database:
        """The ledger's database, whose migrations also hold the idempotency keys' bindings."""
        return self._database

    def subject_digest(self, tenant: str, subject_id: str) -> str:
        return subject_digest(self.key, tenant, subject_id)

    async def record(self, tenant: str, entry: AccessEntry) -> None:
        if self._writer is None:
            raise RuntimeError("the access ledger is not open")
        done = asyncio.get_running_loop().create_future()
        self._pending.append((tenant, entry, done))
        self._wake.set()
        await done

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self._append(batch)
            except Exception as error:
                logger.exception("access ledger rows could not be written")
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _append(self, batch: list[tuple[str, AccessEntry, asyncio.Future]]) -> None:
        by_tenant: dict[str, list[AccessEntry]] = {}
        for tenant, entry, _ in batch:
            by_tenant.setdefault(tenant, []).append(entry)
        for tenant, entries in by_tenant.items():
            await self._append_to_chain(tenant, entries)

    async def _append_to_chain(self, tenant: str, entries: list[AccessEntry]) -> None:
        """One statement per tenant and batch, without a lock: rows are sealed onto the head this process last
        wrote or read, and the primary key (tenant, sequence) refuses them if another process extended the
        chain meanwhile; the head is then read again and the rows sealed anew. The chain cannot fork."""
        for _ in range(_MAX_CHAIN_RACES):
            head = self._heads.get(tenant)
            if head is None:
                row = await self._database.pool.fetchrow(
                    "SELECT sequence, record_hash FROM access_ledger WHERE tenant = $1 ORDER BY sequence DESC LIMIT 1",
                    tenant,
                )
                head = (row["sequence"], row["record_hash"]) if row else (0, "")
            sequence, previous = head
            rows = []
            for entry in entries:
                sequence += 1
                record = seal(self.key, tenant, sequence, entry, previous)
                previous = record.record_hash
                rows.append(_row(record))
            try:
                # In the database's transaction: its synchronous_commit holds there, also through a pooler.
                async with self._database.transaction() as connection:
                    await connection.execute(
                        "INSERT INTO access_ledger SELECT * FROM jsonb_populate_recordset(NULL::access_ledger, $1)",
                        rows,
                    )
            except asyncpg.UniqueViolationError:
                self._heads.pop(tenant, None)  # another writer extended the chain: read its head, seal again
                continue
            self._heads[tenant] = (sequence, previous)
            return
        raise RuntimeError(f"the access ledger of {tenant} kept moving under {_MAX_CHAIN_RACES} attempts")


def _row(record: AccessRecord) -> dict:
    entry = record.entry
    return {
        "tenant": record.tenant,
        "sequence": record.sequence,
        "time": entry.time.isoformat(),
        "method": entry.method,
        "principal": entry.principal,
        "purpose": entry.purpose,
        "resources": list(entry.resources),
        "subject_digests": list(entry.subject_digests),
        "entry": {
            "roles": list(entry.roles),
            "data_class_declared": entry.data_class_declared,
            "data_class_derived": entry.data_class_derived,
            "records": entry.records,
            "models": [list(model) for model in entry.models],
            "request_sha256": entry.request_sha256,
            "response_sha256": entry.response_sha256,
            "decision": entry.decision,
            "reason": entry.reason,
            "status_code": entry.status_code,
            "request_id": entry.request_id,
            "trace_id": entry.trace_id,
            "span_id": entry.span_id,
            "run_id": entry.run_id,
        },
        "previous_hash": record.previous_hash,
        "record_hash": record.record_hash,
    }


def access_key(settings: ServiceSettings) -> bytes:
    """The ledger key every service of a deployment shares (and the conductor verifies with)."""
    return load_or_create_secret(
        settings.audit_key_path,
        create=settings.database_is_local,
        what="access ledger key",
        variable="MATCHA_AUDIT_KEY_FILE",
    )


def configured_access_ledger(settings: ServiceSettings) -> AccessLedger:
    """A service's ledger writer: its own small pool, so ledger rows never queue behind the service's queries.
    Its commits do not wait for the disk flush (see the module's docstring)."""
    database = configured_database(settings, pool_size=2, server_settings={"synchronous_commit": "off"}, stateless=True)
    return AccessLedger(database, access_key(settings))


class AccessLedgerReader:
    """Reads a tenant's access rows (for the auditor's listing and the chain's verification)."""

    def __init__(self, database: Database, key: bytes) -> None:
        self._database = database
        self.key = key

    async def list(
        self,
        tenant: str,
        *,
        subject_id: str,
        resource: str,
        principal: str,
        method: str,
        decision: str,
        start: datetime | None,
        end: datetime | None,
        after_sequence: int,
        limit: int,
    ) -> list[AccessRecord]:
        """`method` is a full method, or a service name for all its methods."""
        digest = subject_digest(self.key, tenant, subject_id) if subject_id else ""
        rows = await self._database.pool.fetch(
            """SELECT * FROM access_ledger
               WHERE tenant = $1 AND sequence > $2
                 AND ($3 = '' OR subject_digests @> ARRAY[$3]) AND ($4 = '' OR resources @> ARRAY[$4])
                 AND ($5 = '' OR principal = $5)
                 AND ($6 = '' OR method = $6 OR method LIKE $6 || '/%')
                 AND ($7 = '' OR entry->>'decision' = $7)
                 AND ($8::timestamptz IS NULL OR time >= $8) AND ($9::timestamptz IS NULL OR time < $9)
               ORDER BY sequence LIMIT $10""",
            tenant,
            after_sequence,
            digest,
            resource,
            principal,
            method,
            decision,
            start,
            end,
            limit,
        )
        return [access_record(row) for row in rows]

    async def chain(self, tenant: str, from_sequence: int) -> AsyncIterator[AccessRecord]:
        async with self._database.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            async for row in connection.cursor(
                "SELECT * FROM access_ledger WHERE tenant = $1 AND sequence >= $2 ORDER BY sequence",
                tenant,
                from_sequence,
                prefetch=500,
            ):
                yield access_record(row)

    async def record_hash(self, tenant: str, sequence: int) -> str | None:
        return await self._database.pool.fetchval(
            "SELECT record_hash FROM access_ledger WHERE tenant = $1 AND sequence = $2", tenant, sequence
        )
