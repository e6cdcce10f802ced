"""One owner per watch across replicas: when the owner stops, another replica takes the watch over and the
windows go on closing, each reported once, none skipped."""

import asyncio
import itertools
from contextlib import AsyncExitStack
from datetime import UTC, timedelta

import asyncpg
from google.protobuf import duration_pb2

from matcha.classification.app import build_classification_service
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc


async def owner_of(postgres_url: str, tenant: str, name: str) -> str | None:
    connection = await asyncpg.connect(postgres_url)
    try:
        return await connection.fetchval(
            "SELECT lease_owner FROM classification_watches WHERE tenant = $1 AND name = $2", tenant, name
        )
    finally:
        await connection.close()


async def reports_until(stub, name: str, count: int) -> list[pb.WatchReport]:
    async with asyncio.timeout(60):
        while True:
            reports = (await stub.ListWatchReports(pb.ListWatchReportsRequest(watch=name, page_size=100))).reports
            if len(reports) >= count:
                return list(reports)
            await asyncio.sleep(0.2)


async def test_another_replica_takes_over_when_the_owner_stops(
    classification_settings, serve, local_encoder, connect, tenant, postgres_url
):
    settings = classification_settings(classification_watch_lease_seconds=1.5)
    async with AsyncExitStack() as replicas:
        first_stack = AsyncExitStack()
        first = await first_stack.enter_async_context(
            serve(build_classification_service(settings, encoder=local_encoder), settings)
        )
        stub = classification_pb2_grpc.ClassificationServiceStub(connect(first, tenant, purpose="listening"))
        window = duration_pb2.Duration()
        window.FromTimedelta(timedelta(seconds=1))
        watch = pb.Watch(name="ha", sources=[pb.WatchSource(name="api", push=pb.PushSource())], window=window)
        await stub.CreateWatch(pb.CreateWatchRequest(watch=watch))
        await reports_until(stub, "ha", 2)
        before = await owner_of(postgres_url, tenant, "ha")
        assert before is not None
        # A second replica on the same database: the first keeps the watch while it renews its lease.
        second = await replicas.enter_async_context(
            serve(build_classification_service(settings, encoder=local_encoder), settings)
        )
        other = classification_pb2_grpc.ClassificationServiceStub(connect(second, tenant, purpose="listening"))
        await asyncio.sleep(2.0)
        assert await owner_of(postgres_url, tenant, "ha") == before
        await first_stack.aclose()
        count = len(await reports_until(other, "ha", 1))
        reports = await reports_until(other, "ha", count + 3)
        after = await owner_of(postgres_url, tenant, "ha")
        assert after is not None and after != before
        ends = sorted(report.window_end.ToDatetime(tzinfo=UTC) for report in reports)
        assert all(later - earlier == timedelta(seconds=1) for earlier, later in itertools.pairwise(ends))
        await other.DeleteWatch(pb.DeleteWatchRequest(name="ha"))
