"""Which replica counts which customers: 1,024 slots by a stable hash of the customer id, leased in PostgreSQL.

The live condition counters of a customer must live in one process, or two replicas would each count part of
its events. With one replica (no `MATCHA_SEGMENTATION_REPLICA_ENDPOINT`) it owns every slot and nothing here
touches the database. With several, each heartbeats in `segmentation_replicas`, renews the leases of its
slots, and takes or gives back slots until it holds its fair share of the replicas alive. A replica that
receives events of a slot it does not own applies them on the owner (`ApplyEvents`, with the caller's token).

Exactly once across a move: a store of events locks its slots' rows (FOR SHARE) in its own transaction and
checks they are still its own, so a slot changes hands only between two stores; the new owner then reads its
counters from a snapshot taken after the move, which holds every event the previous owner stored. A slot
given back is not claimable before `_HANDOVER_SECONDS` pass, time for the previous owner to write the
segment changes it decided.
"""

import asyncio
import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from matcha.runtime.channels import ChannelPool
from matcha.runtime.errors import FailedPrecondition, Unavailable

logger = logging.getLogger(__name__)

SLOTS = 1024
ALL_SLOTS = frozenset(range(SLOTS))
SLOT_MOVED = "SLOT_MOVED"
# A slot given back waits this long before another replica may claim it.
_HANDOVER_SECONDS = 2.0
# How long a message waits for a slot without an owner (during a move) before UNAVAILABLE.
_OWNERLESS_WAIT_SECONDS = 10.0

T = TypeVar("T")


def slot_of(customer_id: str) -> int:
    """The customer's slot: the first two bytes of the id's MD5, modulo 1024 (the customers table's
    generated `slot` column computes the same)."""
    digest = hashlib.md5(customer_id.encode(), usedforsecurity=False).digest()
    return (digest[0] * 256 + digest[1]) % SLOTS


class SlotMoved(FailedPrecondition):
    def __init__(self, slots: Iterable[int]) -> None:
        moved = sorted(slots)
        super().__init__(
            f"{len(moved)} slot(s) are not this replica's: read the owners again",
            reason=SLOT_MOVED,
            metadata={"slots": ",".join(map(str, moved[:20]))},
        )


class Partitions:
    """This replica's share of the slots and where the others are; one per process."""

    def __init__(
        self,
        database,
        *,
        replica: str = "",
        address: str = "",
        lease_seconds: float = 15.0,
        channels: ChannelPool | None = None,
    ) -> None:
        self._database = database
        self.replica = replica
        self.address = address
        self.partitioned = bool(address)
        self._lease = lease_seconds
        self._channels = channels or ChannelPool()
        self.owned: frozenset[int] = ALL_SLOTS if not self.partitioned else frozenset()
        # slot -> the owner's address, as last read; refreshed each cycle and when an owner says a slot moved.
        self._addresses: dict[int, str] = {}
        self._listeners: list[Callable[[frozenset[int], frozenset[int]], Awaitable[None]]] = []
        self._task: asyncio.Task | None = None
        self._cycle_lock = asyncio.Lock()

    @property
    def cycle_seconds(self) -> float:
        return self._lease / 3

    def on_change(self, listener: Callable[[frozenset[int], frozenset[int]], Awaitable[None]]) -> None:
        """`listener(previous, now)` runs after the owned slots changed, before the next cycle."""
        self._listeners.append(listener)

    async def start(self) -> None:
        if not self.partitioned:
            return
        await self.cycle()
        self._task = asyncio.create_task(self._cycle_forever())

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        # Give the slots back at once, so that the others take them after the handover, not the lease.
        try:
            await self._database.pool.execute(
                """UPDATE segmentation_slot_owners
                   SET replica = NULL, lease_until = now() + $2 * interval '1 second' WHERE replica = $1""",
                self.replica,
                _HANDOVER_SECONDS,
            )
            await self._database.pool.execute("DELETE FROM segmentation_replicas WHERE replica = $1", self.replica)
        except Exception:  # the leases expire anyway
            logger.warning("slots not given back at shutdown", exc_info=True)
        await self._channels.close()

    async def _cycle_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cycle_seconds)
            try:
                await self.cycle()
            except Exception:
                logger.exception("slot lease cycle failed")

    async def cycle(self) -> None:
        """Heartbeat, renew, then give back a surplus or claim a shortfall of the fair share."""
        async with self._cycle_lock, self._database.pool.acquire() as connection:
            await connection.execute(
                """INSERT INTO segmentation_replicas (replica, address, seen_at) VALUES ($1, $2, now())
                   ON CONFLICT (replica) DO UPDATE SET address = $2, seen_at = now()""",
                self.replica,
                self.address,
            )
            rows = await connection.fetch(
                """UPDATE segmentation_slot_owners SET lease_until = now() + $2 * interval '1 second', address = $3
                   WHERE replica = $1 RETURNING slot""",
                self.replica,
                self._lease,
                self.address,
            )
            held = {row[0] for row in rows}
            alive = await connection.fetchval(
                "SELECT count(*) FROM segmentation_replicas WHERE seen_at > now() - $1 * interval '1 second'",
                self._lease,
            )
            share = math.ceil(SLOTS / max(alive, 1))
            if len(held) > share:
                surplus = sorted(held)[share:]
                await connection.execute(
                    """UPDATE segmentation_slot_owners
                       SET replica = NULL, lease_until = now() + $3 * interval '1 second'
                       WHERE slot = ANY($2::int2[]) AND replica = $1""",
                    self.replica,
                    surplus,
                    _HANDOVER_SECONDS,
                )
                held.difference_update(surplus)
            elif len(held) < share:
                rows = await connection.fetch(
                    """UPDATE segmentation_slot_owners o
                       SET replica = $1, address = $2, epoch = o.epoch + 1,
                           lease_until = now() + $3 * interval '1 second'
                       FROM (SELECT slot FROM segmentation_slot_owners WHERE lease_until < now()
                             ORDER BY slot LIMIT $4 FOR UPDATE SKIP LOCKED) free
                       WHERE o.slot = free.slot RETURNING o.slot""",
                    self.replica,
                    self.address,
                    self._lease,
                    share - len(held),
                )
                held.update(row[0] for row in rows)
            await self._read_addresses(connection)
        owned = frozenset(held)
        if owned != self.owned:
            previous, self.owned = self.owned, owned
            logger.info("segmentation replica %s owns %d slots (was %d)", self.replica, len(owned), len(previous))
            for listener in self._listeners:
                await listener(previous, owned)

    async def _read_addresses(self, connection=None) -> None:
        rows = await (connection or self._database.pool).fetch(
            "SELECT slot, address FROM segmentation_slot_owners WHERE replica IS NOT NULL AND lease_until > now()"
        )
        self._addresses = {row[0]: row[1] for row in rows}

    # --- the event path ----------------------------------------------------------------------------

    async def fence(self, connection, slots: Iterable[int]) -> None:
        """In a store's transaction: locks the slots' rows until it ends and checks this replica owns them."""
        if not self.partitioned:
            return
        wanted = sorted(set(slots))
        owned = await connection.fetch(
            """SELECT slot FROM segmentation_slot_owners WHERE slot = ANY($1::int2[]) AND replica = $2
               ORDER BY slot FOR SHARE""",
            wanted,
            self.replica,
        )
        if len(owned) != len(wanted):
            raise SlotMoved(set(wanted) - {row[0] for row in owned})

    async def split(self, items: Sequence[T], customer_of: Callable[[T], str]) -> dict[str, list[int]]:
        """Positions of `items` by the address of their customer's owner ('' for this replica); waits for
        slots being moved to have an owner."""
        deadline = asyncio.get_running_loop().time() + _OWNERLESS_WAIT_SECONDS
        while True:
            groups: dict[str, list[int]] = defaultdict(list)
            ownerless = False
            for position, item in enumerate(items):
                slot = slot_of(customer_of(item))
                if slot in self.owned:
                    groups[""].append(position)
                    continue
                address = self._addresses.get(slot)
                if address is None or address == self.address:
                    ownerless = True
                    break
                groups[address].append(position)
            if not ownerless:
                return dict(groups)
            if asyncio.get_running_loop().time() > deadline:
                raise Unavailable("a slot has no owner: a replica is starting or stopping", retry_after_seconds=1.0)
            await asyncio.sleep(0.2)
            await self.refresh()

    async def refresh(self) -> None:
        """Reads the owners again (an owner said a slot moved)."""
        if self.partitioned:
            await self._read_addresses()

    def method(self, address: str, path: str, request_serializer, response_deserializer):
        return self._channels.method(address, path, request_serializer, response_deserializer)
