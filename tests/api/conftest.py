"""API fixtures: a RunPod simulator with a random key (so a leak of it is detectable), the
API on uvicorn pointed at it, and authenticated clients for as many teams as a test needs."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from app.api.app import create_app
from app.embedded import start_redis
from app.settings import Settings
from app.simulator import Simulator
from tests.conftest import _EMBEDDED_DIR, ServedApp, fast_settings, serve_app, team_client
from tests.pipeline.conftest import RunningWorker

ClientFor = Callable[[str], Awaitable[httpx.AsyncClient]]

VALID = {"name": "train", "gpu_type": "RTX 4090"}


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """A Redis database of this folder's own (11; the shared fixture uses 9): test runs of
    other folders on the same server flush db 9 and their workers take jobs from its
    queue, which would stall the pipeline this folder runs."""
    base = os.environ.get("REDIS_URL") or start_redis(_EMBEDDED_DIR)
    return base.rsplit("/", 1)[0] + "/11" if base.count("/") >= 3 else base + "/11"


@pytest.fixture
def runpod_key() -> str:
    return "rpa_" + secrets.token_hex(20)


@pytest.fixture
async def sim(tmp_path, runpod_key: str) -> AsyncIterator[Simulator]:
    simulator = Simulator(api_key=runpod_key, provision_delay=0.1, start_delay=0.3,
                          work_dir=tmp_path / "pods")
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def api_settings(settings: Settings, sim: Simulator, runpod_key: str) -> Settings:
    return fast_settings(settings, api_key=runpod_key, api_url=sim.base_url, catalog_ttl_s=30.0)


@pytest.fixture
async def served(api_settings: Settings) -> AsyncIterator[ServedApp]:
    app = await serve_app(create_app(api_settings))
    yield app
    await app.stop()


@pytest.fixture
async def client_for(db, served: ServedApp) -> AsyncIterator[ClientFor]:
    """`await client_for("team")`: an HTTP client with a new token of that team
    (`client.token` holds it)."""
    clients: list[httpx.AsyncClient] = []

    async def make(team: str) -> httpx.AsyncClient:
        client = await team_client(db, served.url, team)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
async def worker(api_settings: Settings) -> AsyncIterator[RunningWorker]:
    w = RunningWorker(api_settings)
    await w.start()
    yield w
    await w.stop()


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The response is an RFC 9457 problem with this status (and code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    if code is not None:
        assert body["code"] == code, body
    return body
