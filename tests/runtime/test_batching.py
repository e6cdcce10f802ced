"""The micro-batcher coalesces concurrent requests without mixing up results."""

import asyncio

import pytest

from matcha.runtime.batching import MicroBatcher


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
