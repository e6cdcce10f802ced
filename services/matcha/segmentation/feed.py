"""Wakes change watchers when a tenant's change log grows, in any replica.

Writers `pg_notify` inside the transaction that appends changes, so a notification
arrives only once they are committed; each process keeps one listening connection
(re-established if it is lost) and wakes the watchers of that tenant, which then
read the log from the database.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from matcha.runtime.notifications import EventBus, NotificationListener

CHANGES_CHANNEL = "segmentation_changes"


class ChangeFeed:
    def __init__(self, database_url: str) -> None:
        self._tenants = EventBus()
        self._listener = NotificationListener(
            database_url, {CHANGES_CHANNEL: self._tenants.notify}, on_reconnect=self._tenants.notify_all
        )

    async def start(self) -> None:
        await self._listener.start()

    async def close(self) -> None:
        self._tenants.notify_all()
        await self._listener.close()

    @contextmanager
    def subscribe(self, tenant: str) -> Iterator[asyncio.Event]:
        """An event set whenever the tenant's change log may have grown; clear it before reading."""
        with self._tenants.subscribe(tenant) as event:
            yield event
