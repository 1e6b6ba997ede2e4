"""Webhook jobs (app/webhooks/engine.py and run.py do the work): one endpoint's deliveries, and the
sweep that wakes endpoints whose wake-up Redis lost. Started and stopped with the worker:
the per-process HTTP client and the waker (app/webhooks/waker.py)."""

from __future__ import annotations

import uuid
from typing import Any

from app.settings import Settings
from app.webhooks import cron, engine
from app.webhooks.waker import Waker


def deliverer(ctx: dict[str, Any]) -> engine.Deliverer:
    return ctx["webhooks"]


async def deliver_webhooks(ctx: dict[str, Any], endpoint_id: str) -> str:
    """Deliver what is due for one endpoint (holding its lease)."""
    return await deliverer(ctx).deliver(uuid.UUID(endpoint_id))


async def sweep_webhooks(ctx: dict[str, Any]) -> int:
    """Cron: wake endpoints with due deliveries and no job on them."""
    d = deliverer(ctx)
    return await cron.sweep(d.engine, d.redis, d.names)


async def prune_webhooks(ctx: dict[str, Any]) -> tuple[int, int]:
    """Cron: drop finished clusters' cursors and old attempts."""
    return await cron.prune(deliverer(ctx).engine)


async def startup(ctx: dict[str, Any], settings: Settings) -> None:
    """After workers.context.startup (it made ctx["engine"])."""
    redis = ctx["redis"]

    async def on_disabled(endpoint_id: uuid.UUID) -> None:
        await redis.publish(settings.redis_names.webhooks, str(endpoint_id))

    d = ctx["webhooks"] = engine.Deliverer(
        engine=ctx["engine"], redis=redis, settings=settings,
        # Webhook runs never take more than half the worker's job slots (a slow receiver
        # must not hold up provisioning).
        max_runs=max(1, settings.worker_max_jobs // 2),
        on_disabled=on_disabled,
    )
    waker = ctx["webhook_waker"] = Waker(settings.redis_url or "redis://127.0.0.1:6379/0",
                                         settings.redis_names, ctx["engine"], d)
    waker.start()


async def shutdown(ctx: dict[str, Any]) -> None:
    waker: Waker | None = ctx.pop("webhook_waker", None)
    if waker is not None:
        await waker.stop()
    d: engine.Deliverer | None = ctx.pop("webhooks", None)
    if d is not None:
        await d.aclose()
