"""Helpers shared by the simulator tests: request bodies, shape checks, polling, SSH."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncssh
import httpx

from app.simulator.spec import validation_errors

API_KEY = "sim-key"
GPU = "NVIDIA GeForce RTX 4090"


def our_body(name: str = "hangar-c1-n0", public_key: str | None = None, **overrides: Any) -> dict:
    """V2-NOTES' "body shaped for our use", with an optional real PUBLIC_KEY."""
    body: dict[str, Any] = {
        "name": name,
        "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "gpu": {"id": GPU, "count": 1},
        "cloud": "SECURE",
        "dataCenterIds": ["US-KS-2"],
        "disk": 50,
        "mounts": {"persistent": {"size": 20, "path": "/workspace"}},
        "ports": ["22/tcp"],
        "env": {"PUBLIC_KEY": public_key or "ssh-ed25519 AAAA... hangar"},
    }
    body.update(overrides)
    return body


def assert_shape(schema: str, instance: Any) -> None:
    """The instance validates against the spec's schema of that name."""
    errors = validation_errors(schema, instance)
    assert not errors, errors


async def create(client: httpx.AsyncClient, body: dict) -> dict:
    resp = await client.post("/pods", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def wait_status(
    client: httpx.AsyncClient, pod_id: str, status: str, within: float = 3.0
) -> dict:
    """Poll `GET /pods/{id}` until the pod reports `status`."""
    deadline = time.monotonic() + within
    while True:
        resp = await client.get(f"/pods/{pod_id}")
        assert resp.status_code == 200, resp.text
        pod = resp.json()
        if pod["status"] == status:
            return pod
        assert time.monotonic() < deadline, f"pod stuck in {pod['status']}, wanted {status}"
        await asyncio.sleep(0.02)


async def ssh_connect(pod: dict, key: asyncssh.SSHKey, **kw: Any) -> asyncssh.SSHClientConnection:
    """Connect to a RUNNING pod's `ssh.direct` with `key` (host key not checked)."""
    direct = pod["ssh"]["direct"]
    return await asyncssh.connect(
        direct["host"],
        direct["port"],
        username=direct["username"],
        client_keys=[key],
        known_hosts=None,
        agent_path=None,
        **kw,
    )


def cluster_body(
    name: str = "hangar-c1-a1", public_key: str | None = None, pods: int = 3, **overrides: Any
) -> dict:
    """A `CreateClusterRequest` shaped like Hangar's: `pods` members of one RTX 4090 each."""
    body: dict[str, Any] = {
        "name": name,
        "type": "TRAINING",
        "compute": {"gpuTypeId": GPU, "gpuCountPerPod": 1, "podCount": pods},
        "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "dataCenterIds": ["US-KS-2"],
        "disk": 50,
        "ports": ["22/tcp"],
        "env": {"PUBLIC_KEY": public_key or "ssh-ed25519 AAAA... hangar"},
    }
    body.update(overrides)
    return body


async def create_cluster(client: httpx.AsyncClient, body: dict) -> dict:
    resp = await client.post("/clusters", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def wait_members(
    client: httpx.AsyncClient, cluster_id: str, status: str = "RUNNING", within: float = 5.0
) -> list[dict]:
    """Poll `GET /clusters/{id}/pods` until every member reports `status`; rank order."""
    deadline = time.monotonic() + within
    while True:
        resp = await client.get(f"/clusters/{cluster_id}/pods")
        assert resp.status_code == 200, resp.text
        members = resp.json()["pods"]
        if members and all(p["status"] == status for p in members):
            return sorted(members, key=lambda p: p["cluster"]["rank"])
        assert time.monotonic() < deadline, [p["status"] for p in members]
        await asyncio.sleep(0.02)
