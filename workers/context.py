"""Per-process worker resources: database engine, provider (one shared HTTP client), dispatcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db.session import make_sessionmaker
from app.gctune import tune_gc
from app.metrics import observe_runpod, start_worker_metrics_server
from app.providers import make_provider
from app.providers.base import Provider
from app.services.dispatch import Dispatcher
from app.services.state import GroupCommit, locked_cluster
from app.settings import Settings, async_database_url, get_settings


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


def make_worker_engine(url: str) -> AsyncEngine:
    """The worker's engine: like the API's, without pre-ping. A pre-ping costs three round
    trips (BEGIN, an empty query, ROLLBACK) on every checkout, and a node step checks out a
    connection several times: close to a third of the worker's round trips were pings. Without
    it, the first statement on a connection that a Postgres restart killed fails, SQLAlchemy
    then discards the whole pool, and the reconciler re-enqueues that job's node (a lost job
    delays work, never loses it)."""
    return create_async_engine(
        async_database_url(url), pool_size=10, max_overflow=20, pool_pre_ping=False
    )


def work(ctx: dict[str, Any]) -> Work:
    return ctx["work"]


async def startup(ctx: dict[str, Any], settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for `hangar worker`")
    if settings.worker_metrics_port and not ctx.get("metrics_started"):
        start_worker_metrics_server(settings.worker_metrics_port)
        ctx["metrics_started"] = True
    ctx["engine"] = make_worker_engine(settings.database_url)
    sessionmaker = make_sessionmaker(ctx["engine"])
    dispatcher = Dispatcher(ctx["redis"])
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
