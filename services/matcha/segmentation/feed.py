"""Wakes change watchers when a tenant's change log grows, in any replica.

Writers `pg_notify` inside the transaction that appends changes, so a notification
arrives only once they are committed; each process keeps one listening connection
and wakes the watchers of that tenant, which then read the log from the database.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from matcha.segmentation.store import CHANGES_CHANNEL


class ChangeFeed:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._connection: asyncpg.Connection | None = None
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    async def start(self) -> None:
        self._connection = await asyncpg.connect(self._url)
        await self._connection.add_listener(CHANGES_CHANNEL, self._notified)

    async def close(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _notified(self, connection, pid, channel, tenant: str) -> None:
        for event in self._waiters.get(tenant, ()):
            event.set()

    @contextmanager
    def subscribe(self, tenant: str) -> Iterator[asyncio.Event]:
        """An event set whenever the tenant's change log may have grown; clear it before reading."""
        event = asyncio.Event()
        self._waiters[tenant].add(event)
        try:
            yield event
        finally:
            self._waiters[tenant].discard(event)
            if not self._waiters[tenant]:
                del self._waiters[tenant]
