"""arq worker options: job functions with their timeouts, the crons, startup/shutdown."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.connections import RedisSettings

from app.metrics import timed_job
from app.settings import Settings
from app.webhooks.run import RUN_BUDGET_S
from workers import webhooks
from workers.context import shutdown, startup
from workers.cron import reconcile, sweep_orphans
from workers.housekeeping import budget_alerts, purge_events
from workers.jobs import expire_cluster, node_step, poll_starting
from workers.recovery import after_redis_outage, outage_safe


def _every(seconds: int) -> set[int]:
    return set(range(0, 60, max(1, min(seconds, 30))))


def job_timeouts(settings: Settings) -> dict[str, float]:
    """How long arq lets each job run before cancelling it (docs/PIPELINE.md, "Retries").

    `node_step` holds the node's lease, so it must end before the lease can lapse: its
    timeout is the lease minus a margin. Every RunPod call inside a job ends within
    `HANGAR_RUNPOD_CALL_DEADLINE` (retries included), and a job makes at most two in a row
    before it hands over to a new job; the others are database work, or bound their own
    loops (the orphan sweep stops after `SWEEP_BUDGET_S`)."""
    step = max(settings.lease_s - 5, 5)
    return {
        "node_step": step,
        "poll_starting": step,
        "expire_cluster": 30,
        "reconcile": 30,
        "sweep_orphans": 120,
        "budget_alerts": 60,
        "purge_events": 300,
        # A run lasts at most RUN_BUDGET_S, then its lanes finish the attempt under way.
        "deliver_webhooks": RUN_BUDGET_S + settings.webhook_timeout_s + 20,
        "sweep_webhooks": 30,
        "prune_webhooks": 60,
    }


def worker_options(settings: Settings) -> dict[str, Any]:
    """Everything `workers.runner.HangarWorker` (arq's Worker, outliving Redis outages)
    needs, from our settings (tests build workers from this too)."""
    names = settings.redis_names
    timeouts = job_timeouts(settings)

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx, settings)
        await webhooks.startup(ctx, settings)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await webhooks.shutdown(ctx)
        await shutdown(ctx)

    def job(fn):
        # Results are not kept: jobs report through rows and events; job ids can be reused.
        return func(outage_safe(timed_job(fn)), keep_result=0, timeout=timeouts[fn.__name__])

    def every(fn, **when):
        return cron(outage_safe(timed_job(fn)), name=names.cron(fn.__name__), keep_result=0,
                    unique=True, timeout=timeouts[fn.__name__], **when)

    return dict(
        functions=[
            job(node_step), job(poll_starting), job(expire_cluster),
            # A webhook run: never retried by arq (the rows say what is left; the sweep
            # wakes the endpoint again).
            func(timed_job(webhooks.deliver_webhooks), keep_result=0, max_tries=1,
                 timeout=timeouts["deliver_webhooks"]),
        ],
        cron_jobs=[
            every(reconcile, second=_every(settings.reconcile_interval_s), run_at_startup=True),
            every(sweep_orphans, second={0, 30}),
            every(budget_alerts, second={45}),
            every(purge_events, minute=set(range(3, 60, 10)), second={15}),
            every(webhooks.sweep_webhooks, second=_every(settings.reconcile_interval_s)),
            every(webhooks.prune_webhooks, second={25, 55}),
        ],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        on_redis_back=after_redis_outage,  # workers/runner.py: HangarWorker
        redis_settings=RedisSettings.from_dsn(settings.redis_url or "redis://127.0.0.1:6379/0"),
        queue_name=names.queue,
        max_jobs=settings.worker_max_jobs,
        job_timeout=timeouts["node_step"],
        max_tries=3,
        # Not even for a job arq fails itself (over its tries, or expired): a result kept
        # would refuse its job id for an hour, and our ids are reused (app/services/dispatch.py).
        keep_result=0,
        health_check_interval=10,
        poll_delay=0.05,
    )
