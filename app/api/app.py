"""The FastAPI application: lifespan (engine, Redis, provider) and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import metrics
from app.api import cors, docs, docs_pages, errors
from app.api.abuse import AuthThrottle, StreamSlots
from app.api.auth import TokenCache
from app.api.hub import EventHub
from app.api.methods import HeadAsGet
from app.api.middleware import RequestContextMiddleware
from app.api.readcache import ClusterReadCache
from app.api.routes import (
    clusters,
    events,
    gpu_types,
    health,
    network_volumes,
    spend,
    stream_tokens,
    webhooks,
)
from app.api.routes import metrics as metrics_route
from app.db.session import make_engine, make_sessionmaker
from app.gctune import tune_gc
from app.providers import make_provider
from app.services import dispatch
from app.services.teams import on_revoked
from app.settings import Settings, get_settings
from app.ui import routes as ui_routes


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError(
                "DATABASE_URL and REDIS_URL must be set for `hangar api` "
                "(`hangar dev` starts embedded servers when they are unset)"
            )
        settings.keyring.warm()  # refuses to start without HANGAR_SECRET_KEY
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                                       max_overflow=settings.db_max_overflow)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        names = settings.redis_names
        app.state.dispatcher = await dispatch.connect(settings.redis_url, names)
        app.state.redis = app.state.dispatcher.redis
        app.state.provider = make_provider(settings, on_request=metrics.observe_runpod,
                                           answering=True)
        hub = app.state.hub = EventHub(settings.redis_url, names.events)
        # The read path's caches (docs/read-path.md), kept true by the hub's subscription.
        tokens = app.state.tokens = TokenCache(app.state.engine, settings.auth_cache_s)
        hub.listen(names.tokens, tokens.on_message, on_subscribed=tokens.clear)
        unhook = on_revoked(tokens.drop)  # revocations made in this process
        # Abuse limits of this process (app/api/abuse.py).
        app.state.auth_throttle = AuthThrottle(settings.auth_failures_per_minute)
        app.state.streams = StreamSlots(settings.max_streams_per_team)
        reads = app.state.read_cache = ClusterReadCache(hub, settings.read_cache_s)
        hub.listen(names.events, reads.on_message, on_subscribed=reads.clear)
        await hub.start()
        tune_gc()  # start-up is over: app/gctune.py
        try:
            yield
        finally:
            unhook()
            await hub.stop()
            await tokens.aclose()
            await app.state.provider.aclose()
            await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title="Hangar",
        version="0.1.0",
        summary="GPU clusters on demand: POST a cluster, get pods that run your setup.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Hangar's metrics are Prometheus' (app/metrics.py); FastAPI's OpenTelemetry hooks
        # would cost every request a look at the environment for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # /docs and /redoc from assets in the package: app/api/docs_pages.py
        redoc_url=None,
    )
    errors.install(app)
    cors.install(app, settings.cors_origins)  # inside the request context: logged, with an id
    app.add_middleware(HeadAsGet)  # HEAD on every GET route (app/api/methods.py)
    app.add_middleware(RequestContextMiddleware)
    # Matched in this order (paths are disjoint). The cluster routes are the app's own
    # routes rather than an included router: matching through an included router costs
    # ~20 us per request and per router tried (FastAPI builds each inclusion's context).
    # The routes carry their router's prefix and tags already; the document lists the
    # paths in ROUTERS' order.
    app.router.routes.extend(clusters.router.routes)
    for router in (events.router, stream_tokens.router, gpu_types.router,
                   network_volumes.router, spend.router,
                   health.router, metrics_route.router, webhooks.router):
        app.include_router(router)
    app.router.routes.extend(ui_routes())  # the dashboard at /ui (app/ui/)
    docs_pages.install(app)
    docs.install(app, order=ROUTERS)
    stream_tokens.declare(app)  # the event stream's second way in (a stream token)
    return app


# The order of the OpenAPI document's paths.
ROUTERS = (health.router, metrics_route.router, clusters.router, events.router,
           stream_tokens.router, gpu_types.router, network_volumes.router, spend.router,
           webhooks.router)


DESCRIPTION = """\
Authenticate with `Authorization: Bearer <token>` (`hangar keys create --team T`).
A team sees only its own clusters: another team's cluster is a 404.

Errors are `application/problem+json` (RFC 9457): `code` is machine-readable, `detail`
says what to change, `errors` lists invalid fields. Every response carries an
`X-Request-ID` (yours if you sent one); quote it when reporting a problem.
Request bodies are limited to 1 MiB.
"""
