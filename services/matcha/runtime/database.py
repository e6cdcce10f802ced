"""PostgreSQL: an asyncpg pool with the pgvector codec, and versioned SQL migrations.

Each service owns a `migrations` package of `NNNN_name.sql` files. They are
applied at start inside one transaction holding an advisory lock, so several
processes starting together apply each migration exactly once; an applied
migration whose file changed is refused (its checksum is recorded).
"""

import hashlib
import importlib.resources
import json
import logging
import re
from dataclasses import dataclass

import asyncpg
from pgvector.asyncpg import register_vector

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


class Database:
    """The process's connection pool; opened by the service's start hook."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        server_settings: dict[str, str] | None = None,
        stateless: bool = False,
    ):
        """`stateless`: the pool's connections never hold session state (no LISTEN, session locks, temporary
        tables), so they are not reset when released (a round trip saved on every use)."""
        self._url = url
        self._pool_size = pool_size
        self._server_settings = server_settings or {}
        self._stateless = stateless
        self._pool: asyncpg.Pool | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not connected yet")
        return self._pool

    async def connect(self, migrations: list[Migration]) -> None:
        connection = await asyncpg.connect(self._url)
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
            reset=_keep_session if self._stateless else None,
            server_settings={"application_name": "matcha", **self._server_settings},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
