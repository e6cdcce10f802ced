"""PostgreSQL: an asyncpg pool with the pgvector codec, and versioned SQL migrations.

Each service owns a `migrations` package of `NNNN_name.sql` files. They are
applied at start inside one transaction holding an advisory lock, so several
processes starting together apply each migration exactly once; an applied
migration whose file changed is refused (its checksum is recorded).

The pool may go through a transaction-pooling PgBouncer (production): then each transaction, or each statement
outside one, may run on a different server session, so the pool keeps no session state there: no named
prepared statements (PgBouncer 1.18 cannot carry them), no session settings (they would stay on a server
connection other clients get next; `transaction()` sets them per transaction instead). Work that needs a session
of its own (LISTEN) connects to `session_url`, directly to PostgreSQL.
"""

import hashlib
import importlib.resources
import itertools
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pgvector.asyncpg import register_vector

if TYPE_CHECKING:
    from matcha.runtime.settings import ServiceSettings

logger = logging.getLogger(__name__)

# Arbitrary constant shared by every Matcha process: serialises migrations.
MIGRATION_LOCK_ID = 0x6D6174636861
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(component: str, package: str) -> list[Migration]:
    migrations = []
    for entry in importlib.resources.files(package).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            migrations.append(Migration(component, int(match[1]), match[2], entry.read_text()))
    return sorted(migrations, key=lambda migration: migration.version)


async def apply_migrations(connection: asyncpg.Connection, migrations: list[Migration]) -> int:
    """Applies what is missing; returns how many migrations ran."""
    applied_now = 0
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
        await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS matcha_schema_migrations (
                   component  text        NOT NULL,
                   version    integer     NOT NULL,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        rows = await connection.fetch("SELECT component, version, checksum FROM matcha_schema_migrations")
        applied = {(row["component"], row["version"]): row["checksum"] for row in rows}
        for migration in migrations:
            key = (migration.component, migration.version)
            if key in applied:
                if applied[key] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.component}/{migration.version:04d}_{migration.name} "
                        "was changed after it was applied; add a new migration instead"
                    )
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO matcha_schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                migration.component,
                migration.version,
                migration.name,
                migration.checksum,
            )
            logger.info("applied migration", extra={"migration": f"{key[0]}/{migration.version:04d}"})
            applied_now += 1
    return applied_now


async def _init_connection(connection: asyncpg.Connection) -> None:
    await register_vector(connection)
    await connection.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads, format="text")


async def _keep_session(connection: asyncpg.Connection) -> None:
    return None


class _PooledConnection(asyncpg.Connection):
    """A connection through a transaction pooler. Cursors still prepare a named statement inside their
    transaction, left on that server connection for whichever client gets it next: names unique to this
    process keep another process's statement of the same number from colliding with it."""

    _process_tag = secrets.token_hex(6)
    _numbers = itertools.count(1)

    def _get_unique_id(self, prefix: str) -> str:
        return f"__asyncpg_{prefix}_{self._process_tag}_{next(self._numbers):x}__"


class Database:
    """The process's connection pool; opened by the service's start hook."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        server_settings: dict[str, str] | None = None,
        stateless: bool = False,
        session_url: str | None = None,
        transaction_pooler: bool = False,
    ):
        """`stateless`: the pool's connections never hold session state (no LISTEN, session locks, temporary
        tables), so they are not reset when released (a round trip saved on every use).
        `server_settings` hold for the whole session on a direct connection; through a transaction pooler only
        inside `transaction()`. `session_url`: a direct connection for session work; defaults to `url`.
        `transaction_pooler`: `url` goes through a transaction-pooling PgBouncer."""
        if transaction_pooler and session_url is None:
            raise ValueError("a database behind a transaction pooler needs a direct session URL for LISTEN")
        self._url = url
        self._session_url = session_url or url
        self._pool_size = pool_size
        self._server_settings = server_settings or {}
        self._stateless = stateless
        self._transaction_pooler = transaction_pooler
        self._pool: asyncpg.Pool | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def session_url(self) -> str:
        """Where a connection keeps its own server session (LISTEN): never through a transaction pooler."""
        return self._session_url

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not connected yet")
        return self._pool

    async def connect(self, migrations: list[Migration]) -> None:
        # Migrations go through the pooler too: their lock is transaction-level, and a crowd of pods starting
        # together queues in PgBouncer instead of taking PostgreSQL's connection slots.
        connection = await asyncpg.connect(self._url, **self._connect_options())
        try:
            await apply_migrations(connection, migrations)
        finally:
            await connection.close()
        # The vector type exists only once migrations ran, so the codec is registered after.
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=self._pool_size,
            init=_init_connection,
            # Through a transaction pooler, a reset would run on whichever server connection is free.
            reset=_keep_session if self._stateless or self._transaction_pooler else None,
            **self._connect_options(),
        )

    def _connect_options(self) -> dict:
        if not self._transaction_pooler:
            return {"server_settings": {"application_name": "matcha", **self._server_settings}}
        # PgBouncer carries application_name over to the server connection a client is given, and refuses other
        # startup parameters; statements stay unnamed, so none outlives its transaction.
        return {
            "server_settings": {"application_name": "matcha"},
            "statement_cache_size": 0,
            "connection_class": _PooledConnection,
        }

    @asynccontextmanager
    async def transaction(self, **options) -> AsyncIterator[PoolConnectionProxy]:
        """A pooled connection in a transaction (`options` as asyncpg's) where `server_settings` hold, however
        the pool reaches PostgreSQL."""
        async with self.pool.acquire() as connection, connection.transaction(**options):
            if self._transaction_pooler and self._server_settings:
                await connection.execute(
                    "SELECT set_config(name, value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)",
                    list(self._server_settings),
                    list(self._server_settings.values()),
                )
            yield connection

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def configured_database(
    settings: "ServiceSettings",
    *,
    pool_size: int | None = None,
    server_settings: dict[str, str] | None = None,
    stateless: bool = False,
) -> Database:
    """A service's database as its settings say: pooled URL, direct session URL, pool size."""
    return Database(
        settings.database_url,
        pool_size=pool_size or settings.database_pool_size,
        server_settings=server_settings,
        stateless=stateless,
        session_url=settings.database_session_url,
        transaction_pooler=settings.database_transaction_pooler,
    )
