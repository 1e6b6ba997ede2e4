"""Waking workers and subscribers after a commit. Redis only wakes; rows are the truth.

Every call is best effort: with Redis away, a wake-up or an announcement is dropped (one
warning per outage, `app.outages.REDIS`) and the caller goes on. What was committed stands:
a node's deadline (`next_check_at`) is in its row, and the reconciler re-enqueues overdue
nodes (docs/PIPELINE.md, "When Redis or Postgres is away")."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

from app.outages import REDIS, redis_unavailable
from app.redis_names import RedisNames

if TYPE_CHECKING:
    from app.services.state import ClusterTx

# Readiness polls run on this grid: at most one `poll_starting` job per tick (its job id).
POLL_TICK_S = 0.5


class Dispatcher:
    """Enqueues arq jobs and announces new events. A lost message only delays work:
    the reconciler re-enqueues whatever the rows say is overdue."""

    def __init__(self, redis: ArqRedis, names: RedisNames | None = None,
                 poll_tick_s: float = POLL_TICK_S) -> None:
        self.redis = redis
        self.names = names or RedisNames()
        self.poll_tick_s = poll_tick_s
        # Nodes whose lease a job of this process holds -> the earliest wake-up asked for
        # meanwhile (monotonic time), sent when the job lets the node go (`release`).
        self._held: dict[uuid.UUID, float | None] = {}

    async def node(self, node_id: uuid.UUID, delay: float = 0.0) -> None:
        """Run `node_step` for this node in `delay` seconds. While a job of this process
        holds the node's lease, the wake-up waits for `release`: sent now, the job it
        starts would only find the lease taken and retry later."""
        if node_id in self._held:
            due = time.monotonic() + max(delay, 0)
            earlier = self._held[node_id]
            self._held[node_id] = due if earlier is None else min(earlier, due)
            return
        await _best_effort(self.redis.enqueue_job(
            "node_step", str(node_id), _defer_by=max(delay, 0) or None,
            _queue_name=self.names.queue))

    def hold(self, node_id: uuid.UUID) -> None:
        """A job of this process took the node's lease."""
        self._held[node_id] = None

    async def release(self, node_id: uuid.UUID) -> None:
        """The job let the node's lease go: send the wake-up asked for meanwhile, if any."""
        due = self._held.pop(node_id, None)
        if due is not None:
            await self.node(node_id, due - time.monotonic())

    async def recover(self, node_id: uuid.UUID, due: datetime,
                      lease_until: datetime | None) -> None:
        """The reconciler's job for an overdue node, under an id of the node's deadline and
        lapsed lease as the reconciler saw them: a backlog that keeps the node overdue does
        not pile up copies of its job (same row, same id), and a job that a killed worker
        left "in progress" (arq keeps it so for the longest job timeout plus 10 s) does not
        hold the node back once its lease lapsed (the killed job took the lease: a new
        `lease_until`, a new id)."""
        await _best_effort(self.redis.enqueue_job(
            "node_step", str(node_id),
            _job_id=self.names.job_id("recover", node_id, _ms(due), _ms(lease_until)),
            _queue_name=self.names.queue))

    async def catch_up(self, node_id: uuid.UUID, due: datetime, delay: float) -> None:
        """After an outage: the node's job at its deadline `due`, under an id of that node and
        deadline (workers catching up together send it once; a `recover` job stuck as "in
        progress" by a worker killed meanwhile does not block it)."""
        await _best_effort(self.redis.enqueue_job(
            "node_step", str(node_id),
            _job_id=self.names.job_id("catch-up", node_id, _ms(due)),
            _defer_by=max(delay, 0) or None, _queue_name=self.names.queue))

    async def poll(self, delay: float = 0.0, *, since: float | None = None) -> None:
        """One readiness poll per tick, however many nodes ask for it (the job id dedupes).

        A wake-up runs on the first tick at least `delay` from now. A poll re-arming itself
        passes `since` (when it started): the next one runs on the tick nearest `since +
        delay`, never the tick running now (rounding up from the end of a poll would turn a
        0.5 s cadence into 1 s)."""
        now = time.time()
        if since is None:
            tick = math.ceil((now + max(delay, 0)) / self.poll_tick_s)
        else:
            tick = max(round((since + max(delay, 0)) / self.poll_tick_s),
                       math.floor(now / self.poll_tick_s) + 1)
        await _best_effort(self.redis.enqueue_job(
            "poll_starting", _job_id=self.names.job_id("poll", tick), _queue_name=self.names.queue,
            _defer_until=datetime.fromtimestamp(tick * self.poll_tick_s, UTC),
        ))

    async def expire(self, cluster_id: uuid.UUID, at: datetime) -> None:
        """Check the cluster's TTL at `at` (its `expires_at`). One job per cluster and time:
        a TTL changed back and forth does not pile up checks."""
        await _best_effort(self.redis.enqueue_job(
            "expire_cluster", str(cluster_id), _queue_name=self.names.queue,
            _job_id=self.names.job_id("expire", cluster_id, _ms(at)),
            _defer_until=at))

    async def published(self, cluster_id: uuid.UUID, seq: int) -> None:
        await _best_effort(self.redis.publish(self.names.events, f"{cluster_id} {seq}"))

    async def after_commit(self, tx: ClusterTx) -> None:
        # Announced even without a new event (a pod id recorded, say): API processes drop
        # their cached copy of the cluster on any announcement; SSE feeds read only if the
        # seq is new to them.
        await self.published(tx.cluster.id, tx.last_seq or tx.cluster.last_event_seq)
        for node_id, delay in tx.wake_nodes.items():
            await self.node(node_id, delay)
        if tx.wake_poll is not None:
            await self.poll(tx.wake_poll)
        if tx.expiry is not None:
            await self.expire(tx.cluster.id, tx.expiry)


def _ms(at: datetime | None) -> int:
    return 0 if at is None else int(at.timestamp() * 1000)


async def _best_effort(call: Awaitable[Any]) -> bool:
    """Run one Redis call; with Redis away, drop it (True: it went through)."""
    try:
        await call
    except Exception as exc:
        if not redis_unavailable(exc):
            raise
        REDIS.failed(exc)
        return False
    REDIS.back()
    return True


async def connect(redis_url: str, names: RedisNames) -> Dispatcher:
    """A dispatcher with a connection pool of its own (close it with `dispatcher.redis.aclose()`).
    Connections are opened when first used, so a process starts while Redis is away."""
    timeout = RedisSettings().conn_timeout  # arq's: an unreachable Redis costs a call 1 s
    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=timeout)
    redis = ArqRedis(pool, default_queue_name=names.queue)
    redis.auto_close_connection_pool = True  # the pool is this client's alone
    return Dispatcher(redis, names)
