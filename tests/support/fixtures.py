"""Fixtures every test folder shares (registered by tests/conftest.py).

Real PostgreSQL and Redis: the machine's when DATABASE_URL / REDIS_URL are set, embedded
servers otherwise. Each test session gets a database of its own (dropped at the end) and
a Redis namespace of its own (HANGAR_REDIS_NAMESPACE: its queue, job ids and channels), so
two sessions on one machine never see each other's rows, jobs or notifications. Each test
starts with empty tables and an empty namespace.

The end-to-end stack: `sim` (the RunPod simulator: real HTTP, pods that are real SSH
servers, a random API key so a leak of it is detectable), `app_settings` (settings pointing
at it, with short timeouts), `served` (the API on a loopback port), `worker` (an arq worker
in this event loop), `hangar` and `client_for` (authenticated HTTP clients)."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.models import Base
from app.db.session import make_engine, make_sessionmaker
from app.embedded import start_postgres, start_redis
from app.redis_names import RedisNames
from app.settings import Settings, async_database_url
from app.simulator import Simulator
from tests.support.stack import (
    RunningWorker,
    ServedApp,
    clear_namespace,
    eventually,
    fast_settings,
    serve_app,
    team_client,
)

EMBEDDED_DIR = Path(tempfile.gettempdir()) / "hangar-test-embedded"
ClientFor = Callable[[str], Awaitable[httpx.AsyncClient]]


# --- services ---------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return (
        make_url(async_database_url(url)).set(database=name).render_as_string(hide_password=False)
    )


async def _admin(url: str, sql: str) -> None:
    plain = make_url(async_database_url(url)).set(drivername="postgresql")
    conn = await asyncpg.connect(plain.render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_server() -> str:
    """URL of a server we may create databases on."""
    return os.environ.get("DATABASE_URL") or start_postgres(EMBEDDED_DIR, database="postgres")


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
def redis_url() -> str:
    return os.environ.get("REDIS_URL") or start_redis(EMBEDDED_DIR)


@pytest.fixture(scope="session")
def redis_namespace() -> str:
    """This session's HANGAR_REDIS_NAMESPACE."""
    return f"hangar-test-{uuid.uuid4().hex[:8]}"


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
async def redis_clean(redis_url: str, redis_namespace: str) -> None:
    """This session's Redis namespace, emptied before the test."""
    await clear_namespace(redis_url, RedisNames(redis_namespace))


@pytest.fixture
def settings(database_url: str, db, redis_url: str, redis_namespace: str, redis_clean,
             tmp_path: Path) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        HANGAR_REDIS_NAMESPACE=redis_namespace,
        HANGAR_SECRET_KEY="test-secret",
        # Nothing listens there: tests that need RunPod use `app_settings` (the simulator).
        RUNPOD_API_KEY="unused-key",
        RUNPOD_API_URL="http://127.0.0.1:9/v2",
        HANGAR_DATA_DIR=str(tmp_path),
        HANGAR_LOG_JSON=False,
    )


# --- the stack ------------------------------------------------------------------------------


@pytest.fixture
def runpod_key() -> str:
    return "rpa_" + secrets.token_hex(20)


@pytest.fixture
async def sim(tmp_path: Path, runpod_key: str) -> AsyncIterator[Simulator]:
    simulator = Simulator(api_key=runpod_key, provision_delay=0.1, start_delay=0.3,
                          work_dir=tmp_path / "pods")
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def app_settings(settings: Settings, sim: Simulator, runpod_key: str) -> Settings:
    """Settings of the end-to-end stack: the simulator as RunPod, short timeouts."""
    return fast_settings(settings, api_key=runpod_key, api_url=sim.base_url)


@pytest.fixture
async def served(app_settings: Settings) -> AsyncIterator[ServedApp]:
    """The API on a loopback port."""
    from app.api.app import create_app

    app = await serve_app(create_app(app_settings))
    yield app
    await app.stop()


@pytest.fixture
async def served_with(app_settings: Settings):
    """`served, app = await served_with(**overrides)`: the API with these settings overridden,
    on a loopback port, once its Redis subscription (caches, event fan-out) is up. Every API
    started this way is stopped after the test."""
    from app.api.app import create_app

    started: list[ServedApp] = []

    async def make(**overrides):
        app = create_app(app_settings.model_copy(update=overrides))
        served = await serve_app(app)
        started.append(served)
        await eventually(lambda: app.state.hub.connected)
        return served, app

    yield make
    for served in started:
        await served.stop()


@pytest.fixture
async def client_for(db, served: ServedApp) -> AsyncIterator[ClientFor]:
    """`await client_for("team")`: an HTTP client with a new token of that team
    (`client.token` holds it, `client.team_id` the team)."""
    clients: list[httpx.AsyncClient] = []

    async def make(team: str) -> httpx.AsyncClient:
        client = await team_client(db, served.url, team)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
async def hangar(client_for: ClientFor, served: ServedApp) -> httpx.AsyncClient:
    """An HTTP client for the API, authenticated as team 'alpha' (`client.served` is the
    served API)."""
    client = await client_for("alpha")
    client.served = served  # type: ignore[attr-defined]
    return client


@pytest.fixture
async def worker(app_settings: Settings) -> AsyncIterator[RunningWorker]:
    w = RunningWorker(app_settings)
    await w.start()
    yield w
    await w.stop()
