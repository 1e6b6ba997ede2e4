"""Live fan-out of clusters' events inside one API process.

One Redis subscription per process (channel `<namespace>:events`, messages
"<cluster_id> <seq>") wakes a *feed* per cluster that someone here follows. The feed
reads the new rows from the database once, keeps the newest few already encoded as SSE
frames, and wakes every client of that cluster in this process; the clients copy the
frames from there. A client behind what the feed keeps (replaying from Last-Event-ID, or
too slow to keep up) reads the database itself, in bounded batches.

So the database cost of an event is one read per process, not one per client, and a slow
client holds a position, never a queue: nothing grows with what it has not read yet.
Redis only wakes (docs/ARCHITECTURE.md, invariant 1): a missed notification delays an event until the
feed's fallback poll, never drops it.

The same subscription serves the process's caches (`listen`): the cluster read cache
drops a cluster on each `hangar:events` message about it, the token cache drops revoked
tokens announced on `hangar:tokens`, and both clear whenever the subscription is
(re)established. `connected` is set only once Redis has confirmed the subscription, and
`epoch` moves on each (re)subscription, so a cache can tell whether it could have missed
a message since it read something (docs/read-path.md).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from fastapi.sse import format_sse_event
from redis.asyncio.client import PubSub
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ClusterEvent
from app.services import events as svc

log = logging.getLogger("hangar.api.hub")

FALLBACK_POLL_S = 2.0  # a missed notification delays an event by at most this
KEEP = 256  # frames a feed keeps in memory (the newest)
BATCH = 500  # most rows read from the database at once
SUBSCRIBE_TIMEOUT_S = 10.0  # for Redis to confirm a subscription


@dataclass(frozen=True, slots=True)
class Frame:
    """One event, encoded once as an SSE frame for every client."""

    seq: int
    data: bytes


def encode(event: ClusterEvent) -> Frame:
    return Frame(
        event.seq,
        format_sse_event(
            id=str(event.seq),
            event=event.type,
            data_str=json.dumps(event.data, separators=(",", ":")),
        ),
    )


class ClusterFeed:
    """The newest events of one cluster, shared by this process's clients of it.

    Holds every event with `base < seq <= high` (the database returns a cluster's
    committed events as a prefix, so reading `seq > high` never skips one)."""

    def __init__(
        self,
        cluster_id: uuid.UUID,
        sessionmaker: async_sessionmaker[AsyncSession],
        poll_s: float = FALLBACK_POLL_S,
        keep: int = KEEP,
    ) -> None:
        self.cluster_id = cluster_id
        self.followers: set[Follower] = set()
        self.frames: list[Frame] = []
        self.base = 0
        self.high: int | None = None  # None until the first read
        self.state: svc.StreamState | None = None  # as of the last read
        self.poll_s = poll_s  # fallback poll interval
        self._sessionmaker = sessionmaker
        self._keep = keep
        self._dirty = asyncio.Event()
        self._closed = False
        self.task = asyncio.create_task(self._run(), name=f"event-feed-{cluster_id}")

    @property
    def ready(self) -> bool:
        return self.high is not None

    def after(self, last: int, limit: int = BATCH) -> list[Frame] | None:
        """The kept frames after event `last` ([] when there are none yet), or None when
        `last` is older than what is kept (the caller reads the database)."""
        if self.high is None or last < self.base:
            return None
        i = bisect.bisect_right(self.frames, last, key=lambda f: f.seq)
        return self.frames[i : i + limit]

    def complete_at(self, last: int) -> bool:
        """A client that has sent every event up to `last` has sent the whole stream."""
        return self.state is not None and self.state.complete_at(last)

    def poke(self, seq: int | None = None) -> None:
        """Something may have been appended (up to `seq`): read soon."""
        if seq is None or self.high is None or seq > self.high:
            self._dirty.set()

    def close(self) -> None:
        """Stop after the read in flight, if any (never cancelled mid-query)."""
        self._closed = True
        self._dirty.set()

    def _wake_all(self) -> None:
        for follower in self.followers:
            follower.wake.set()

    async def _run(self) -> None:
        delay = 0.1
        while not self._closed:
            self._dirty.clear()
            try:
                more = await self._read()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: retry, clients just wait
                log.warning("reading events of cluster %s failed (%s); retrying",
                            self.cluster_id, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), delay)
                delay = min(delay * 2, 5.0)
                continue
            if self.state is not None and self.state.complete_at(self.high or 0):
                return  # finished and all read: nothing will follow
            if more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.poll_s)

    async def _read(self) -> bool:
        """One read; returns True when more rows are waiting."""
        async with self._sessionmaker() as session:
            # The state first: whatever was final then is among the rows read next.
            state = await svc.stream_state(session, self.cluster_id)
            if self.high is None:
                # Start with the newest `keep` events, so clients resuming near the end
                # (a reconnect storm after a restart) are served from memory.
                start, limit = max(state.last_seq - self._keep, 0), self._keep
            else:
                start, limit = self.high, BATCH
            rows = await svc.events_after(session, self.cluster_id, start, limit)
        if self.high is None:
            self.base = self.high = start
        changed = bool(rows) or self.state != state
        self.state = state
        if rows:
            self.frames.extend(encode(r) for r in rows)
            self.high = rows[-1].seq
            if len(self.frames) > self._keep:
                drop = len(self.frames) - self._keep
                self.base = self.frames[drop - 1].seq
                del self.frames[:drop]
        if changed:
            self._wake_all()
        return len(rows) == limit


@dataclass(eq=False, slots=True)
class Follower:
    """One client's handle on a feed: `wake` is set whenever the feed changed; `last` is
    the newest event id sent to the client (its position, for introspection)."""

    feed: ClusterFeed
    last: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    def __init__(
        self, redis_url: str, events_channel: str, *, poll_s: float = FALLBACK_POLL_S,
        keep: int = KEEP,
    ) -> None:
        self._url = redis_url
        self.events_channel = events_channel
        # Named, so `CLIENT LIST` shows which process holds which subscription.
        self.client_name = f"hangar-events-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.poll_s = poll_s
        self.keep = keep
        self._feeds: dict[str, ClusterFeed] = {}
        self._task: asyncio.Task | None = None
        self.connected = False  # subscribed to Redis right now (confirmed by the server)
        # Moves each time the subscription is (re)established: whatever was read while
        # the epoch stayed the same would have been told about every commit since.
        self.epoch = 0
        self._handlers: dict[str, list[Callable[[str], None]]] = {events_channel: []}
        self._on_subscribed: list[Callable[[], None]] = []

    @property
    def subscribers(self) -> int:
        """Clients following some cluster in this process."""
        return sum(len(f.followers) for f in self._feeds.values())

    @property
    def feeds(self) -> int:
        """Clusters followed in this process (each costs one task and `keep` frames)."""
        return len(self._feeds)

    def feed_of(self, cluster_id: uuid.UUID) -> ClusterFeed | None:
        return self._feeds.get(str(cluster_id))

    def positions(self, cluster_id: uuid.UUID) -> list[int]:
        """The last event id sent to each client following the cluster here."""
        feed = self.feed_of(cluster_id)
        return sorted(f.last for f in feed.followers) if feed else []

    def listen(self, channel: str, handler: Callable[[str], None],
               on_subscribed: Callable[[], None] | None = None) -> None:
        """Also call `handler(text)` for each message on `channel` (besides the event
        feeds' own use of `hangar:events`), and `on_subscribed()` each time the
        subscription is (re)established, before any message: what was published while it
        was down is lost, so caches clear there. Register before `start`."""
        self._handlers.setdefault(channel, []).append(handler)
        if on_subscribed is not None:
            self._on_subscribed.append(on_subscribed)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        tasks = [f.task for f in self._feeds.values()]
        if self._task:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._feeds.clear()
        self._task = None

    @contextlib.contextmanager
    def follow(
        self,
        cluster_id: uuid.UUID,
        sessionmaker: async_sessionmaker[AsyncSession],
        last: int = 0,
    ) -> Iterator[Follower]:
        """Follow a cluster's events (from after `last`) until exit; the feed goes with
        its last follower."""
        key = str(cluster_id)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = ClusterFeed(cluster_id, sessionmaker, self.poll_s,
                                                  self.keep)
        follower = Follower(feed, last)
        feed.followers.add(follower)
        try:
            yield follower
        finally:
            feed.followers.discard(follower)
            if not feed.followers and self._feeds.get(key) is feed:
                del self._feeds[key]
                feed.close()

    def _notified(self, text: str) -> None:
        cluster_id, _, seq = text.partition(" ")
        feed = self._feeds.get(cluster_id)
        if feed is not None:
            feed.poke(int(seq) if seq.isdigit() else None)

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        text = data.decode() if isinstance(data, bytes) else str(data)
        if name == self.events_channel:
            self._notified(text)
        for handler in self._handlers.get(name, ()):
            try:
                handler(text)
            except Exception:  # one bad listener must not end the subscription
                log.exception("handler of a %s message failed", name)

    async def _subscribe(self, pubsub: PubSub) -> None:
        """Subscribe and wait for the server's confirmation of every channel: only from
        then on is every publication delivered here."""
        channels = list(self._handlers)
        await pubsub.subscribe(*channels)
        pending = set(channels)
        deadline = asyncio.get_running_loop().time() + SUBSCRIBE_TIMEOUT_S
        while pending:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"Redis did not confirm the subscription to {pending}")
            msg = await pubsub.get_message(timeout=left)
            if msg is None:
                continue
            channel = msg.get("channel")
            name = channel.decode() if isinstance(channel, bytes) else str(channel)
            if msg.get("type") == "subscribe":
                pending.discard(name)
            elif msg.get("type") == "message":
                self._dispatch(name, msg["data"])

    async def _run(self) -> None:
        delay = 0.1
        while True:
            client = aioredis.from_url(self._url, health_check_interval=30,
                                       socket_keepalive=True, client_name=self.client_name)
            try:
                async with client.pubsub() as pubsub:
                    await self._subscribe(pubsub)
                    self.epoch += 1
                    self.connected, delay = True, 0.1
                    # Something may have been missed while unsubscribed: caches clear,
                    # every feed reads.
                    for hook in self._on_subscribed:
                        hook()
                    for feed in list(self._feeds.values()):
                        feed.poke()
                    while True:
                        # A timeout, so the connection's health check runs when idle.
                        msg = await pubsub.get_message(timeout=5.0)
                        if msg is not None and msg.get("type") == "message":
                            self._dispatch(msg["channel"], msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarts: resubscribe with backoff
                log.warning("event subscription lost (%s); resubscribing", exc)
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.connected = False
                await client.aclose()
