"""Event-stream fixtures: the API on uvicorn (real HTTP), teams with tokens, a Dispatcher
that publishes to Redis like the workers' does. The simulator/worker fixtures of the
pipeline tests are re-exported for the end-to-end test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from app.api.app import create_app
from app.api.hub import EventHub
from app.embedded import start_redis
from app.services.dispatch import Dispatcher
from app.services.teams import create_token
from app.settings import Settings
from tests.conftest import _EMBEDDED_DIR, ServedApp, serve_app
from tests.pipeline.conftest import hangar, pipeline_settings, sim  # noqa: F401 (fixtures)

HEARTBEAT_S = 0.5
EVENTS_REDIS_DB = 13


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """A Redis database index of this folder's own. The arq queue lives in the index, so
    with the shared /9 a test session running elsewhere on the machine takes (and, for
    nodes it does not know, keeps re-enqueuing) this folder's worker jobs. Pub/sub, which
    the event stream uses, ignores the index anyway."""
    base = os.environ.get("REDIS_URL") or start_redis(_EMBEDDED_DIR)
    return base.rsplit("/", 1)[0] + f"/{EVENTS_REDIS_DB}" if base.count("/") >= 3 \
        else base + f"/{EVENTS_REDIS_DB}"


@pytest.fixture
def stream_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=dict(sse_heartbeat_s=HEARTBEAT_S))


@pytest.fixture
async def served(stream_settings: Settings) -> AsyncIterator[ServedApp]:
    served = await serve_app(create_app(stream_settings))
    yield served
    await served.stop()


def hub_of(served: ServedApp) -> EventHub:
    return served.server.config.app.state.hub


@dataclass
class Team:
    id: uuid.UUID
    client: httpx.AsyncClient


@pytest.fixture
async def teams(db, served: ServedApp) -> AsyncIterator[dict[str, Team]]:
    """Clients for teams `alpha` and `beta` (each its own token)."""
    out: dict[str, Team] = {}
    for name in ("alpha", "beta"):
        async with db() as session:
            token, plaintext = await create_token(session, name)
        client = httpx.AsyncClient(
            base_url=served.url, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30,
            limits=httpx.Limits(max_connections=200),
        )
        out[name] = Team(token.team_id, client)
    yield out
    for team in out.values():
        await team.client.aclose()


@pytest.fixture
async def dispatcher(stream_settings: Settings) -> AsyncIterator[Dispatcher]:
    redis = await create_pool(RedisSettings.from_dsn(stream_settings.redis_url))
    yield Dispatcher(redis)
    await redis.aclose()
