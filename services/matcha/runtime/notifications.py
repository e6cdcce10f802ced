"""Wakes local waiters when PostgreSQL's LISTEN/NOTIFY says something changed under a key
(a run, a tenant's event log, a queue), whichever replica made the change."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


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
