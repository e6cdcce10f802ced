"""Versioned migrations: applied once even when processes start together; edits after the fact are refused."""

import asyncio
import uuid

import asyncpg
import pytest

from matcha.runtime.database import Migration, apply_migrations


def migrations(component: str, table: str, second_sql: str = "ALTER TABLE {t} ADD COLUMN note text") -> list:
    return [
        Migration(component, 1, "create", f"CREATE TABLE {table} (id int PRIMARY KEY)"),
        Migration(component, 2, "note", second_sql.format(t=table)),
    ]


async def test_concurrent_starts_apply_each_migration_once(postgres_url):
    component, table = f"test-{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:8]}"
    connections = [await asyncpg.connect(postgres_url) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(apply_migrations(c, migrations(component, table)) for c in connections))
        assert sorted(applied) == [0, 0, 0, 2]
        rows = await connections[0].fetch(
            "SELECT version FROM matcha_schema_migrations WHERE component = $1 ORDER BY version", component
        )
        assert [row["version"] for row in rows] == [1, 2]
    finally:
        for connection in connections:
            await connection.close()


async def test_a_changed_migration_is_refused_and_nothing_more_runs(postgres_url):
    component, table = f"test-{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(postgres_url)
    try:
        await apply_migrations(connection, migrations(component, table)[:1])
        edited = [
            Migration(component, 1, "create", f"CREATE TABLE {table} (id bigint PRIMARY KEY)"),
            migrations(component, table)[1],
        ]
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await apply_migrations(connection, edited)
        columns = await connection.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = $1", table
        )
        assert columns == 1
    finally:
        await connection.close()
