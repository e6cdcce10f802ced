"""Per-tenant limits every service applies in its server interceptor: a call rate and concurrent calls.

One tenant cannot take a service from the others: each tenant has its own token bucket (a steady rate with a
burst) and its own count of calls in progress. A refusal is `RESOURCE_EXHAUSTED` with `RetryInfo` (when a token
will be back, or a short pause for concurrency) and an ErrorInfo reason naming the limit. Each message of a
request stream after its first takes a token too, waiting for one rather than failing the stream half-way: one
open stream cannot carry more than the tenant's rate. Limits are per process: behind N replicas a tenant gets N
times the rate.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from matcha.runtime.errors import ResourceExhausted

# How long a caller refused for concurrency is told to wait: calls in progress usually end within that.
CONCURRENCY_RETRY_SECONDS = 0.1
# Calls a replica makes to another to carry out a call the first one admitted (the part of an events stream's
# message whose customers another replica owns): counted against concurrency, not against the call rate, or
# each message would be paid for twice (once in the stream, once in the part sent on).
CONTINUATIONS = frozenset(
    {
        "/matcha.segmentation.v1.SegmentationPartitionService/ApplyEvents",
        "/matcha.segmentation.v1.SegmentationPartitionService/ReevaluateCustomers",
    }
)


@dataclass(frozen=True)
class TenantLimits:
    """0 turns a limit off."""

    calls_per_second: float = 0.0
    burst: int = 0  # calls a tenant may make at once after being idle; defaults to one second's worth
    max_concurrent_calls: int = 0

    @property
    def bucket_size(self) -> float:
        return float(self.burst or max(1.0, self.calls_per_second))


@dataclass
class _TenantState:
    tokens: float
    refilled_at: float
    in_progress: int = 0


@dataclass
class TenantLimiter:
    limits: TenantLimits
    clock: Callable[[], float] = time.monotonic
    _tenants: dict[str, _TenantState] = field(default_factory=dict)

    def admit(self, tenant: str, *, metered: bool = True) -> Callable[[], None]:
        """Counts one call of `tenant`, or refuses it; returns what releases it when the call ends. A call
        not `metered` (a continuation) takes no token from the rate."""
        limits = self.limits
        now = self.clock()
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = _TenantState(limits.bucket_size, now)
        if limits.max_concurrent_calls and state.in_progress >= limits.max_concurrent_calls:
            raise ResourceExhausted(
                f"tenant {tenant} has {state.in_progress} calls in progress here, the most it may have",
                reason="TENANT_CONCURRENCY_LIMIT",
                metadata={"tenant": tenant, "limit": str(limits.max_concurrent_calls)},
                retry_after_seconds=CONCURRENCY_RETRY_SECONDS,
            )
        if limits.calls_per_second and metered:
            self._refill(state, now)
            if state.tokens < 1.0:
                raise ResourceExhausted(
                    f"tenant {tenant} is above its rate of {limits.calls_per_second:g} calls per second here",
                    reason="TENANT_RATE_LIMIT",
                    metadata={"tenant": tenant, "limit": f"{limits.calls_per_second:g}/s"},
                    retry_after_seconds=(1.0 - state.tokens) / limits.calls_per_second,
                )
            state.tokens -= 1.0
        state.in_progress += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                state.in_progress -= 1

        return release

    async def pace(self, tenant: str) -> None:
        """Takes a token for one more message of a stream `tenant` was admitted for, waiting until there is one:
        the stream slows to the tenant's rate (its sender held back by flow control) instead of being refused."""
        limits = self.limits
        if not limits.calls_per_second:
            return
        state = self._tenants[tenant]  # admitted, so known
        while True:
            self._refill(state, self.clock())
            if state.tokens >= 1.0:
                state.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - state.tokens) / limits.calls_per_second)

    def _refill(self, state: _TenantState, now: float) -> None:
        rate = self.limits.calls_per_second
        state.tokens = min(self.limits.bucket_size, state.tokens + (now - state.refilled_at) * rate)
        state.refilled_at = now
