"""A real PgBouncer in front of a local PostgreSQL, pooling as the production overlay configures it.

The `[pgbouncer]` settings come from the overlay's pgbouncer.ini; only what names places (addresses,
authentication, TLS files) and the pool's size are replaced, so the tests run the pooling production runs.
Debian's package is what `make test` installs (in /usr/sbin, often outside PATH).
"""

import configparser
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support import free_port

PRODUCTION_INI = Path(__file__).resolve().parents[2] / "deploy/kubernetes/overlays/production/pgbouncer/pgbouncer.ini"

# Where things are in the cluster, replaced by what exists here: a loopback port, no TLS, no passwords.
_LOCAL_PLACES = {
    "listen_addr": "127.0.0.1",
    "unix_socket_dir": "",
    "auth_type": "trust",
    "client_tls_sslmode": "disable",
    "server_tls_sslmode": "disable",
    "logfile": "",
    "pidfile": "",
}
_CLUSTER_FILES = ("client_tls_cert_file", "client_tls_key_file", "server_tls_ca_file")


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    assert found, "pgbouncer is not installed: `make test` installs Debian's package"
    return found


def production_settings() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    parser.read_string(PRODUCTION_INI.read_text())
    return dict(parser["pgbouncer"])


@dataclass(frozen=True)
class PgBouncer:
    port: int
    pool_size: int
    log: Path

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


@contextmanager
def running_pgbouncer(postgres_url: str, *, pool_size: int, users: list[str]) -> Iterator[PgBouncer]:
    """PgBouncer on a free loopback port, logging in to `postgres_url`'s server (a Unix socket) as each client's
    user, with at most `pool_size` server connections per database and user."""
    parts = urlsplit(postgres_url)
    socket_dir = parse_qs(parts.query)["host"][0]
    settings = {
        **production_settings(),
        **_LOCAL_PLACES,
        "listen_port": str(free_port()),
        "default_pool_size": str(pool_size),
        "reserve_pool_size": "0",
        "max_db_connections": str(pool_size),
    }
    for name in _CLUSTER_FILES:
        settings.pop(name, None)
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    settings["auth_file"] = str(directory / "users.txt")
    (directory / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    lines = ["[databases]", f"* = host={socket_dir} port={parts.port or 5432}", "[pgbouncer]"]
    lines += [f"{name} = {value}" for name, value in settings.items()]
    (directory / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    command = [pgbouncer_binary(), str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; the server's own user may open its socket.
        owner = pwd.getpwuid(os.stat(socket_dir).st_uid).pw_name
        command[1:1] = ["-u", owner]
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)
    log = directory / "pgbouncer.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(process, int(settings["listen_port"]), log)
        yield PgBouncer(int(settings["listen_port"]), pool_size, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, f"pgbouncer exited:\n{log.read_text()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"pgbouncer did not listen on {port}:\n{log.read_text()}")
