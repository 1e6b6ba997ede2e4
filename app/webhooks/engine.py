"""The delivery engine's per-process part: a `Deliverer` holds what a worker process needs to
deliver (its database, its Redis, one HTTP client per endpoint) and the runs under way
here, so that a wake-up for one of them is a poke rather than a job. Its `deliver` is the
job: it takes the endpoint's lease and hands over to a run (`app/webhooks/run.py`, where
the design of cursors, lanes and leases is described).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import driver_connection
from app.redis_names import RedisNames
from app.settings import Settings
from app.webhooks import statements as sql
from app.webhooks.run import MAX_IN_FLIGHT, EndpointRun
from app.webhooks.schedule import enqueue
from app.webhooks.transport import make_client

MAX_CLIENTS = 256  # HTTP clients kept per process (one per endpoint, least recent dropped)
_background: set[asyncio.Task] = set()


@dataclass
class Deliverer:
    """What a worker process needs to deliver: its database, its Redis, one HTTP client,
    and the runs under way here (so a wake-up for one of them is a poke, not a job)."""

    engine: AsyncEngine
    redis: ArqRedis
    settings: Settings
    max_runs: int
    runs: dict[uuid.UUID, EndpointRun] = field(default_factory=dict)
    on_disabled: Any = None  # async callable(endpoint_id): tell the wakers

    @property
    def names(self) -> RedisNames:
        return self.settings.redis_names
    # One HTTP client per endpoint (its keep-alive connections, at most MAX_IN_FLIGHT):
    # httpcore's pool scans every connection it holds on each request, so one pool for
    # every receiver costs more the more receivers there are.
    clients: OrderedDict[uuid.UUID, httpx.AsyncClient] = field(default_factory=OrderedDict)

    def client(self, endpoint_id: uuid.UUID) -> httpx.AsyncClient:
        client = self.clients.get(endpoint_id)
        if client is None:
            client = self.clients[endpoint_id] = make_client(
                self.settings.webhook_allow_private, self.settings.webhook_timeout_s,
                max_connections=MAX_IN_FLIGHT)
            while len(self.clients) > MAX_CLIENTS:
                _, old = self.clients.popitem(last=False)
                task = asyncio.create_task(old.aclose())
                _background.add(task)
                task.add_done_callback(_background.discard)
        self.clients.move_to_end(endpoint_id)
        return client

    async def aclose(self) -> None:
        while self.clients:
            _, client = self.clients.popitem()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def wake(self, endpoint_id: uuid.UUID) -> None:
        run = self.runs.get(endpoint_id)
        if run is not None and not run.finishing:
            run.poke()
            return
        await enqueue(self.redis, self.names, endpoint_id)

    async def deliver(self, endpoint_id: uuid.UUID) -> str:
        """The job: take the endpoint's lease and deliver what is due."""
        if len(self.runs) >= self.max_runs:
            # Keep arq slots for the other jobs: try again shortly (the rows keep the work).
            await enqueue(self.redis, self.names, endpoint_id, time.time() + 1.0)
            return "deferred"
        owner = uuid.uuid4()
        async with driver_connection(self.engine) as conn:
            row = await conn.fetchrow(sql.TAKE_LEASE, endpoint_id, owner,
                                      self.settings.webhook_lease_s)
        if row is None:
            return "gone"  # deleted or disabled
        if row["lease_owner"] != owner:
            return "busy"  # the holder sees wake_gen move and looks again
        run = EndpointRun(self, endpoint_id, owner, row)
        self.runs[endpoint_id] = run
        try:
            return await run.run()
        finally:
            if self.runs.get(endpoint_id) is run:
                del self.runs[endpoint_id]
