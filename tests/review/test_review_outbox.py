"""The outbox store and retry policy on their own, against the real database."""

from matcha.review.delivery import RetryPolicy
from matcha.review.store import ReviewStore
from matcha.runtime.database import Database, load_migrations


async def test_an_empty_outbox_has_nothing_due(isolated_database):
    """The dispatcher sleeps until the next due time: with nothing pending there is none (not zero)."""
    database = Database(isolated_database, pool_size=2)
    await database.connect(load_migrations("review", "matcha.review.migrations"))
    try:
        store = ReviewStore(database)
        assert await store.next_due_in(signals=True, sinks=["files"]) is None
        assert await store.lease_due(10, 60.0, signals=True, sinks=["files"]) == []
    finally:
        await database.close()


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    policy = RetryPolicy(initial_backoff_seconds=1.0, max_backoff_seconds=30.0)
    for attempts, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (9, 30.0)):
        delays = [policy.backoff(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
