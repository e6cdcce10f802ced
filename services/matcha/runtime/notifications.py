"""Wakes local waiters when PostgreSQL's LISTEN/NOTIFY says something changed under a key
(a run, a tenant's event log, a queue), whichever replica made the change."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import asyncpg
from asyncpg.pool import PoolConnectionProxy

logger = logging.getLogger(__name__)


class EventBus:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def subscribe(self, key: str) -> Iterator[asyncio.Event]:
        """Subscribe before reading, so that a change committed in between still sets the event."""
        waiter = asyncio.Event()
        self._waiters.setdefault(key, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[key]

    def notify(self, key: str) -> None:
        for waiter in self._waiters.get(key, ()):
            waiter.set()

    def notify_all(self) -> None:
        """Every waiter reads again: what was notified while nobody listened is unknown."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()


class NotificationListener:
    """One connection LISTENing on some channels for the whole process, re-established when it is lost (a
    database restart, a failover, a terminated backend). Notifications sent meanwhile are gone, so once it
    listens again `on_reconnect` runs: the owner wakes every waiter to read the state from the database.

    `session_url` reaches PostgreSQL directly (`Database.session_url`): LISTEN belongs to a server session, which a
    transaction pooler would hand to other clients after the statement, and their notifications with it."""

    def __init__(
        self,
        session_url: str,
        channels: dict[str, Callable[[str], None]],
        *,
        on_reconnect: Callable[[], None],
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 10.0,
    ) -> None:
        self._url = session_url
        self._channels = channels
        self._on_reconnect = on_reconnect
        self._retry = (retry_seconds, max_retry_seconds)
        self._connection: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task | None = None
        self._closed = False

    @property
    def server_pid(self) -> int | None:
        return self._connection.get_server_pid() if self._connection is not None else None

    async def start(self) -> None:
        await self._listen()

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._url)
        try:
            for channel, callback in self._channels.items():
                await connection.add_listener(channel, lambda _c, _pid, _channel, payload, cb=callback: cb(payload))
        except BaseException:
            connection.terminate()
            raise
        connection.add_termination_listener(self._lost)
        self._connection = connection

    def _lost(self, connection: asyncpg.Connection | PoolConnectionProxy) -> None:
        if self._closed or connection is not self._connection:
            return
        self._connection = None
        logger.warning("notification connection lost; listening again", extra={"channels": list(self._channels)})
        self._reconnecting = asyncio.get_running_loop().create_task(self._relisten(), name="listen again")

    async def _relisten(self) -> None:
        delay, longest = self._retry
        while not self._closed:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                logger.warning("listening again failed", extra={"error": type(error).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            logger.info("listening again", extra={"channels": list(self._channels)})
            self._on_reconnect()
            return

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
