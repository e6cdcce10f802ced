"""What each capability service may receive, as the service itself reports it.

Every Matcha server answers `matcha.runtime.v1.RuntimeService/Describe` with the clearance its own interceptor
enforces. The conductor asks each target before its first hop there and again once the report is older than the
refresh period, and keeps the answer. The operator's `MATCHA_CONDUCTOR_TARGETS` can only lower what a service
reports, never raise it.

Fail closed: a target that has not reported (unreachable so far, not a Matcha server, or not serving the service
it is configured for) is treated as outside the trust boundary and cleared for PUBLIC data only. Before a hop to a
target that never reported, the conductor waits up to `describe_timeout_seconds` for it to become reachable (one
started after the conductor, a connection in its reconnect backoff). A report that has gone stale is kept while
the service cannot be asked again: the service refuses anything above its clearance itself, so a stale report can
cost a refused call, never a leak.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from matcha.runtime.channels import ChannelPool
from matcha.runtime.governance import Clearance, DataClass
from matcha.runtime.v1 import runtime_pb2

logger = logging.getLogger(__name__)

UNREPORTED = Clearance(DataClass.PUBLIC, inside_trust_boundary=False)
DESCRIBE_PATH = f"/{runtime_pb2.DESCRIPTOR.services_by_name['RuntimeService'].full_name}/Describe"
KNOWN_CLASSES = frozenset(int(member) for member in DataClass)
# After a failed question, hops go on with what is known for this long before the service is asked again: an
# unreachable service costs one wait, not one per hop.
ASK_AGAIN_SECONDS = 1.0


def lowered(reported: Clearance, override: Clearance | None) -> Clearance:
    """The reported clearance, lowered by the operator's override where it is lower; never raised by it."""
    if override is None:
        return reported
    return Clearance(
        min(reported.max_data_class, override.max_data_class),
        reported.inside_trust_boundary and override.inside_trust_boundary,
    )


def reported_clearance(reply: runtime_pb2.DescribeResponse, service: str) -> Clearance | None:
    """The clearance a Describe reply gives `service`; None when the server does not serve it or says nothing
    usable (an unset class is no clearance, not the widest)."""
    if service not in reply.services or reply.clearance not in KNOWN_CLASSES:
        return None
    clearance = Clearance(DataClass(reply.clearance), reply.inside_trust_boundary)
    if not clearance.inside_trust_boundary and clearance.max_data_class > DataClass.INTERNAL:
        # The rule every Matcha server's settings enforce, kept against a server that does not.
        return Clearance(DataClass.INTERNAL, inside_trust_boundary=False)
    return clearance


class ReportedClearances:
    def __init__(
        self,
        endpoints: dict[str, str],
        overrides: dict[str, Clearance],
        pool: ChannelPool,
        *,
        refresh_seconds: float,
        describe_timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._overrides = dict(overrides)
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._timeout = describe_timeout_seconds
        self._clock = clock
        self._reports: dict[str, tuple[Clearance, float]] = {}
        self._asked_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def current(self, service: str) -> Clearance:
        """What the conductor may send `service` now, from what it reported last."""
        report = self._reports.get(service)
        return lowered(report[0] if report else UNREPORTED, self._overrides.get(service))

    async def refresh(self, service: str) -> Clearance:
        """Asks the service when it has not reported yet or its report is stale; returns `current`."""
        if self._due(service):
            lock = self._locks.setdefault(service, asyncio.Lock())
            async with lock:  # a fan-out's concurrent hops ask once
                if self._due(service):
                    await self._ask(service, wait=service not in self._reports)
        return self.current(service)

    async def refresh_all(self) -> None:
        """Asks every target that answers now, without waiting for the others (they may start later): what the
        conductor does at start."""
        await asyncio.gather(*(self._ask(service, wait=False, remember_failure=False) for service in self._endpoints))

    async def close(self) -> None:
        await self._pool.close()

    def _due(self, service: str) -> bool:
        if service not in self._endpoints:
            return False
        now = self._clock()
        asked = self._asked_at.get(service)
        if asked is not None and now - asked < ASK_AGAIN_SECONDS:
            return False
        report = self._reports.get(service)
        return report is None or now - report[1] >= self._refresh_seconds

    async def _ask(self, service: str, *, wait: bool, remember_failure: bool = True) -> None:
        """`wait`: for the service to become reachable, up to the timeout, rather than fail at once."""
        describe = self._pool.method(
            self._endpoints[service],
            DESCRIBE_PATH,
            runtime_pb2.DescribeRequest.SerializeToString,
            runtime_pb2.DescribeResponse.FromString,
        )
        try:
            reply = await describe(runtime_pb2.DescribeRequest(), timeout=self._timeout, wait_for_ready=wait)
        except grpc.aio.AioRpcError as error:
            if remember_failure:
                self._asked_at[service] = self._clock()
            logger.warning(
                "a capability did not report its clearance",
                extra={"service": service, "code": error.code().name},
            )
            return
        clearance = reported_clearance(reply, service)
        if clearance is None:
            # The endpoint serves something else: whatever it said, it says nothing about this service.
            logger.warning(
                "an endpoint does not report for the service it is configured for", extra={"service": service}
            )
            self._reports.pop(service, None)
            self._asked_at[service] = self._clock()
            return
        self._reports[service] = (clearance, self._clock())
