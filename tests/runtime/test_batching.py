"""The micro-batcher coalesces concurrent requests without mixing up results."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.batching import DEFAULT_MAX_QUEUED_ITEMS, MicroBatcher
from matcha.runtime.client import error_details
from matcha.runtime.errors import ResourceExhausted


class RecordingModel:
    def __init__(self, delay: float = 0.01) -> None:
        self.batches: list[list[str]] = []
        self._delay = delay

    async def run(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        await asyncio.sleep(self._delay)
        return [item.upper() for item in items]


async def test_concurrent_callers_share_batches_and_get_their_own_results():
    model = RecordingModel()
    batcher = MicroBatcher(model.run, max_batch_size=64, max_wait_seconds=0.005)
    requests = [[f"c{client}-t{text}" for text in range(16)] for client in range(8)]
    replies = await asyncio.gather(*(batcher.submit(request) for request in requests))
    assert replies == [[text.upper() for text in request] for request in requests]
    assert [len(batch) for batch in model.batches] == [64, 64]
    await batcher.close()


async def test_a_request_larger_than_a_batch_is_split_and_reassembled():
    model = RecordingModel()
    batcher = MicroBatcher(model.run, max_batch_size=10, max_wait_seconds=0)
    items = [str(i) for i in range(25)]
    assert await batcher.submit(items) == items
    assert all(len(batch) <= 10 for batch in model.batches) and sum(map(len, model.batches)) == 25
    await batcher.close()


async def test_a_lone_request_waits_at_most_max_wait():
    model = RecordingModel(delay=0)
    batcher = MicroBatcher(model.run, max_batch_size=64, max_wait_seconds=0.01)
    started = asyncio.get_running_loop().time()
    assert await batcher.submit(["only"]) == ["ONLY"]
    assert asyncio.get_running_loop().time() - started < 0.5
    await batcher.close()


async def test_a_failing_batch_fails_its_callers_and_the_batcher_keeps_working():
    calls = 0

    async def flaky(items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model crashed")
        return items

    batcher = MicroBatcher(flaky, max_batch_size=8, max_wait_seconds=0)
    with pytest.raises(RuntimeError, match="model crashed"):
        await batcher.submit(["a"])
    assert await batcher.submit(["b"]) == ["b"]
    await batcher.close()


class GatedModel:
    """A model that runs a batch only when the test lets it: the queue fills while it is held."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen: list[str] = []

    async def run(self, items: list[str]) -> list[str]:
        await self.gate.wait()
        self.seen.extend(items)
        return [item.upper() for item in items]


async def _outcome(batcher: MicroBatcher, items: list[str]) -> list[str] | ResourceExhausted:
    try:
        return await batcher.submit(items)
    except ResourceExhausted as refusal:
        return refusal


async def test_a_flooded_queue_refuses_with_retry_info_and_answers_everything_it_took():
    model = GatedModel()
    batcher = MicroBatcher(model.run, max_batch_size=8, max_wait_seconds=0, max_queued_items=32)
    requests = [[f"c{client}-t{text}" for text in range(4)] for client in range(40)]  # 160 items for 32 places
    calls = [asyncio.create_task(_outcome(batcher, request)) for request in requests]
    await asyncio.sleep(0.05)  # every call has been admitted or refused; the model holds one batch
    refused = [call.result() for call in calls if call.done()]
    assert refused and all(isinstance(refusal, ResourceExhausted) for refusal in refused)
    assert {refusal.reason for refusal in refused} == {"BATCH_QUEUE_FULL"}
    assert all(0 < refusal.retry_after_seconds <= 5 for refusal in refused)
    assert batcher.queued_items <= 32

    model.gate.set()
    outcomes = await asyncio.gather(*calls)
    admitted = [
        (request, outcome) for request, outcome in zip(requests, outcomes, strict=True) if isinstance(outcome, list)
    ]
    # Every call came before the worker took anything: the queue took 32 items, nothing it took was dropped,
    # and each caller got its own results.
    assert len(admitted) == len(requests) - len(refused) == 32 // 4
    assert all(outcome == [text.upper() for text in request] for request, outcome in admitted)

    # The service keeps serving: the refused callers, coming back as told, are answered.
    retried = [request for request, outcome in zip(requests, outcomes, strict=True) if not isinstance(outcome, list)]
    for start in range(0, len(retried), 8):
        chunk = retried[start : start + 8]
        replies = await asyncio.gather(*(batcher.submit(request) for request in chunk))
        assert replies == [[text.upper() for text in request] for request in chunk]
    assert sorted(model.seen) == sorted(text for request in requests for text in request)
    assert batcher.queued_items == 0
    await batcher.close()


async def test_an_empty_queue_takes_a_request_larger_than_its_bound():
    model = RecordingModel(delay=0)
    batcher = MicroBatcher(model.run, max_batch_size=4, max_wait_seconds=0, max_queued_items=4)
    items = [str(i) for i in range(10)]
    assert await batcher.submit(items) == items
    assert batcher.queued_items == 0
    await batcher.close()


def test_the_bound_holds_at_least_one_batch():
    with pytest.raises(ValueError, match="max_queued_items"):
        MicroBatcher(RecordingModel().run, max_batch_size=64, max_wait_seconds=0, max_queued_items=10)


async def test_an_embedding_service_flooded_past_its_queue_refuses_the_overflow_and_keeps_serving(
    embedding_settings, serve, local_encoder, connect, tenant
):
    """More texts at once than the service's queue holds: the overflow is refused with RetryInfo, every
    admitted call gets all its vectors, the service answers health and other calls meanwhile, and the
    refused callers are served when they come back as told."""
    settings = embedding_settings()
    per_call = settings.embedding_max_items_per_call
    flood = DEFAULT_MAX_QUEUED_ITEMS // per_call + 8
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as server:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(server, tenant))
        requests = [
            embedding_pb2.EmbedRequest(texts=[f"w{call} {index}" for index in range(per_call)]) for call in range(flood)
        ]

        async def embed(request):
            try:
                return await stub.Embed(request)
            except grpc.aio.AioRpcError as error:
                return error

        calls = [asyncio.create_task(embed(request)) for request in requests]
        await asyncio.sleep(0.5)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        await stub.ListCollections(embedding_pb2.ListCollectionsRequest(), timeout=5)  # not queued behind the model
        outcomes = await asyncio.gather(*calls)

        refused = [error_details(outcome) for outcome in outcomes if isinstance(outcome, grpc.aio.AioRpcError)]
        assert refused, "the flood never filled the queue"
        assert {(refusal.code, refusal.reason) for refusal in refused} == {
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "BATCH_QUEUE_FULL")
        }
        assert all(0 < refusal.retry_after_seconds <= 5 for refusal in refused)
        served = [outcome for outcome in outcomes if not isinstance(outcome, grpc.aio.AioRpcError)]
        assert all(len(reply.embeddings) == per_call for reply in served)

        await asyncio.sleep(max(refusal.retry_after_seconds for refusal in refused))
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, grpc.aio.AioRpcError):
                assert len((await stub.Embed(request)).embeddings) == per_call
