"""Idempotency bindings expire: the table keeps every key a retry can still send, not every key ever used."""

from datetime import timedelta

import pytest

from matcha.runtime.access import MIGRATIONS_PACKAGE
from matcha.runtime.database import Database, load_migrations
from matcha.runtime.errors import FailedPrecondition
from matcha.runtime.idempotency import PRUNE_INTERVAL_SECONDS, IdempotencyKeys


async def test_expired_bindings_are_deleted_and_recent_ones_kept(isolated_database):
    database = Database(isolated_database, pool_size=2)
    await database.connect(load_migrations("access_ledger", MIGRATIONS_PACKAGE))
    try:
        clock = [0.0]
        keys = IdempotencyKeys(database, b"k" * 32, retention=timedelta(days=8), clock=lambda: clock[0])
        await keys.bind("t", "svc/Method", "old-run/step/0", "a" * 64)
        await keys.bind("t", "svc/Method", "recent-run/step/0", "b" * 64)
        await database.pool.execute(
            "UPDATE idempotency_keys SET bound_at = now() - interval '9 days' WHERE request_sha256 = $1", "a" * 64
        )
        # Not due yet: the old binding still refuses another request under its key.
        with pytest.raises(FailedPrecondition):
            await keys.bind("t", "svc/Method", "old-run/step/0", "c" * 64)

        clock[0] += PRUNE_INTERVAL_SECONDS
        await keys.bind("t", "svc/Method", "another/step/0", "d" * 64)
        remaining = {row["request_sha256"] for row in await database.pool.fetch("SELECT * FROM idempotency_keys")}
        assert remaining == {"b" * 64, "d" * 64}
        # The expired key is free again; the recent one still bound.
        await keys.bind("t", "svc/Method", "old-run/step/0", "c" * 64)
        with pytest.raises(FailedPrecondition):
            await keys.bind("t", "svc/Method", "recent-run/step/0", "e" * 64)
    finally:
        await database.close()
