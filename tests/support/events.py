"""Event-stream helpers: a small SSE client over httpx, a cluster row made directly (no
provider needed), and appending events the way the workers do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Cluster, Node
from app.services.dispatch import Dispatcher
from app.services.state import ClusterTx, locked_cluster, utcnow

SSE = {"Accept": "text/event-stream"}


@dataclass
class Event:
    id: int | None = None
    type: str | None = None
    data: Any = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    received_at: float = 0.0


async def sse_events(response: httpx.Response) -> AsyncIterator[Event]:
    """Parse a text/event-stream body line by line (the WHATWG rules this API needs):
    yields one Event per blank-line-terminated block, comment-only blocks included."""
    current = Event()
    data_lines: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data_lines:
                current.data = json.loads("\n".join(data_lines))
            current.received_at = time.time()
            yield current
            current, data_lines = Event(), []
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "":
            current.comments.append(value)
        elif name == "id":
            current.id = int(value)
        elif name == "event":
            current.type = value
        elif name == "data":
            data_lines.append(value)
        elif name == "retry":
            current.retry = int(value)


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, cluster_id: Any, *, last_event_id: int | None = None,
    after: int | None = None,
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[Event]]]:
    headers = dict(SSE)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {"after": after} if after is not None else {}
    async with client.stream("GET", f"/clusters/{cluster_id}/events", headers=headers,
                             params=params) as response:
        yield response, sse_events(response)


async def read_events(
    events: AsyncIterator[Event], *, count: int | None = None, timeout: float = 10.0
) -> list[Event]:
    """Events with an id, until `count` of them arrived or the stream ended."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        async for ev in events:
            if ev.id is None:
                continue
            out.append(ev)
            if count is not None and len(out) >= count:
                break
    return out


async def make_cluster(
    sessionmaker: async_sessionmaker[AsyncSession], team_id: uuid.UUID, *, nodes: int = 1,
    node_status: str = "pending", name: str = "events",
) -> uuid.UUID:
    """A cluster row and its nodes, with its first event, as `create_cluster` writes them.
    Pending nodes have no pod yet, so deleting the cluster terminates it at once."""
    async with sessionmaker() as session, session.begin():
        cluster = Cluster(
            id=uuid.uuid4(), team_id=team_id, name=name, status="pending",
            gpu_type="4090", gpu_type_id="NVIDIA GeForce RTX 4090", gpu_count=1,
            node_count=nodes, cloud_type="secure", allocation="on-demand", image="img",
            container_disk_gb=1, volume_gb=0, volume_mount_path="/workspace",
            ports=["22/tcp"], env={}, data_center_ids=[], setup="", placements=[[]],
            ssh_public_key="ssh-ed25519 AAAA test", ssh_private_key_enc=b"x",
            last_event_seq=0, created_at=utcnow(),
        )
        cluster.nodes = [
            Node(id=uuid.uuid4(), index=i, status=node_status, gpu_count=1,
                 pod_name=f"hangar-test-n{i}-a0" if node_status != "pending" else None)
            for i in range(nodes)
        ]
        session.add(cluster)
        ClusterTx(session=session, cluster=cluster).event("cluster.pending",
                                                          {"status": "pending"})
    return cluster.id


async def append(
    sessionmaker: async_sessionmaker[AsyncSession], cluster_id: uuid.UUID, n: int,
    dispatcher: Dispatcher | None, *, per_tx: int = 1, **data: Any,
) -> list[int]:
    """Append `n` notices, `per_tx` per transaction; returns their ids."""
    ids: list[int] = []
    for start in range(0, n, per_tx):
        async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
            for i in range(start, min(start + per_tx, n)):
                ids.append(tx.event("cluster.notice", {"message": "test", "i": i, **data}))
    return ids


async def finish(sessionmaker: async_sessionmaker[AsyncSession], cluster_id: uuid.UUID,
                 dispatcher: Dispatcher | None) -> int:
    """Delete a cluster whose nodes never got a pod: it ends terminated at once (three
    events: cluster.terminating, node.terminated per node, cluster.terminated)."""
    async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
        tx.request_delete()
    return tx.last_seq
