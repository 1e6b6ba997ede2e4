"""arq WorkerSettings: job functions, the reconciler cron, startup/shutdown hooks."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.connections import RedisSettings

from app.api.metrics import timed_job
from app.settings import Settings
from app.webhooks.engine import RUN_BUDGET_S
from workers import webhooks
from workers.context import shutdown, startup
from workers.cron import reconcile, sweep_orphans
from workers.jobs import expire_cluster, node_step, poll_starting


def _every(seconds: int) -> set[int]:
    return set(range(0, 60, max(1, min(seconds, 30))))


def worker_options(settings: Settings) -> dict[str, Any]:
    """Everything arq's Worker needs, from our settings (tests build workers from this too)."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx, settings)
        await webhooks.startup(ctx, settings)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await webhooks.shutdown(ctx)
        await shutdown(ctx)

    return dict(
        # Results are not kept: jobs report through rows and events; job ids can be reused.
        functions=[
            func(timed_job(node_step), keep_result=0),
            func(timed_job(poll_starting), keep_result=0),
            func(timed_job(expire_cluster), keep_result=0),
            # A run lasts at most RUN_BUDGET_S plus one attempt; never retried by arq (the
            # rows say what is left, the sweep wakes it).
            func(timed_job(webhooks.deliver_webhooks), keep_result=0, max_tries=1,
                 timeout=int(RUN_BUDGET_S + settings.webhook_timeout_s + 20)),
        ],
        cron_jobs=[
            cron(timed_job(reconcile), second=_every(settings.reconcile_interval_s), run_at_startup=True,
                 keep_result=0, unique=True),
            cron(timed_job(sweep_orphans), second={0, 30}, keep_result=0, unique=True),
            cron(timed_job(webhooks.sweep_webhooks),
                 second=_every(settings.reconcile_interval_s), keep_result=0, unique=True),
            cron(timed_job(webhooks.prune_webhooks), second={15, 45}, keep_result=0,
                 unique=True),
        ],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_url or "redis://127.0.0.1:6379/0"),
        max_jobs=settings.worker_max_jobs,
        # A job must end well within its node lease, or two jobs could work on one node.
        job_timeout=max(int(settings.lease_s) - 5, 5),
        max_tries=3,
        health_check_interval=10,
        poll_delay=0.05,
    )
