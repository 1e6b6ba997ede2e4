"""Per-process worker resources: database engine, provider (one shared HTTP client), dispatcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import make_engine, make_sessionmaker
from app.providers import make_provider
from app.providers.base import Provider
from app.services.dispatch import Dispatcher
from app.services.state import locked_cluster
from app.settings import Settings, get_settings


@dataclass
class Work:
    """What every job needs, built once per worker process."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    provider: Provider
    dispatcher: Dispatcher

    def locked(self, cluster_id: UUID):
        return locked_cluster(self.sessionmaker, cluster_id, self.dispatcher)


def work(ctx: dict[str, Any]) -> Work:
    return ctx["work"]


async def startup(ctx: dict[str, Any], settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for `hangar worker`")
    ctx["engine"] = make_engine(settings.database_url)
    ctx["work"] = Work(
        settings=settings,
        sessionmaker=make_sessionmaker(ctx["engine"]),
        provider=make_provider(settings),
        dispatcher=Dispatcher(ctx["redis"]),
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    w: Work | None = ctx.get("work")
    if w is not None:
        await w.provider.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()
