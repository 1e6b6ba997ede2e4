"""Helpers for the outage tests: a worker process with its log, SSE followers that resume,
and what the simulator's pods and the worker's log say afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from app.settings import Settings
from tests.support.events import SSE, sse_events
from tests.support.stack import settings_env


def _append(path: Path):
    return open(path, "ab")  # noqa: SIM115 - closed by the caller


class WorkerProcess:
    """`python -m app.cli worker` (JSON logs into a file), as a deployment runs it."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> WorkerProcess:
        log = _append(self.log_path)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.cli", "worker", env=settings_env(self.settings),
                stdout=log, stderr=log)
        finally:
            log.close()  # the child has its own descriptor
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines (others, e.g. a traceback printed by Python itself, skipped)."""
        out = []
        for line in self.text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    out.append(record)
        return out

    def warnings_about(self, start: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("level") == "warning"
                and str(r.get("event", "")).startswith(start)]


class Follower:
    """One SSE client of a cluster that follows its stream to the end, resuming with
    Last-Event-ID whenever the connection ends early (503s included)."""

    def __init__(self, client: httpx.AsyncClient, cluster_id: str) -> None:
        self.client, self.cluster_id = client, cluster_id
        self.ids: list[int] = []
        self.statuses: Counter = Counter()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            headers = dict(SSE)
            if self.ids:
                headers["Last-Event-ID"] = str(self.ids[-1])
            try:
                async with self.client.stream("GET", f"/clusters/{self.cluster_id}/events",
                                              headers=headers) as response:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 204:
                        return  # finished, nothing left to send
                    if response.status_code != 200:
                        await asyncio.sleep(0.5)
                        continue
                    async for event in sse_events(response):
                        if event.id is not None:
                            self.ids.append(event.id)
                        if event.type in ("cluster.terminated", "cluster.torn_down"):
                            return
            except httpx.HTTPError:
                self.statuses["error"] += 1
            await asyncio.sleep(0.2)

    async def done(self, timeout: float = 30) -> list[int]:
        await asyncio.wait_for(self.task, timeout)
        return self.ids


def duplicate_pods(names: list[str]) -> dict[str, int]:
    """Nodes (pod name without its `-a<attempt>` suffix) with more than one pod."""
    per_node = Counter(name.rsplit("-a", 1)[0] for name in names)
    return {node: n for node, n in per_node.items() if n > 1}


async def posted(client: httpx.AsyncClient, name: str, **body: Any) -> str:
    """POST a 4090 cluster; its id (the answer must be 202)."""
    r = await client.post("/clusters", json={"name": name, "gpu_type": "4090", **body})
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def status_of(client: httpx.AsyncClient, cluster_id: str) -> dict[str, Any]:
    r = await client.get(f"/clusters/{cluster_id}")
    assert r.status_code == 200, r.text
    return r.json()
