"""The outage tests' own Postgres and Redis (stopped and started by the tests), a fresh
database per test, the API in this process and the worker as a process of its own.

Settings: the end-to-end stack's short timeouts, with room for a 10 s outage (provision and
bootstrap timeouts of 90 s) and, for the database outage, a long lease (two minutes): a
lease not given back during the outage would stall its node for most of it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db.session import make_engine, make_sessionmaker
from app.embedded import StoppablePostgres, StoppableRedis
from app.settings import Settings
from tests.support.stack import ServedApp, fast_settings, serve_app, team_client

from .helpers import WorkerProcess


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    """Redis (append-only, as docker-compose runs it) and Postgres of this module's own."""
    root = tmp_path_factory.mktemp("outage-servers")
    redis, postgres = StoppableRedis(root), StoppablePostgres(root)
    redis.start()
    postgres.start()
    yield redis, postgres
    redis.stop()
    postgres.stop()


@dataclass
class Stack:
    redis: StoppableRedis
    postgres: StoppablePostgres
    settings: Settings
    served: ServedApp
    client: httpx.AsyncClient
    worker: WorkerProcess
    engine: object


@pytest.fixture
async def stack_for(servers, sim, runpod_key, tmp_path: Path):
    """`stack = await stack_for(**overrides)`: a fresh database on the module's servers,
    the API on a loopback port, a worker process and a client of team `ops`."""
    redis, postgres = servers
    made: list[Stack] = []

    async def make(**overrides) -> Stack:
        redis.start()
        postgres.start()
        name = f"hangar_outage_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(postgres.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = postgres.url(name)
        from app.db.migrate import upgrade_head

        await asyncio.to_thread(upgrade_head, url)
        base = Settings(DATABASE_URL=url, REDIS_URL=redis.url,
                        HANGAR_REDIS_NAMESPACE=f"outage-{uuid.uuid4().hex[:8]}",
                        HANGAR_SECRET_KEY="outage-test-secret", HANGAR_DATA_DIR=str(tmp_path),
                        HANGAR_LOG_JSON=True)
        settings = fast_settings(base, api_key=runpod_key, api_url=sim.base_url, **{
            "provision_timeout_s": 90.0, "bootstrap_timeout_s": 90.0, **overrides})
        from app.api.app import create_app

        served = await serve_app(create_app(settings))
        engine = make_engine(url, pool_size=2)
        client = await team_client(make_sessionmaker(engine), served.url, "ops")
        worker = await WorkerProcess(settings, tmp_path / f"worker-{len(made)}.log").start()
        stack = Stack(redis, postgres, settings, served, client, worker, engine)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        await stack.worker.stop()
        await stack.client.aclose()
        await stack.served.stop()
        await stack.engine.dispose()
    redis.start()
    postgres.start()


@pytest.fixture
def outage_s() -> float:
    """How long each outage lasts (the issue's 10 s)."""
    return 10.0

