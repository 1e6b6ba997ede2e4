"""The FastAPI application: lifespan (engine, Redis, provider) and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import FastAPI

from app.api import errors
from app.api.hub import EventHub
from app.api.routes import clusters, events, gpu_types, health
from app.db.session import make_engine, make_sessionmaker
from app.providers import make_provider
from app.services.dispatch import Dispatcher
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError(
                "DATABASE_URL and REDIS_URL must be set for `hangar api` "
                "(`hangar dev` starts embedded servers when they are unset)"
            )
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        app.state.redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
        app.state.dispatcher = Dispatcher(app.state.redis)
        app.state.provider = make_provider(settings)
        app.state.hub = EventHub(settings.redis_url)
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await app.state.provider.aclose()
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title="Hangar",
        version="0.1.0",
        summary="GPU clusters on demand: POST a cluster, get pods that run your setup.",
        lifespan=lifespan,
        docs_url="/docs",
    )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(clusters.router)
    app.include_router(events.router)
    app.include_router(gpu_types.router)
    return app
