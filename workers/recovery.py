"""A worker's side of an outage: what it owes while Postgres or Redis is away, and what it
does once they are back (docs/PIPELINE.md, "When Redis or Postgres is away").

While the **database** is away, a job fails on its first statement. `outage_safe` (around
every job) turns that into one warning per outage instead of a traceback per job, and
remembers the job; leases the job could not give back are owed (`workers/leases.py`). A
watcher probes the database with backoff (0.25 s, doubling to 2 s) and, once it answers,
gives the owed leases back, runs the remembered jobs again and catches up (below). So
work resumes within about two seconds of the database's return, not after the leases
(60 s) or the reconciler's grace.

While **Redis** is away, jobs go on (the dispatcher's wake-ups are dropped), and the arq
loop waits (`workers/runner.py`). Once it is back, the worker catches up.

**Catching up** (`workers/cron.py: catch_up`) re-enqueues every live node with a deadline
and a free lease, each at its deadline: the wake-ups lost while Redis was away, without
waiting for the reconciler's grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from app.outages import DATABASE, REDIS, database_unavailable, describe, redis_unavailable
from workers.leases import OwedLeases

log = logging.getLogger("hangar.worker")

FIRST_PROBE_S = 0.25
MAX_PROBE_S = 2.0
MAX_REMEMBERED_JOBS = 10_000


class Recovery:
    """Per worker process: leases owed, jobs to run again, and the database watcher."""

    def __init__(self) -> None:
        self.leases = OwedLeases()
        self.jobs: dict[tuple[str, tuple[Any, ...]], None] = {}  # (job name, args), in order
        self._watcher: asyncio.Task | None = None
        self._back = asyncio.Event()  # some connection of this process got through
        self._unhook: Callable[[], None] | None = None

    def job_failed(self, w: Any, name: str, args: tuple[Any, ...], exc: BaseException) -> None:
        """A job failed because the database is away: run it again once it is back."""
        DATABASE.failed(exc)
        if len(self.jobs) < MAX_REMEMBERED_JOBS:
            self.jobs[(name, args)] = None
        self.watch(w)

    def watch(self, w: Any) -> None:
        """Start the database watcher, unless it runs already."""
        if self._unhook is None:
            self._unhook = DATABASE.on_back(self._back.set)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(w), name="database-watcher")

    async def _watch(self, w: Any) -> None:
        delay = FIRST_PROBE_S
        while self.jobs or len(self.leases) or DATABASE.down:
            # A probe with backoff, or at once when a connection of this process got through.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._back.wait(), delay)
            self._back.clear()
            delay = min(delay * 2, MAX_PROBE_S)
            try:
                async with w.autocommit() as session:
                    await session.execute(text("SELECT 1"))
                settled = await self.leases.settle(w.autocommit)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                DATABASE.failed(exc)
                continue
            DATABASE.back()
            jobs, self.jobs = list(self.jobs), {}
            log.info("database back: %d owed leases given back, %d jobs enqueued again",
                     settled, len(jobs))
            for name, args in jobs:
                await _enqueue_again(w, name, args)
            await catch_up_safely(w)

    async def stop(self) -> None:
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)


async def _enqueue_again(w: Any, name: str, args: tuple[Any, ...]) -> None:
    if name == "node_step":
        await w.dispatcher.node(uuid.UUID(args[0]), 0)
    elif name == "poll_starting":
        await w.dispatcher.poll(0)
    elif name == "expire_cluster":
        await w.dispatcher.expire(uuid.UUID(args[0]), datetime.now(UTC))
    # the crons run again on their own


async def catch_up_safely(w: Any) -> None:
    from workers.cron import catch_up

    try:
        await catch_up(w)
    except Exception as exc:
        if database_unavailable(exc):
            DATABASE.failed(exc)  # the next job's failure starts the watcher again
        elif redis_unavailable(exc):
            REDIS.failed(exc)
        else:
            raise


async def after_redis_outage(ctx: dict[str, Any]) -> None:
    """`HangarWorker(on_redis_back=...)`: wake what was meant to wake while Redis was away."""
    w = ctx.get("work")
    if w is not None:
        await catch_up_safely(w)


def outage_safe(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap an arq job: a failure because the database (or Redis) is away is one warning
    per outage and a job remembered to run again, not a traceback per job; any other
    failure is logged here without the exception's text when it comes from the database
    (it may quote SQL parameters, a setup's output, an env value), then the job ends."""

    @functools.wraps(fn)
    async def wrapper(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        w = ctx.get("work")
        try:
            return await fn(ctx, *args, **kwargs)
        except Exception as exc:
            if database_unavailable(exc) and w is not None:
                w.recovery.job_failed(w, fn.__name__, args, exc)
                return "database unavailable"
            if redis_unavailable(exc):
                REDIS.failed(exc)
                return "redis unavailable"
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("job %s failed: %s\n%s", fn.__name__, describe(exc), frames)
            return "failed"
        finally:
            if w is not None and len(w.recovery.leases):
                w.recovery.watch(w)

    return wrapper
