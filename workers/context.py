"""Per-process worker resources: database engine, HTTP client, provider."""

from __future__ import annotations

from typing import Any

from app.db.session import make_engine, make_sessionmaker
from app.settings import get_settings


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for `hangar worker`")
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database_url)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])


async def shutdown(ctx: dict[str, Any]) -> None:
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()
