"""The names of everything a Hangar deployment keeps in Redis, under one namespace
(`HANGAR_REDIS_NAMESPACE`, default `hangar`), so deployments and test runs that share a
Redis server (even one database index) stay out of each other's way: the arq queue, the
ids of the jobs Hangar deduplicates, the cron jobs, and the pub/sub channels (which ignore
the database index anyway). arq's own keys are named after the job ids
(`arq:job:<id>`), so prefixed ids keep those apart too."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisNames:
    namespace: str = "hangar"

    @property
    def queue(self) -> str:
        """arq's queue (a sorted set of job ids by due time)."""
        return f"{self.namespace}:queue"

    @property
    def events(self) -> str:
        """Channel of committed events: "<cluster_id> <seq>" (app/services/dispatch.py)."""
        return f"{self.namespace}:events"

    @property
    def webhooks(self) -> str:
        """Channel of webhook endpoint changes: an endpoint id (app/webhooks/waker.py)."""
        return f"{self.namespace}:webhooks"

    @property
    def tokens(self) -> str:
        """Channel of revoked API tokens: their hashes (app/services/teams.py)."""
        return f"{self.namespace}:tokens"

    def job_id(self, *parts: object) -> str:
        """A deduplicating job id: one such job at a time in this deployment."""
        return ":".join((self.namespace, *(str(p) for p in parts)))

    def cron(self, name: str) -> str:
        """A cron job's name (arq derives its per-run job ids from it)."""
        return f"cron:{self.namespace}:{name}"


async def forget_all(redis_url: str, names: RedisNames) -> None:
    """Delete every queued job, job record and key of this namespace: what FLUSHDB does
    for one deployment, without touching others that share the database (tests and
    benchmarks start from nothing this way; the rows keep the work, invariant 1)."""
    import redis.asyncio as aioredis

    r = aioredis.from_url(redis_url)
    try:
        job_ids = [j.decode() for j in await r.zrange(names.queue, 0, -1)]
        keys = [f"arq:{kind}:{job_id}" for job_id in job_ids
                for kind in ("job", "in-progress", "retry", "result")]
        async for key in r.scan_iter(match=f"*{names.namespace}*", count=1000):
            keys.append(key.decode())
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()
