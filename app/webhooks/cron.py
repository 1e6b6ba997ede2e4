"""The webhook work of the cron: the sweep that wakes every endpoint with due work and no job
on it (what Redis may have lost), and the pruning of finished clusters' cursors and of old
attempts."""

from __future__ import annotations

import logging
from datetime import timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import driver_connection
from app.redis_names import RedisNames
from app.webhooks.schedule import enqueue

log = logging.getLogger("hangar.webhooks")

ATTEMPTS_KEPT = timedelta(days=7)

_OVERDUE = """
SELECT e.id FROM webhook_endpoints e
WHERE e.disabled_at IS NULL AND (e.lease_until IS NULL OR e.lease_until < now())
  AND (e.next_run_at <= now() OR EXISTS (
        SELECT 1 FROM webhook_cursors w JOIN clusters c ON c.id = w.cluster_id
        WHERE w.endpoint_id = e.id AND c.last_event_seq > w.delivered_seq
          AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= now())))
LIMIT 1000
"""
# A disabled endpoint's cursors go with their cluster whatever is left: enabling it again
# starts from then on (app/webhooks/endpoints.py), so they would never be read.
_PRUNE_CURSORS = """
DELETE FROM webhook_cursors w USING clusters c
WHERE c.id = w.cluster_id
  AND (w.delivered_seq >= c.last_event_seq OR EXISTS (
        SELECT 1 FROM webhook_endpoints e WHERE e.id = w.endpoint_id
          AND e.disabled_at IS NOT NULL))
  AND c.status IN ('terminated', 'failed')
  AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.cluster_id = c.id AND n.status <> 'terminated')
"""
_PRUNE_ATTEMPTS = "DELETE FROM webhook_attempts WHERE at < now() - make_interval(secs => $1)"


async def sweep(engine: AsyncEngine, redis: ArqRedis, names: RedisNames) -> int:
    """Wake every endpoint with due work and no job on it: a lost wake-up, a lost deferred
    job (Redis flushed) or a killed worker's lapsed lease delays deliveries, never loses
    them. Returns how many were woken."""
    async with driver_connection(engine) as conn:
        ids = [r[0] for r in await conn.fetch(_OVERDUE)]
    for endpoint_id in ids:
        await enqueue(redis, names, endpoint_id)
    if ids:
        log.info("webhook sweep woke %d endpoints", len(ids))
    return len(ids)


async def prune(engine: AsyncEngine) -> tuple[int, int]:
    """Drop cursors of finished clusters with nothing left to deliver (a finished cluster
    gets no more events) or kept by a disabled endpoint, and attempts older than
    ATTEMPTS_KEPT."""
    async with driver_connection(engine) as conn:
        cursors = await conn.execute(_PRUNE_CURSORS)
        attempts = await conn.execute(_PRUNE_ATTEMPTS, ATTEMPTS_KEPT.total_seconds())
    return int(cursors.split()[-1]), int(attempts.split()[-1])
