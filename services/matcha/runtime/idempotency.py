"""Idempotency keys bound to their request, once for every service.

A service deduplicates a repeated `x-matcha-idempotency-key` in its own store and answers the first call's
outcome; alone, that answers a different request sent under a used key with the outcome of the first one. The
server interceptor therefore binds (tenant, method, key) to the SHA-256 of the request as serialised before the
handler runs: a repeat with the same bytes goes through (the service dedupes it), another request under the same
key is refused with FAILED_PRECONDITION (`IDEMPOTENCY_KEY_REUSED`) and never reaches the handler.

A binding stays whatever the call's outcome (a failed call may have written before it failed), until it expires
after RETENTION: every key a retry can still send (a run lives 7 days at most) stays bound, and the table does
not grow for ever. Client-streamed calls are not bound: their messages carry keys of their own, deduplicated one
by one by the service.

A key may name a data subject ("ingest/<tenant>/<customer>"), so it is kept as an HMAC-SHA-256 under the access
ledger's key, like the ledger's subjects: nobody without the key can test a guess against the table.
"""

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from matcha.runtime.database import Database
from matcha.runtime.errors import FailedPrecondition, Unavailable

REASON = "IDEMPOTENCY_KEY_REUSED"
RETENTION = timedelta(days=8)
# Each process deletes expired bindings at most this often, on the call that finds it due.
PRUNE_INTERVAL_SECONDS = 3600.0
# A binding raced by another first use of the key is read again; it is committed by then.
_ATTEMPTS = 3


class IdempotencyKeys:
    """Bindings in the access ledger's database (its migrations create the table)."""

    def __init__(
        self,
        database: Database,
        key: bytes,
        *,
        retention: timedelta = RETENTION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._key = key
        self._retention = retention
        self._clock = clock
        self._pruned_at: float | None = None

    async def bind(self, tenant: str, method: str, key: str, request_sha256: str) -> None:
        """Binds the key to the request on first use; refuses another request under a bound key."""
        await self._prune_when_due()
        key_sha256 = hmac.new(self._key, f"idempotency\0{tenant}\0{key}".encode(), hashlib.sha256).hexdigest()
        for _ in range(_ATTEMPTS):
            bound = await self._bound(tenant, method, key_sha256, request_sha256)
            if bound is not None:
                break
        else:
            raise RuntimeError("an idempotency key's binding could not be read")
        if bound != request_sha256:
            raise FailedPrecondition(
                "this idempotency key was already used with another request; send a new key for a new request",
                reason=REASON,
                metadata={"method": method},
            )

    async def _prune_when_due(self) -> None:
        now = self._clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
            return
        self._pruned_at = now
        try:
            await self._database.pool.execute(
                "DELETE FROM idempotency_keys WHERE bound_at < now() - $1::interval", self._retention
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            self._pruned_at = None  # tried again on the next call; the binding itself reports a database failure

    async def _bound(self, tenant: str, method: str, key_sha256: str, request_sha256: str) -> str | None:
        """The request digest the key is bound to, binding it first when unused; None when another first use of
        the key is committing meanwhile (this statement's snapshot cannot see it yet)."""
        try:
            return await self._database.pool.fetchval(
                """WITH inserted AS (
                       INSERT INTO idempotency_keys (tenant, method, key_sha256, request_sha256)
                       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING request_sha256)
                   SELECT request_sha256 FROM inserted
                   UNION ALL
                   SELECT request_sha256 FROM idempotency_keys WHERE tenant = $1 AND method = $2 AND key_sha256 = $3
                   LIMIT 1""",
                tenant,
                method,
                key_sha256,
                request_sha256,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # Unchecked, the call could not be told from a reuse: it is refused until the database answers.
            raise Unavailable("the idempotency key could not be checked; retry", retry_after_seconds=1.0) from None
