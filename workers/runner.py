"""arq's Worker, made to outlive Redis (read against arq 0.28's `arq/worker.py`).

arq's `Worker.main` connects (5 tries, then it raises) and loops over `_poll_iteration`
(read the queue, start jobs, reap finished ones, record health, enqueue crons); any Redis
error in there ends `main`, and so the process. A Redis restart of a few seconds thus
killed `hangar worker` for good. `HangarWorker` changes only what an outage touches:

- **Connecting** is retried with backoff for as long as it takes.
- **An iteration that fails because Redis is away** is retried after a pause (0.25 s,
  doubling to `MAX_BACKOFF_S`); anything else still ends the worker, as in arq.
- **A job that could not be started** (its in-progress marker or its definition could not
  be read) gives its slot back at once; arq would lose the slot for good (`job_counter`,
  the semaphore), and after `max_jobs` such losses pick up nothing more.
- **Bookkeeping of jobs that ran while Redis was away** (arq's `finish_job`: drop the
  in-progress marker, the job and retry keys, the queue entry) is kept and done once Redis
  is back. Without it, with Redis persisting its data (docker-compose runs it with the
  append-only file), the job would stay "in progress" until arq's in-progress timeout
  (the longest job timeout + 10 s) and then run again; a job id that dedupes (the
  reconciler's `recover:<node>`) would be blocked as long.
- **Once Redis is back**, crons are scheduled afresh (arq would enqueue one run per window
  missed) and `on_redis_back(ctx)` runs (`workers/recovery.py`: what was meant to wake
  while Redis was away is woken now).

Jobs themselves do not fail because Redis is away: the dispatcher's wake-ups are best
effort (`app/services/dispatch.py`). One warning per outage (`app.outages.REDIS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from arq.connections import create_pool
from arq.constants import in_progress_key_prefix
from arq.utils import poll
from arq.worker import Worker

from app.outages import REDIS, redis_unavailable

log = logging.getLogger("hangar.worker")

FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0  # how long, at most, after Redis returns the worker picks jobs again


class HangarWorker(Worker):
    """`arq.worker.Worker` that waits out Redis outages instead of exiting."""

    def __init__(self, *args: Any,
                 on_redis_back: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_redis_back = on_redis_back
        # Redis calls owed for jobs that ran (or failed to start) while Redis was away:
        # job id -> a coroutine function doing them.
        self._owed: dict[str, Callable[[], Awaitable[None]]] = {}
        self._background: set[asyncio.Task] = set()

    async def main(self) -> None:
        """arq's `main` (connect, `on_startup`, poll forever), with Redis outages waited out."""
        waited = False
        if self._pool is None:
            self._pool, waited = await self._connect()
        log.info("worker for %d functions: %s", len(self.functions), ", ".join(self.functions))
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        if waited:  # started during an outage (a restart, say): catch up as any worker would
            self._redis_is_back()
        backoff = FIRST_BACKOFF_S
        async for _ in poll(self.poll_delay_s):
            try:
                await self._poll_iteration()
                if self._owed:
                    await self._pay_owed()
            except Exception as exc:
                if not redis_unavailable(exc):
                    raise
                REDIS.failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = FIRST_BACKOFF_S
            if REDIS.back():
                self._redis_is_back()

    async def _connect(self):
        """arq's `create_pool`, retried with backoff for as long as Redis is away. Returns the
        pool, and whether Redis was away meanwhile."""
        assert self.redis_settings is not None
        settings = replace(self.redis_settings, conn_retries=0)
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                pool = await create_pool(
                    settings, job_serializer=self.job_serializer,
                    job_deserializer=self.job_deserializer, default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms)
            except Exception as exc:
                if not redis_unavailable(exc):
                    raise
                REDIS.failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            return pool, REDIS.back()

    def _redis_is_back(self) -> None:
        # One run of each cron now (the reconciler runs at start-up), not one per window
        # missed while the loop could not reach Redis.
        for cron_job in self.cron_jobs:
            cron_job.next_run = None
        if self.on_redis_back is not None:
            self._spawn(self.on_redis_back(self.ctx), "after-redis-outage")

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one job at a time: a job whose start meets an outage gives its slot back."""
        for job_id in job_ids:
            counted = self.job_counter
            try:
                await super().start_jobs([job_id])
            except Exception as exc:
                if not redis_unavailable(exc):
                    raise
                if self.job_counter > counted and job_id.decode() not in self.tasks:
                    self.job_counter -= 1  # taken for this job, which never started
                    self.sem.release()
                    # Its in-progress marker may have been written just before the outage.
                    self._owe(job_id.decode(), self._clear_in_progress(job_id.decode()))
                raise
            if self.job_counter >= self.max_jobs:
                return

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            REDIS.failed(exc)
            # The job's definition could not be read (so it did not run), or its end could
            # not be recorded: either way it is left to run again.
            self._owe(job_id, self._clear_in_progress(job_id))

    async def finish_job(self, job_id: str, *args: Any) -> None:
        try:
            await super().finish_job(job_id, *args)
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            REDIS.failed(exc)
            self._owe(job_id, lambda: Worker.finish_job(self, job_id, *args))

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        try:
            await super().finish_failed_job(job_id, result_data)
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            REDIS.failed(exc)
            self._owe(job_id, lambda: Worker.finish_failed_job(self, job_id, result_data))

    def _clear_in_progress(self, job_id: str) -> Callable[[], Awaitable[None]]:
        async def clear() -> None:
            await self.pool.delete(in_progress_key_prefix + job_id)

        return clear

    def _owe(self, job_id: str, call: Callable[[], Awaitable[None]]) -> None:
        # A finish supersedes a mere clearing of the marker (it does that too).
        self._owed[job_id] = call

    async def _pay_owed(self) -> None:
        for job_id, call in list(self._owed.items()):
            await call()  # raises while Redis is still away: the rest wait
            if self._owed.get(job_id) is call:
                del self._owed[job_id]

    async def close(self) -> None:
        """arq's `close`, going on with the shutdown when Redis is away."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)  # as arq's close: cancels the loop and the jobs
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(Exception):
            await self.pool.aclose(close_connection_pool=True)
        self._pool = None
