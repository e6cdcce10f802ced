"""Dynamic micro-batching: concurrent small requests share one model batch.

Callers submit lists of items; a single worker packs queued items into batches
of at most `max_batch_size`, waiting at most `max_wait_seconds` for more once a
batch has started to fill. While the model is busy, new requests queue up and
ride the next batch, so many small callers get large-batch throughput.

The queue is bounded (`max_queued_items`, items waiting for the worker): a request that would
overflow it is refused whole with `RESOURCE_EXHAUSTED` and `RetryInfo` (about the time the queue
takes to drain), so a flood cannot grow memory and latency without limit; what was admitted is
always answered.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from matcha.runtime.errors import ResourceExhausted

Item = TypeVar("Item")
Result = TypeVar("Result")

# Items one service process may hold waiting for its model, by default: 64 full batches of the default size.
DEFAULT_MAX_QUEUED_ITEMS = 4096
# Bounds of the wait a refused caller is told: the queue's estimated drain time, within these.
MIN_RETRY_SECONDS = 0.05
MAX_RETRY_SECONDS = 5.0


@dataclass
class _Pending(Generic[Item, Result]):
    items: Sequence[Item]
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        max_batch_size: int,
        max_wait_seconds: float,
        max_queued_items: int | None = None,
    ) -> None:
        """`max_queued_items` None: DEFAULT_MAX_QUEUED_ITEMS, or one full batch when batches are larger."""
        if max_queued_items is None:
            max_queued_items = max(DEFAULT_MAX_QUEUED_ITEMS, max_batch_size)
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_queued_items < max_batch_size:
            raise ValueError("max_queued_items must hold at least one full batch")
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_seconds
        self._max_queued = max_queued_items
        self._queue: asyncio.Queue[_Pending[Item, Result]] = asyncio.Queue()
        self._queued_items = 0
        # Moving average of the model's time per item, for the wait told to refused callers.
        self._seconds_per_item = 0.0
        self._worker: asyncio.Task | None = None

    @property
    def queued_items(self) -> int:
        return self._queued_items

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Returns one result per item, in order; refuses the whole request when the queue cannot take it
        (an empty queue takes any request, so a request larger than the bound is never refused forever)."""
        if not items:
            return []
        if self._queued_items and self._queued_items + len(items) > self._max_queued:
            raise ResourceExhausted(
                f"{self._queued_items} items are waiting for the model here, at most {self._max_queued} may",
                reason="BATCH_QUEUE_FULL",
                metadata={"queued_items": str(self._queued_items), "limit": str(self._max_queued)},
                retry_after_seconds=min(
                    MAX_RETRY_SECONDS, max(MIN_RETRY_SECONDS, self._queued_items * self._seconds_per_item)
                ),
            )
        self._ensure_worker()
        chunks: list[_Pending[Item, Result]] = [
            _Pending(items[start : start + self._max_batch_size])
            for start in range(0, len(items), self._max_batch_size)
        ]
        for chunk in chunks:
            self._queue.put_nowait(chunk)
        self._queued_items += len(items)
        results: list[Result] = []
        for chunk in chunks:
            results.extend(await chunk.future)
        return results

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        carried: _Pending[Item, Result] | None = None
        while True:
            batch = [carried or self._taken(await self._queue.get())]
            carried = None
            size = len(batch[0].items)
            deadline = time.monotonic() + self._max_wait
            while size < self._max_batch_size:
                try:
                    pending = self._taken(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        pending = self._taken(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                if size + len(pending.items) > self._max_batch_size:
                    carried = pending  # starts the next batch; chunks are never split
                    break
                batch.append(pending)
                size += len(pending.items)
            await self._run(batch)

    def _taken(self, pending: _Pending[Item, Result]) -> _Pending[Item, Result]:
        """A chunk leaves the queue (a carried chunk has left it already)."""
        self._queued_items -= len(pending.items)
        return pending

    async def _run(self, batch: list[_Pending[Item, Result]]) -> None:
        live = [pending for pending in batch if not pending.future.cancelled()]
        if not live:
            return
        flat = [item for pending in live for item in pending.items]
        started = time.monotonic()
        try:
            results = await self._run_batch(flat)
        except Exception as error:
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        per_item = (time.monotonic() - started) / len(flat)
        previous = self._seconds_per_item
        self._seconds_per_item = per_item if not previous else 0.8 * previous + 0.2 * per_item
        offset = 0
        for pending in live:
            count = len(pending.items)
            if not pending.future.done():
                pending.future.set_result(results[offset : offset + count])
            offset += count
