"""Runs the watches inside the service: one owner per watch across replicas, by lease.

Every `lease_seconds / 3` (and when a watch is created here) the scheduler renews its leases and takes the
watches whose lease is free or expired. For each watch it holds, one task analyses posts as they arrive,
closes each window when it ends (plus the watch's grace), and polls the drop folders and feeds, each
source in its own task so that a slow or failing one delays neither the others nor the windows. A replica
that stops releases its leases; one that dies loses them when they expire, and another takes over at the
next window to close (its writes are fenced by the lease). Webhooks are delivered by a separate loop, with
retries and backoff, so a slow receiver never holds a window.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from matcha.classification.listening import Alert, ListeningCore, alert_from_row
from matcha.classification.watch_sources import (
    SourceError,
    fetch_feed,
    mark_processed,
    parse_feed,
    read_drop_file,
    ready_files,
)
from matcha.classification.watch_store import LeaseLost, WatchRow, wait_quietly
from matcha.runtime.egress import guarded_client
from matcha.runtime.governance import DataClass
from matcha.runtime.retry import Backoff

logger = logging.getLogger(__name__)
# How often an owned watch analyses the posts that arrived (so that little is left when its window closes).
ANALYSIS_INTERVAL_SECONDS = 0.5


class WatchScheduler:
    def __init__(
        self,
        core: ListeningCore,
        *,
        lease_seconds: float = 15.0,
        webhook_attempts: int = 6,
        webhook_backoff_seconds: float = 1.0,
        webhook_timeout_seconds: float = 5.0,
        render_alert: Callable[[Alert], dict] | None = None,
    ) -> None:
        self._core = core
        self._store = core.store
        self.owner = f"classification-{uuid.uuid4().hex[:12]}"
        self._lease = lease_seconds
        # Feeds and webhooks are destinations a tenant chose: only where the egress policy allows.
        self._http = guarded_client(core.egress, timeout_seconds=webhook_timeout_seconds)
        self._attempts = webhook_attempts
        # Doubling from the first wait, without jitter or bound: the number of attempts bounds it.
        self._backoff = Backoff(webhook_backoff_seconds, max_seconds=math.inf)
        self._render = render_alert
        self._watches: dict[tuple[str, str], tuple[WatchRow, asyncio.Task]] = {}
        self._wake = asyncio.Event()
        self.deliveries_ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def wake(self) -> None:
        """Claim now (a watch was created here)."""
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="claim watches"),
            asyncio.create_task(self._delivery_loop(), name="deliver webhooks"),
        ]

    async def stop(self) -> None:
        for task in self._tasks + [task for _, task in self._watches.values()]:
            task.cancel()
        for task in self._tasks + [task for _, task in self._watches.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watches.clear()
        with contextlib.suppress(Exception):
            await self._store.release(self.owner)
        await self._http.aclose()

    # -- ownership --------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            try:
                held = {(row.tenant, row.name): row for row in await self._store.claim(self.owner, self._lease)}
            except Exception:
                logger.exception("claiming watches failed")
                held = None
            if held is not None:
                for key in list(self._watches):
                    if key not in held:  # deleted, or taken over after our lease expired
                        self._watches.pop(key)[1].cancel()
                for key, row in held.items():
                    if key not in self._watches or self._watches[key][1].done():
                        task = asyncio.create_task(self._run_watch(row), name=f"watch {row.name}")
                        self._watches[key] = (row, task)
            self._wake.clear()
            await wait_quietly(self._wake, self._lease / 3)

    async def _run_watch(self, watch: WatchRow) -> None:
        pollers = [
            asyncio.create_task(self._poll(watch, source), name=f"poll {watch.name}/{source['name']}")
            for source in watch.sources
            if source["kind"] != "push"
        ]
        try:
            await self._windows(watch)
        except LeaseLost:
            logger.info("watch taken over", extra={"watch": watch.name})
        finally:
            for poller in pollers:
                poller.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)

    async def _windows(self, watch: WatchRow) -> None:
        grace = timedelta(seconds=watch.grace_seconds)
        window = timedelta(seconds=watch.window_seconds)
        while True:
            now = datetime.now(UTC)
            due = watch.next_window_end + grace
            if now >= due:
                # Far behind (the service was down): the windows no report can still see are skipped.
                oldest_useful = now - grace - window * watch.look_back_windows
                if watch.next_window_end < oldest_useful:
                    skipped = (oldest_useful - watch.next_window_end) // window
                    watch = await self._skip(watch, skipped)
                    continue
                try:
                    _, sequences = await self._core.close_window(watch, self.owner)
                except LeaseLost:
                    raise
                except Exception:
                    logger.exception("closing a window failed", extra={"watch": watch.name})
                    await asyncio.sleep(1.0)
                    continue
                if sequences and watch.webhook_url:
                    self.deliveries_ready.set()
                watch = _moved(watch, watch.next_window_end + window)
                continue
            try:
                await self._core.analyse_pending(watch, now + timedelta(days=1))
            except Exception:
                logger.exception("analysing posts failed", extra={"watch": watch.name})
            wait = (due - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(0.0, min(wait, ANALYSIS_INTERVAL_SECONDS)))

    async def _skip(self, watch: WatchRow, windows: int) -> WatchRow:
        moved = watch.next_window_end + timedelta(seconds=watch.window_seconds) * windows
        await self._store.skip_windows(watch, self.owner, moved)
        logger.warning("windows skipped", extra={"watch": watch.name, "windows": windows})
        return replace(watch, next_window_end=moved)

    # -- sources ----------------------------------------------------------------------------------

    async def _poll(self, watch: WatchRow, source: dict) -> None:
        sizes: dict[str, int] = {}
        while True:
            try:
                if source["kind"] == "drop_folder":
                    await self._read_folder(watch, source, sizes)
                else:
                    await self._read_feed(watch, source)
            except SourceError as error:
                await self._store.count_source(watch.tenant, watch.name, source["name"], error=str(error))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.exception("reading a source failed", extra={"watch": watch.name, "source": source["name"]})
                await self._store.count_source(
                    watch.tenant, watch.name, source["name"], error=f"internal error: {type(error).__name__}"
                )
            await asyncio.sleep(source["poll_seconds"])

    async def _read_folder(self, watch: WatchRow, source: dict, sizes: dict[str, int]) -> None:
        if not self._core.drop_folder_allowed(source["path"]):
            raise SourceError(f"{source['path']} is not under a folder the service allows")
        try:
            files = await asyncio.to_thread(ready_files, source["path"], sizes)
        except OSError as error:
            raise SourceError(f"cannot read {source['path']}: {error.strerror or type(error).__name__}") from None
        rejected, reason = 0, ""
        for file in files:
            records = await asyncio.to_thread(read_drop_file, file)
            _, _, file_rejected, file_reason = await self._core.ingest_records(
                watch, source["name"], records, watch.data_class
            )
            rejected += file_rejected
            reason = file_reason or reason
            await asyncio.to_thread(mark_processed, file)
        await self._store.count_source(
            watch.tenant, watch.name, source["name"], rejected=rejected, last_rejection=reason
        )

    async def _read_feed(self, watch: WatchRow, source: dict) -> None:
        rows = await self._store.sources(watch.tenant, watch.name)
        cursor = next((row.cursor for row in rows if row.source == source["name"]), {})
        body, following = await fetch_feed(self._http, source["url"], cursor)
        rejected, reason = 0, ""
        if body is not None:
            records = parse_feed(body, source["name"])
            # A feed keeps its older items: those past the look-back are skipped, not rejected, each time.
            _, _, rejected, reason = await self._core.ingest_records(
                watch, source["name"], records, DataClass.PUBLIC, skip_old=True
            )
        await self._store.count_source(
            watch.tenant, watch.name, source["name"], rejected=rejected, last_rejection=reason, cursor=following
        )

    # -- webhooks ---------------------------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        while True:
            self.deliveries_ready.clear()
            try:
                claimed = await self._store.claim_deliveries(self.owner, hold_seconds=60.0)
            except Exception:
                logger.exception("claiming webhook deliveries failed")
                claimed = []
            if claimed:
                await asyncio.gather(*(self._deliver(row) for row in claimed))
                continue
            await wait_quietly(self.deliveries_ready, 1.0)

    async def _deliver(self, row) -> None:
        alert = alert_from_row(row)
        body = self._render(alert) if self._render else {"sequence": alert.sequence, "summary": alert.summary}
        content = json.dumps(body, ensure_ascii=False).encode()
        watch = await self._store.get(row.tenant, row.watch)
        if watch is None:
            return  # deleted meanwhile, its alerts with it
        signature = hmac.new(self._core.webhook_secret(watch).encode(), content, hashlib.sha256).hexdigest()
        error = ""
        try:
            response = await self._http.post(
                row.webhook_url,
                content=content,
                headers={
                    "content-type": "application/json",
                    "x-matcha-alert-sequence": str(alert.sequence),
                    "x-matcha-watch": alert.watch,
                    "x-matcha-signature": f"sha256={signature}",
                },
            )
            delivered = 200 <= response.status_code < 300
            if not delivered:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as failure:
            delivered, error = False, f"{type(failure).__name__}"
        attempts = row.webhook_attempts + 1
        retry_in = None if delivered or attempts >= self._attempts else self._backoff.ceiling(attempts)
        await self._store.record_delivery(row.sequence, delivered=delivered, error=error, retry_in=retry_in)


def _moved(watch: WatchRow, next_end: datetime) -> WatchRow:
    return replace(watch, next_window_end=next_end, report_count=watch.report_count + 1)
