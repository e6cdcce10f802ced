"""The embedded server is sized for a whole mesh on one machine, keeps that setting across restarts, and stops
whatever server its restarts started."""

import contextlib
import os

import asyncpg
import psutil

from matcha.launcher.postgres import MAX_CONNECTIONS, EmbeddedPostgres


async def max_connections(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()


async def test_the_session_server_admits_a_mesh_of_connections(postgres_url):
    # PostgreSQL's default (100) was reached by the session's own servers beside a mesh of a test's own.
    assert await max_connections(postgres_url) == MAX_CONNECTIONS > 100


async def test_the_setting_is_written_once_and_survives_a_restart(tmp_path):
    postgres = EmbeddedPostgres(tmp_path / "postgres")
    try:
        url = postgres.start()  # a new data directory: written, then restarted to take effect
        assert await max_connections(url) == MAX_CONNECTIONS
        # As a parent with a child watcher does (`matcha up`): the postmaster the restart replaced is reaped.
        _reap_exited_children()
        postgres.stop()
        # Stopping stops the server the restart started: nothing outlives it.
        assert not _servers_of(tmp_path)
        assert await max_connections(postgres.start()) == MAX_CONNECTIONS
        config = (tmp_path / "postgres" / "postgresql.conf").read_text()
        assert config.count(f"max_connections = '{MAX_CONNECTIONS}'") == 1
    finally:
        postgres.stop()
    assert not _servers_of(tmp_path)


def _reap_exited_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _servers_of(directory) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["cmdline", "status"])
        if str(directory) in " ".join(process.info["cmdline"] or ()) and process.info["status"] != psutil.STATUS_ZOMBIE
    ]
