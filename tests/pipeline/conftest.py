"""End-to-end fixtures: the RunPod simulator (real HTTP, real SSH pods), an arq worker,
the API on uvicorn, and a team token. Everything talks over real connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq.worker import Worker

from app.api.app import create_app
from app.services.teams import create_token
from app.settings import Settings
from app.simulator import Simulator
from tests.conftest import fast_settings, serve_app
from workers.settings import worker_options

SIM_KEY = "sim-key"


@pytest.fixture
async def sim(tmp_path) -> AsyncIterator[Simulator]:
    simulator = Simulator(api_key=SIM_KEY, provision_delay=0.1, start_delay=0.3,
                          work_dir=tmp_path / "pods")
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def pipeline_settings(settings: Settings, sim: Simulator) -> Settings:
    return fast_settings(settings, api_key=SIM_KEY, api_url=sim.base_url)


class RunningWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker: Worker | None = None
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.worker = Worker(**worker_options(self.settings), handle_signals=False)
        self.task = asyncio.create_task(self.worker.async_run())

    async def stop(self) -> None:
        """Like a worker process ending: its loop and running jobs are cancelled."""
        if self.worker is not None:
            tasks = [t for t in (self.task, *self.worker.tasks.values()) if t is not None]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await self.worker.close()
            except asyncio.CancelledError:
                pass
        self.worker = self.task = None

    @property
    def ctx(self) -> dict[str, Any]:
        assert self.worker is not None
        return self.worker.ctx


@pytest.fixture
async def worker(pipeline_settings: Settings) -> AsyncIterator[RunningWorker]:
    w = RunningWorker(pipeline_settings)
    await w.start()
    yield w
    await w.stop()


@pytest.fixture
async def hangar(pipeline_settings: Settings, db) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the API on uvicorn, authenticated as team 'alpha'."""
    async with db() as session:
        _, token = await create_token(session, "alpha")
    served = await serve_app(create_app(pipeline_settings))
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        client.token = token  # type: ignore[attr-defined]
        client.served = served  # type: ignore[attr-defined]
        yield client
    await served.stop()


async def wait_for(
    client: httpx.AsyncClient, cluster_id: str, statuses: set[str],
                   timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        r = await client.get(f"/clusters/{cluster_id}")
        body = r.json()
        if body["status"] in statuses and (
            body["status"] not in ("terminated", "failed")
            or all(n["status"] == "terminated" for n in body["nodes"])
        ):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"cluster {cluster_id} never reached {statuses}: {body}")


async def events(client: httpx.AsyncClient, cluster_id: str) -> list[dict]:
    out: list[dict] = []
    after = 0
    while True:
        page = (await client.get(f"/clusters/{cluster_id}/events",
                                 params={"after": after})).json()
        out += page["items"]
        if not page["items"]:
            return out
        after = page["last_id"]
