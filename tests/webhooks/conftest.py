"""Webhook fixtures: a real receiver on loopback (uvicorn in this event loop) that records
every delivery and answers as a test tells it, the API, an arq worker, and appending events
the way the workers do (locked_cluster + the Dispatcher, which announces them on Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.app import create_app
from app.services.dispatch import Dispatcher
from app.settings import Settings
from tests.support.stack import RunningWorker, ServedApp, eventually, serve_app, team_client


@pytest.fixture
def wh_settings(settings: Settings) -> Settings:
    """Loopback receivers allowed; short retries, leases and sweeps so recoveries take
    seconds."""
    return settings.model_copy(update=dict(
        webhook_allow_private=True,
        webhook_retry_schedule="0.2,0.4,0.6",
        webhook_timeout_s=3.0,
        webhook_lease_s=2.0,
        reconcile_interval_s=1,
    ))


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Records every POST; answers `statuses[webhook-id]` in turn (then `default`), after
    `delays[webhook-id]` seconds on its first attempt."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    default: int = 200
    hang_all: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        d = Delivery(dict(request.headers), body, time.time())
        self.deliveries.append(d)
        self.started.set()
        if self.hang_all:
            await asyncio.sleep(3600)
        delay = self.delays.pop(d.headers.get("webhook-id", ""), 0.0)
        if delay:
            await asyncio.sleep(delay)
        planned = self.statuses.get(d.headers.get("webhook-id", ""))
        status = planned.pop(0) if planned else self.default
        return Response(b"x" * 10_000 if status >= 500 else b"ok", status_code=status)

    def ids(self) -> list[str]:
        return [d.id for d in self.deliveries]

    def counts(self) -> Counter:
        return Counter(self.ids())

    def delivered(self, cluster_id) -> list[int]:
        """Event ids of this cluster, in the order received, each once (first receipt)."""
        seen: list[int] = []
        for i in self.ids():
            cid, _, seq = i.partition(":")
            if cid == str(cluster_id) and int(seq) not in seen:
                seen.append(int(seq))
        return seen


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = Starlette(routes=[Route("/hook", r.handle, methods=["POST"])])
    served = await serve_app(app)
    r.url = f"{served.url}/hook"
    yield r
    served.server.force_exit = True
    await served.stop()


@pytest.fixture
async def served(wh_settings: Settings) -> AsyncIterator[ServedApp]:
    app = await serve_app(create_app(wh_settings))
    yield app
    await app.stop()


@pytest.fixture
async def clients(db, served: ServedApp) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Clients of teams `alpha` and `beta`."""
    out = {name: await team_client(db, served.url, name) for name in ("alpha", "beta")}
    yield out
    for c in out.values():
        await c.aclose()


@pytest.fixture
async def worker(wh_settings: Settings) -> AsyncIterator[RunningWorker]:
    w = RunningWorker(wh_settings)
    await w.start()
    await eventually(lambda: "webhook_waker" in w.ctx and w.ctx["webhook_waker"].connected,
                     timeout=10)
    yield w
    await w.stop()


@pytest.fixture
async def dispatcher(wh_settings: Settings) -> AsyncIterator[Dispatcher]:
    redis = await create_pool(RedisSettings.from_dsn(wh_settings.redis_url))
    yield Dispatcher(redis, wh_settings.redis_names)
    await redis.aclose()


async def create_webhook(client: httpx.AsyncClient, url: str, events: list[str] | None = None,
                         ) -> dict:
    body: dict = {"url": url}
    if events is not None:
        body["events"] = events
    r = await client.post("/webhooks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def new_id() -> str:
    return str(uuid.uuid4())
