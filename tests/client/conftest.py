"""Client fixtures: a team token, and the blocking client run in a thread (the API serves
from this test's event loop, which must keep running). The API, simulator and worker are
the shared fixtures (tests/support/fixtures.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from app.services.teams import create_token

GPU = "RTX 4090"
T = TypeVar("T")


@pytest.fixture
async def token(db) -> str:
    """A new API token of team 'alpha'."""
    async with db() as session:
        _, plaintext = await create_token(session, "alpha")
    return plaintext


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking client code without blocking the loop the API and worker run in."""
    return await asyncio.to_thread(fn, *args, **kwargs)
