"""Live fan-out of new-event notifications: one Redis subscription per API process, shared
in memory by every SSE client of that process. Notifications carry only the cluster id and
the newest seq; clients read the rows from the database, so a missed notification delays
an event (until the client's fallback poll) but never drops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

import redis.asyncio as aioredis

from app.services.dispatch import EVENTS_CHANNEL

log = logging.getLogger("hangar.api.hub")


class EventHub:
    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task | None = None

    @property
    def subscribers(self) -> int:
        return sum(len(v) for v in self._waiters.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def subscribe(self, cluster_id: str) -> Iterator[asyncio.Event]:
        """An Event set whenever the cluster may have new events; released on exit."""
        ev = asyncio.Event()
        self._waiters[cluster_id].add(ev)
        try:
            yield ev
        finally:
            waiters = self._waiters.get(cluster_id)
            if waiters is not None:
                waiters.discard(ev)
                if not waiters:
                    self._waiters.pop(cluster_id, None)

    def _wake(self, cluster_id: str) -> None:
        for ev in self._waiters.get(cluster_id, ()):
            ev.set()

    async def _run(self) -> None:
        delay = 0.1
        while True:
            client = aioredis.from_url(self._url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(EVENTS_CHANNEL)
                    delay = 0.1
                    # Wake everyone after (re)subscribing: something may have been missed.
                    for cid in list(self._waiters):
                        self._wake(cid)
                    async for msg in pubsub.listen():
                        if msg.get("type") != "message":
                            continue
                        data = msg["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        self._wake(text.split(" ", 1)[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarts: resubscribe with backoff
                log.warning("event subscription lost (%s); resubscribing", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await client.aclose()
