"""LISTEN survives a lost connection: the listener listens again by itself and says so."""

import asyncio
import uuid

import asyncpg

from matcha.runtime.notifications import EventBus, NotificationListener


async def test_listening_resumes_after_the_connection_is_lost_and_waiters_are_woken(postgres_url):
    channel = f"test_{uuid.uuid4().hex[:8]}"
    received: asyncio.Queue[str] = asyncio.Queue()
    reconnected = asyncio.Event()
    bus = EventBus()

    def on_reconnect() -> None:
        bus.notify_all()
        reconnected.set()

    listener = NotificationListener(
        postgres_url, {channel: received.put_nowait}, on_reconnect=on_reconnect, retry_seconds=0.05
    )
    await listener.start()
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute("SELECT pg_notify($1, 'before')", channel)
        assert await asyncio.wait_for(received.get(), 10) == "before"

        with bus.subscribe("tenant-a") as waiter:
            # What a database restart or a failover does to the listening connection.
            lost_pid = listener.server_pid
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", lost_pid)
            await asyncio.wait_for(reconnected.wait(), 30)
            assert waiter.is_set(), "waiters read again: what was notified meanwhile is unknown"
        assert listener.server_pid not in (None, lost_pid)

        await admin.execute("SELECT pg_notify($1, 'after')", channel)
        assert await asyncio.wait_for(received.get(), 10) == "after"
    finally:
        await admin.close()
        await listener.close()
    assert listener.server_pid is None
