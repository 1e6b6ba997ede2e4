"""The FastAPI application: lifespan (engine, Redis, provider) and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import Depends, FastAPI

from app.api import docs, errors, metrics
from app.api.deps import bind_log_context
from app.api.hub import EventHub
from app.api.middleware import RequestContextMiddleware
from app.api.routes import clusters, events, gpu_types, health
from app.api.routes import metrics as metrics_route
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
        app.state.provider = make_provider(settings, on_request=metrics.observe_runpod)
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
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        dependencies=[Depends(bind_log_context)],
    )
    errors.install(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.include_router(clusters.router)
    app.include_router(events.router)
    app.include_router(gpu_types.router)
    docs.install(app)
    return app


DESCRIPTION = """\
Authenticate with `Authorization: Bearer <token>` (`hangar keys create --team T`).
A team sees only its own clusters: another team's cluster is a 404.

Errors are `application/problem+json` (RFC 9457): `code` is machine-readable, `detail`
says what to change, `errors` lists invalid fields. Every response carries an
`X-Request-ID` (yours if you sent one); quote it when reporting a problem.
Request bodies are limited to 1 MiB.
"""
