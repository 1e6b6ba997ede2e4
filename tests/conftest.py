"""Shared fixtures: real PostgreSQL and Redis (the machine's when DATABASE_URL/REDIS_URL are
set, embedded servers otherwise), a fresh database per session, clean tables per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.models import Base
from app.db.session import make_engine, make_sessionmaker
from app.embedded import free_port, start_postgres, start_redis
from app.settings import Settings, async_database_url

_EMBEDDED_DIR = Path(tempfile.gettempdir()) / "hangar-test-embedded"


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or start_postgres(_EMBEDDED_DIR, database="postgres")


def _with_database(url: str, name: str) -> str:
    return (
        make_url(async_database_url(url)).set(database=name).render_as_string(hide_password=False)
    )


async def _admin(url: str, sql: str) -> None:
    plain = make_url(async_database_url(url)).set(drivername="postgresql")
    dsn = plain.render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_server() -> str:
    """URL of a server we may create databases on."""
    return _server_url()


@pytest.fixture(scope="session")
async def fresh_database(database_server: str):
    """Factory: a new empty database on the server, dropped at session end."""
    created: list[str] = []

    async def make(prefix: str = "hangar_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        await _admin(database_server, f'CREATE DATABASE "{name}"')
        created.append(name)
        return _with_database(database_server, name)

    yield make
    for name in created:
        await _admin(database_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def database_url(fresh_database) -> str:
    url = await fresh_database()
    from app.db.migrate import upgrade_head

    await asyncio.to_thread(upgrade_head, url)
    return url


@pytest.fixture(scope="session")
async def redis_url() -> str:
    base = os.environ.get("REDIS_URL") or start_redis(_EMBEDDED_DIR)
    # A database index of its own so a developer's local Redis data is left alone.
    return base.rsplit("/", 1)[0] + "/9" if base.count("/") >= 3 else base + "/9"


@pytest.fixture(scope="session")
async def engine(database_url: str):
    engine = make_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine):
    """A sessionmaker on empty tables (truncated before the test)."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return make_sessionmaker(engine)


@pytest.fixture
async def redis_clean(redis_url: str) -> str:
    """The test Redis database, flushed before the test."""
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    return redis_url


@pytest.fixture
def settings(database_url: str, db, redis_clean: str, tmp_path: Path) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_clean,
        HANGAR_SECRET_KEY="test-secret",
        # Nothing listens there: tests that need RunPod point this at a simulator.
        RUNPOD_API_KEY="unused-key",
        RUNPOD_API_URL="http://127.0.0.1:9/v2",
        HANGAR_DATA_DIR=str(tmp_path),
        HANGAR_LOG_JSON=False,
    )


def fast_settings(settings: Settings, *, api_key: str, api_url: str, **overrides) -> Settings:
    """Settings for end-to-end tests against a simulator: short timeouts, leases and polls,
    so failure paths and recoveries finish in seconds."""
    return settings.model_copy(update={**dict(
        runpod_api_key=api_key,
        runpod_api_url=api_url,
        runpod_read_timeout_s=2.0,
        runpod_backoff_base_s=0.05,
        provision_timeout_s=15.0,
        bootstrap_timeout_s=20.0,
        poll_interval_s=0.4,
        poll_interval_max_s=1.0,
        lease_s=10.0,
        reconcile_interval_s=1,
        reconcile_grace_s=2.0,
        bootstrap_step_s=3.0,
        orphan_grace_s=1.0,
        catalog_ttl_s=5.0,
        sse_heartbeat_s=1.0,
    ), **overrides})


class _QuietServer(uvicorn.Server):
    """Leaves signal handling to pytest (a Ctrl-C should stop the run, not the server)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class ServedApp:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task, url: str) -> None:
        self.server, self.task, self.url = server, task, url

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


async def serve_app(app, host: str = "127.0.0.1") -> ServedApp:
    """Serve an ASGI app with uvicorn on a free loopback port in this event loop (real HTTP)."""
    port = free_port()
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return ServedApp(server, task, f"http://{host}:{port}")


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[ServedApp]:
    from app.api.app import create_app

    served = await serve_app(create_app(settings))
    yield served
    await served.stop()


@pytest.fixture
async def served_with(settings: Settings):
    """`served, app = await served_with(**overrides)`: the API with these settings overridden,
    on a loopback port, once its Redis subscription (caches, event fan-out) is up. Every API
    started this way is stopped after the test."""
    from app.api.app import create_app
    from tests.events.helpers import eventually

    started: list[ServedApp] = []

    async def make(**overrides):
        app = create_app(settings.model_copy(update=overrides))
        served = await serve_app(app)
        started.append(served)
        await eventually(lambda: app.state.hub.connected)
        return served, app

    yield make
    for served in started:
        await served.stop()


async def team_client(db, url: str, team: str) -> httpx.AsyncClient:
    """An HTTP client for the API at `url` with a new token of `team` (created if needed):
    `client.token` is the token, `client.team_id` the team. The caller closes it."""
    from app.services.teams import create_token

    async with db() as session:
        token, plaintext = await create_token(session, team)
    client = httpx.AsyncClient(base_url=url, timeout=30,
                               headers={"Authorization": f"Bearer {plaintext}"})
    client.token, client.team_id = plaintext, token.team_id  # type: ignore[attr-defined]
    return client


def settings_env(settings) -> dict[str, str]:
    """The settings as the environment of a child process."""
    env = dict(os.environ)
    for key, value in settings.model_dump(by_alias=True).items():
        if value is None:
            env.pop(key, None)
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(map(str, value))
        env[key] = str(value)
    return env
