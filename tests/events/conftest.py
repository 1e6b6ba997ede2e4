"""Event-stream fixtures: teams with tokens, and a Dispatcher that publishes to Redis like
the workers' does (the API, simulator and worker are the shared ones)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from app.services import dispatch
from app.services.dispatch import Dispatcher
from app.services.teams import create_token
from app.settings import Settings
from tests.support.stack import ServedApp


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
async def dispatcher(settings: Settings) -> AsyncIterator[Dispatcher]:
    d = await dispatch.connect(settings.redis_url, settings.redis_names)
    yield d
    await d.redis.aclose()
