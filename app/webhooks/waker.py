"""Turning committed events into delivery work, in each worker process.

Every commit that appends events is announced on `hangar:events` ("<cluster_id> <seq>",
app/services/dispatch.py). The waker subscribes to it and wakes the endpoints that have a
cursor on that cluster: a run of that endpoint in this process is poked, otherwise its job
is enqueued (`schedule.enqueue`, one per endpoint and tick). Redis only wakes: a message that
never arrives delays a delivery until the sweep (`cron.sweep`, every few seconds) finds
the endpoint's pending events in the rows; nothing is lost.

Costs nothing for clusters of teams without endpoints beyond one cached lookup per cluster
(and nothing at all while no endpoint exists anywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import driver_connection
from app.redis_names import RedisNames
from app.webhooks.engine import Deliverer
from app.webhooks.schedule import TICK_S

log = logging.getLogger("hangar.webhooks.waker")

CACHE_S = 30.0  # a cluster's endpoints are looked up again after this (or on a change)
CACHE_MAX = 20_000
ANY_REFRESH_S = 5.0

_ENDPOINTS_OF_CLUSTER = """
SELECT w.endpoint_id FROM webhook_cursors w
JOIN webhook_endpoints e ON e.id = w.endpoint_id
WHERE w.cluster_id = $1 AND e.disabled_at IS NULL
"""
_ANY = "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE disabled_at IS NULL)"


class Waker:
    def __init__(self, redis_url: str, names: RedisNames, engine: AsyncEngine,
                 deliverer: Deliverer) -> None:
        self._url = redis_url
        self._names = names
        self._engine = engine
        self._deliverer = deliverer
        # cluster id -> (endpoint ids, looked up at, newest seq seen)
        self._cache: OrderedDict[str, tuple[tuple[uuid.UUID, ...], float, int]] = OrderedDict()
        self._any = True
        self._any_at = 0.0
        self._woken: dict[uuid.UUID, int] = {}  # endpoint -> tick of its last wake-up here
        self._task: asyncio.Task | None = None
        self.connected = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-waker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def changed(self) -> None:
        """Endpoints were created, deleted or disabled: look everything up again."""
        self._cache.clear()
        self._any_at = 0.0

    async def _run(self) -> None:
        delay = 0.1
        while True:
            client = aioredis.from_url(self._url, health_check_interval=30,
                                       socket_keepalive=True)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self._names.events, self._names.webhooks)
                    self.changed()  # whatever was announced while unsubscribed: the sweep
                    self.connected, delay = True, 0.1
                    while True:
                        msg = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=5.0)
                        if msg is None or msg.get("type") != "message":
                            continue
                        channel = msg["channel"]
                        channel = channel.decode() if isinstance(channel, bytes) else channel
                        data = msg["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        try:
                            if channel == self._names.webhooks:
                                self.changed()
                            else:
                                await self._on_event(text)
                        except Exception as exc:  # one bad message must not end it
                            log.warning("webhook wake-up failed (%s: %s)", type(exc).__name__,
                                        exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarts: resubscribe with backoff
                log.warning("webhook waker lost its subscription (%s); resubscribing",
                            type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.connected = False
                await client.aclose()

    async def _on_event(self, text: str) -> None:
        cluster, _, seq_text = text.partition(" ")
        seq = int(seq_text) if seq_text.isdigit() else 0
        now = time.monotonic()
        if now - self._any_at > ANY_REFRESH_S:
            async with driver_connection(self._engine) as conn:
                self._any = bool(await conn.fetchval(_ANY))
            self._any_at = now
        if not self._any:
            return
        entry = self._cache.get(cluster)
        if entry is not None and now - entry[1] < CACHE_S:
            endpoints, looked_up, newest = entry
            if seq and seq <= newest:
                return  # announced again without a new event (a pod id recorded, say)
            self._cache[cluster] = (endpoints, looked_up, max(seq, newest))
        else:
            try:
                cluster_id = uuid.UUID(cluster)
            except ValueError:
                return
            async with driver_connection(self._engine) as conn:
                rows = await conn.fetch(_ENDPOINTS_OF_CLUSTER, cluster_id)
            endpoints = tuple(r[0] for r in rows)
            self._cache[cluster] = (endpoints, now, seq)
            self._cache.move_to_end(cluster)
            while len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        tick = int(time.time() / TICK_S)
        for endpoint_id in endpoints:
            run = self._deliverer.runs.get(endpoint_id)
            if run is None and self._woken.get(endpoint_id) == tick:
                continue  # this tick's job is enqueued already
            self._woken[endpoint_id] = tick
            await self._deliverer.wake(endpoint_id)
