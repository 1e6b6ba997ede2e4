"""When an endpoint's delivery job runs: the job's name, and `enqueue`, which puts it on the
queue at the end of a short tick so that the wake-ups of one endpoint within a tick share
one job (its id)."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime

from arq.connections import ArqRedis

from app.redis_names import RedisNames

JOB = "deliver_webhooks"
TICK_S = 0.05  # wake-ups of one endpoint within a tick share one job (its id)


async def enqueue(redis: ArqRedis, names: RedisNames, endpoint_id: uuid.UUID | str,
                  at: float | None = None) -> None:
    """Run the endpoint's job at the end of the tick holding `at` (default: now). Wake-ups
    in one tick share the job (its id); the job starts after all of them."""
    tick = math.floor((time.time() if at is None else at) / TICK_S) + 1
    await redis.enqueue_job(JOB, str(endpoint_id), _job_id=names.job_id("wh", endpoint_id, tick),
                            _queue_name=names.queue,
                            _defer_until=datetime.fromtimestamp(tick * TICK_S, UTC))
