"""A per-process cache of clusters' rows for `GET /clusters/{id}` (see docs/read-path.md).

It holds what the database returned (the cluster's columns and its nodes), never a
response: prices are computed from it at response time. Entries are dropped when a
commit is announced on `hangar:events` ("<cluster_id> <seq>", received by the process's
EventHub); any message naming a cluster invalidates it, one naming none clears all.

Staleness is bounded three ways:
- an entry is used only while the hub's subscription is up and has been up since before
  the entry's read began (the hub's `epoch` did not change), and the whole cache is
  cleared when the subscription is (re)established: whatever was announced while it was
  down cannot be missed;
- a read that raced with an invalidation of the same cluster (a generation counter taken
  before the query moved) is not stored, so a read that saw the old row cannot outlive
  the notification of the new one;
- an entry is at most `max_age_s` old, counted from before its query: a notification
  lost on the way (or a commit that announced nothing) makes a read at most that stale.
The same process's DELETE invalidates the entry before it answers (read-your-writes).

Concurrent misses of one cluster share one read (`get_or_load`), so an expiry under load
costs one query, not one per waiting request; an invalidation detaches the read under
way, so a request that arrives after it starts a read of its own.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from app.api.readpath import EncodedCluster
from app.api.singleflight import SingleFlight

MAX_ENTRIES = 10_000
_BUCKETS = 4096  # invalidation generations, by cluster id hash (bounded memory)


class Subscription(Protocol):
    """What the cache needs of the EventHub: whether its Redis subscription is up, and a
    counter that moves each time it is (re)established."""

    connected: bool
    epoch: int


@dataclass(frozen=True, slots=True)
class Ticket:
    """Taken before a read; the read may be stored only if nothing moved since."""

    epoch: int
    generation: int
    clears: int
    started: float


@dataclass(frozen=True, slots=True)
class _Entry:
    row: EncodedCluster
    epoch: int
    read_at: float  # monotonic time the read began


class ClusterReadCache:
    def __init__(self, subscription: Subscription, max_age_s: float,
                 max_entries: int = MAX_ENTRIES) -> None:
        self._sub = subscription
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self._flights: SingleFlight[uuid.UUID, EncodedCluster | None] = SingleFlight()
        self._generations = [0] * _BUCKETS
        self._clears = 0
        self.hits = 0
        self.misses = 0
        self.exported: dict[str, int] = {}  # hits/misses already counted in /metrics

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, cluster_id: uuid.UUID) -> EncodedCluster | None:
        entry = self._entries.get(cluster_id)
        if entry is None:
            self.misses += 1
            return None
        if (not self._sub.connected or entry.epoch != self._sub.epoch
                or time.monotonic() - entry.read_at > self.max_age_s):
            del self._entries[cluster_id]
            self.misses += 1
            return None
        self._entries.move_to_end(cluster_id)
        self.hits += 1
        return entry.row

    async def get_or_load(
        self, cluster_id: uuid.UUID, load: Callable[[], Awaitable[EncodedCluster | None]]
    ) -> EncodedCluster | None:
        """The cached rows, or those of a read under way for the same cluster, or
        `load()`'s (stored when nothing invalidated them meanwhile)."""
        row = self.get(cluster_id)
        if row is not None:
            return row
        ticket = None
        if not self._flights.running(cluster_id):
            ticket = self.ticket(cluster_id)  # before the query: see `put`
            if ticket is None:  # cache off or subscription down: a read of its own
                return await load()
        return await self._flights.run(cluster_id, partial(self._load, cluster_id, ticket, load))

    async def _load(self, cluster_id: uuid.UUID, ticket: Ticket | None,
                    load: Callable[[], Awaitable[EncodedCluster | None]]) -> EncodedCluster | None:
        row = await load()
        if row is not None:
            self.put(cluster_id, ticket, row)
        return row

    async def get_page(
        self, wanted: Sequence[tuple[uuid.UUID, str]],
        load: Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, EncodedCluster]]],
    ) -> list[EncodedCluster]:
        """The clusters of a `GET /clusters` page, in order: (id, status) as the page's
        query saw them. A cached entry serves only if its status is that one (a page
        filtered by status never shows one it excludes); the others are read with one
        `load(ids)` and stored when nothing invalidated them meanwhile. A cluster that
        `load` no longer finds is left out."""
        found: dict[uuid.UUID, EncodedCluster] = {}
        tickets: dict[uuid.UUID, Ticket | None] = {}
        for cluster_id, status in wanted:
            row = self.get(cluster_id)
            if row is not None and row.status == status:
                found[cluster_id] = row
                continue
            if row is not None:  # older (or newer) than the page's query: read again
                self.invalidate(cluster_id)
            tickets[cluster_id] = self.ticket(cluster_id)  # before the query: see `put`
        if tickets:
            for cluster_id, row in (await load(list(tickets))).items():
                self.put(cluster_id, tickets.get(cluster_id), row)
                found[cluster_id] = row
        return [found[cid] for cid, _ in wanted if cid in found]

    def ticket(self, cluster_id: uuid.UUID) -> Ticket | None:
        """Call before reading the cluster; None when the read cannot be stored."""
        if not self.enabled or not self._sub.connected:
            return None
        return Ticket(self._sub.epoch, self._generations[hash(cluster_id) % _BUCKETS],
                      self._clears, time.monotonic())

    def put(self, cluster_id: uuid.UUID, ticket: Ticket | None, row: EncodedCluster) -> bool:
        """Store a read begun with `ticket`, unless something invalidated it meanwhile."""
        if (ticket is None or not self._sub.connected or ticket.epoch != self._sub.epoch
                or ticket.clears != self._clears
                or ticket.generation != self._generations[hash(cluster_id) % _BUCKETS]):
            return False
        self._entries[cluster_id] = _Entry(row, ticket.epoch, ticket.started)
        self._entries.move_to_end(cluster_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return True

    def invalidate(self, cluster_id: uuid.UUID) -> None:
        self._generations[hash(cluster_id) % _BUCKETS] += 1
        self._entries.pop(cluster_id, None)
        self._flights.forget(cluster_id)

    def clear(self) -> None:
        self._clears += 1
        self._entries.clear()
        self._flights.clear()

    def on_message(self, text: str) -> None:
        """A message on `hangar:events`: "<cluster_id>[ <anything>]" invalidates that
        cluster; a message that names none clears everything (it may be about any)."""
        head = text.partition(" ")[0]
        try:
            cluster_id = uuid.UUID(head)
        except ValueError:
            self.clear()
            return
        self.invalidate(cluster_id)
