"""Client fixtures: the API fixtures of tests/api (a RunPod simulator with a random key, the
API on uvicorn pointed at it, an arq worker), a team token, and the blocking client run in
a thread (the API serves from this test's event loop, which must keep running)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from app.embedded import start_redis
from app.services.teams import create_token
from tests.api.conftest import (  # noqa: F401 (fixtures)
    api_settings,
    client_for,
    runpod_key,
    served,
    sim,
    worker,
)
from tests.conftest import _EMBEDDED_DIR

CLIENT_REDIS_DB = 12
GPU = "RTX 4090"
T = TypeVar("T")


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """A Redis database index of this folder's own: the arq queue lives in the index, and a
    test session of another folder on the same server would take this folder's jobs."""
    base = os.environ.get("REDIS_URL") or start_redis(_EMBEDDED_DIR)
    prefix = base.rsplit("/", 1)[0] if base.count("/") >= 3 else base
    return f"{prefix}/{CLIENT_REDIS_DB}"


@pytest.fixture
async def token(db) -> str:
    """A new API token of team 'alpha'."""
    async with db() as session:
        _, plaintext = await create_token(session, "alpha")
    return plaintext


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking client code without blocking the loop the API and worker run in."""
    return await asyncio.to_thread(fn, *args, **kwargs)
