"""The embedded server is sized for a whole mesh on one machine, and keeps that setting across restarts."""

import asyncpg

from matcha.launcher.postgres import MAX_CONNECTIONS, EmbeddedPostgres


async def max_connections(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()


async def test_the_session_server_admits_a_mesh_of_connections(postgres_url):
    # PostgreSQL's default (100) is what two meshes' pools and listeners reach together.
    assert await max_connections(postgres_url) == MAX_CONNECTIONS > 100


async def test_the_setting_is_written_once_and_survives_a_restart(tmp_path):
    postgres = EmbeddedPostgres(tmp_path / "postgres")
    try:
        url = postgres.start()
        assert await max_connections(url) == MAX_CONNECTIONS
        postgres.stop()
        assert await max_connections(postgres.start()) == MAX_CONNECTIONS
        config = (tmp_path / "postgres" / "postgresql.conf").read_text()
        assert config.count(f"max_connections = {MAX_CONNECTIONS}") == 1
    finally:
        postgres.stop()
