"""Dynamic micro-batching: concurrent small requests share one model batch.

Callers submit lists of items; a single worker packs queued items into batches
of at most `max_batch_size`, waiting at most `max_wait_seconds` for more once a
batch has started to fill. While the model is busy, new requests queue up and
ride the next batch, so many small callers get large-batch throughput.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


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
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_seconds
        self._queue: asyncio.Queue[_Pending[Item, Result]] = asyncio.Queue()
        self._worker: asyncio.Task | None = None

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Returns one result per item, in order."""
        if not items:
            return []
        self._ensure_worker()
        chunks = [
            _Pending(items[start : start + self._max_batch_size])
            for start in range(0, len(items), self._max_batch_size)
        ]
        for chunk in chunks:
            self._queue.put_nowait(chunk)
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
            batch = [carried or await self._queue.get()]
            carried = None
            size = len(batch[0].items)
            deadline = time.monotonic() + self._max_wait
            while size < self._max_batch_size:
                try:
                    pending = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        pending = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if size + len(pending.items) > self._max_batch_size:
                    carried = pending  # starts the next batch; chunks are never split
                    break
                batch.append(pending)
                size += len(pending.items)
            await self._run(batch)

    async def _run(self, batch: list[_Pending[Item, Result]]) -> None:
        live = [pending for pending in batch if not pending.future.cancelled()]
        if not live:
            return
        flat = [item for pending in live for item in pending.items]
        try:
            results = await self._run_batch(flat)
        except Exception as error:
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        offset = 0
        for pending in live:
            count = len(pending.items)
            if not pending.future.done():
                pending.future.set_result(results[offset : offset + count])
            offset += count
