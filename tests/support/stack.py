"""The end-to-end stack as plain helpers: settings for runs against the simulator, the API
served on a loopback port, an in-process arq worker, authenticated clients, waiting for a
cluster, and Redis clean-up by namespace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

import httpx
import uvicorn
from arq.worker import Worker

from app.embedded import free_port
from app.redis_names import RedisNames, forget_all
from app.settings import Settings
from workers.settings import worker_options

# Seconds between heartbeats of an idle event stream in the tests (fast_settings).
HEARTBEAT_S = 0.5
# A minimal valid cluster request.
VALID = {"name": "train", "gpu_type": "RTX 4090"}


def fast_settings(settings: Settings, *, api_key: str, api_url: str, **overrides) -> Settings:
    """Settings for end-to-end tests against a simulator: short timeouts, leases and polls,
    so failure paths and recoveries finish in seconds."""
    return settings.model_copy(update={**dict(
        runpod_api_key=api_key,
        runpod_api_url=api_url,
        runpod_read_timeout_s=2.0,
        runpod_backoff_base_s=0.05,
        runpod_call_deadline_s=2.0,
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
        sse_heartbeat_s=HEARTBEAT_S,
    ), **overrides})


class _QuietServer(uvicorn.Server):
    """Leaves signal handling to pytest (a Ctrl-C should stop the run, not the server)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class ServedApp:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task, url: str) -> None:
        self.server, self.task, self.url = server, task, url

    @property
    def app(self) -> Any:
        return self.server.config.app

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


def hub_of(served: ServedApp):
    """The served API's EventHub (its Redis subscription and event feeds)."""
    return served.app.state.hub


class RunningWorker:
    """An arq worker in this event loop, built from the settings like `hangar worker`."""

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

    async def work(self):
        """The worker's `Work` (what jobs get), once its start-up has run."""
        await eventually(lambda: "work" in self.ctx, timeout=20)
        return self.ctx["work"]


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


def settings_env(settings: Settings) -> dict[str, str]:
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


async def wait_for(client: httpx.AsyncClient, cluster_id: str, statuses: set[str],
                   timeout: float = 30) -> dict:
    """The cluster once it is in one of `statuses` (a terminal one only once every node
    is terminated too)."""
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
    """Every event of the cluster so far, through the JSON pages."""
    out: list[dict] = []
    after = 0
    while True:
        page = (await client.get(f"/clusters/{cluster_id}/events",
                                 params={"after": after})).json()
        out += page["items"]
        if not page["items"]:
            return out
        after = page["last_id"]


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


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


async def clear_namespace(redis_url: str, names: RedisNames) -> None:
    """Forget this namespace's jobs and keys (FLUSHDB for one test run, app/redis_names.py)."""
    await forget_all(redis_url, names)
