"""Per-process worker resources: database engine, provider (one shared HTTP client), dispatcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import make_engine, make_sessionmaker
from app.gctune import tune_gc
from app.metrics import observe_runpod, start_worker_metrics_server
from app.providers import make_provider
from app.providers.base import Provider
from app.services.dispatch import Dispatcher
from app.services.state import GroupCommit, locked_cluster
from app.settings import Settings, get_settings


@dataclass
class Work:
    """What every job needs, built once per worker process."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    provider: Provider
    dispatcher: Dispatcher
    # Reads and single-statement writes: autocommit, so no BEGIN/COMMIT round trips.
    autocommit: async_sessionmaker[AsyncSession]
    # Small changes to one cluster from many jobs at once, in shared transactions.
    group: GroupCommit

    def locked(self, cluster_id: UUID):
        return locked_cluster(self.sessionmaker, cluster_id, self.dispatcher)


def work(ctx: dict[str, Any]) -> Work:
    return ctx["work"]


async def startup(ctx: dict[str, Any], settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for `hangar worker`")
    if settings.worker_metrics_port and not ctx.get("metrics_started"):
        start_worker_metrics_server(settings.worker_metrics_port)
        ctx["metrics_started"] = True
    # The same engine as the API's (app/db/session.py: SQL parameters hidden from errors
    # and logs, idle connections pinged, not every checkout), sized by the same settings.
    ctx["engine"] = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                                max_overflow=settings.db_max_overflow)
    sessionmaker = make_sessionmaker(ctx["engine"])
    dispatcher = Dispatcher(ctx["redis"], settings.redis_names)
    ctx["work"] = Work(
        settings=settings,
        sessionmaker=sessionmaker,
        provider=make_provider(settings, on_request=observe_runpod),
        dispatcher=dispatcher,
        autocommit=make_sessionmaker(
            ctx["engine"].execution_options(isolation_level="AUTOCOMMIT")
        ),
        group=GroupCommit(sessionmaker, dispatcher),
    )
    tune_gc()  # start-up is over: app/gctune.py


async def shutdown(ctx: dict[str, Any]) -> None:
    w: Work | None = ctx.get("work")
    if w is not None:
        await w.provider.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()
