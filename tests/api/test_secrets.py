"""Secrets stay in (docs/ARCHITECTURE.md, invariant 6): two teams' clusters go through the whole
pipeline against the simulator (real SSH bootstrap) to ready and back to terminated, and
then no API response, no event and no log line (everything, at DEBUG) holds the RunPod
key, a cluster's SSH private key or an API token (a token's short display prefix is fine).
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import structlog
from sqlalchemy import select

from app.db.models import Cluster
from app.domain.crypto import decrypt
from app.logging_setup import configure_logging
from tests.support.stack import VALID, events, wait_for

SETUP = 'echo "rank=$HANGAR_NODE_RANK head=$HANGAR_HEAD_ADDR mode=$WANDB_MODE"'
NOISY = ("asyncssh", "httpx", "httpcore", "uvicorn", "uvicorn.error", "arq")


class Everything(logging.Handler):
    """Keeps every record: its rendered line and its raw parts (message, args, extras)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(repr(record.__dict__))
        try:
            self.lines.append(self.format(record))
        except Exception:  # the raw parts above are what matters
            pass


@pytest.fixture
def capture_all_logs():
    configure_logging("DEBUG", json=True)
    handler = Everything()
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in NOISY}
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root.removeHandler(handler)
    root.handlers.clear()
    structlog.reset_defaults()


async def test_no_secret_in_responses_events_or_logs(
    capture_all_logs, client_for, worker, sim, db, app_settings, runpod_key, capsys
) -> None:
    seen: list[str] = []  # every response: status line, headers, body

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(f"{response.status_code} {dict(response.headers)} {response.text}")

    alpha, beta = await client_for("alpha"), await client_for("beta")
    for client in (alpha, beta):
        client.event_hooks["response"].append(record)

    a = await alpha.post("/clusters", headers={"Idempotency-Key": "k1"}, json={
        **VALID, "name": "alpha", "nodes": 2, "setup": SETUP, "env": {"WANDB_MODE": "offline"},
    })
    b = await beta.post("/clusters", json={**VALID, "name": "beta", "setup": SETUP})
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    await alpha.post("/clusters", headers={"Idempotency-Key": "k1"}, json={
        **VALID, "name": "alpha", "nodes": 2, "setup": SETUP, "env": {"WANDB_MODE": "offline"},
    })  # a replay
    ids = {alpha: a.json()["id"], beta: b.json()["id"]}

    for client, cid in ids.items():
        body = await wait_for(client, cid, {"ready", "failed"}, timeout=60)
        assert body["status"] == "ready", body

    # Read everything a caller can read, including error paths that might echo input.
    for client, cid in ids.items():
        await client.get("/clusters")
        await client.get(f"/clusters/{cid}")
        await client.get("/gpu-types")
        await client.post("/clusters", json={**VALID, "name": client.token})  # 422
        await client.post("/clusters", json={**VALID, "env": {"TOKEN": client.token},
                                             "nodes": client.token})  # 422
        await client.post("/clusters", json={**VALID, "gpu_type": client.token})  # 422
        other = ids[beta if client is alpha else alpha]
        await client.get(f"/clusters/{other}")  # 404
    await alpha.get("/clusters", headers={"Authorization": f"Bearer {alpha.token}x"})  # 401
    await alpha.get("/metrics")
    await alpha.get("/openapi.json")

    for client, cid in ids.items():
        assert (await client.delete(f"/clusters/{cid}")).status_code == 202
    for client, cid in ids.items():
        await wait_for(client, cid, {"terminated"}, timeout=60)
    assert sim.alive_pods() == []

    all_events: list[dict] = []
    sse: list[str] = []
    for client, cid in ids.items():
        all_events += await events(client, cid)
        async with client.stream("GET", f"/clusters/{cid}/events",
                                 headers={"Accept": "text/event-stream"}) as stream:
            sse += [line async for line in stream.aiter_lines()]  # ends: cluster terminal
    assert any(e["type"] == "node.output" for e in all_events)
    assert any(line.startswith("data:") for line in sse)

    # The secrets: the RunPod key, each cluster's SSH private key, each API token.
    async with db() as session:
        clusters = (await session.scalars(select(Cluster))).all()
    keys = [decrypt(app_settings.secret_key.get_secret_value(), c.ssh_private_key_enc)
            for c in clusters]
    assert len(keys) == 2 and all("PRIVATE KEY" in k for k in keys)
    secrets = {"RunPod API key": runpod_key}
    for i, key in enumerate(keys):
        secrets[f"SSH private key {i}"] = key.strip()
        body = [ln for ln in key.splitlines() if ln and "PRIVATE KEY" not in ln]
        for j, line in enumerate(body):
            secrets[f"SSH private key {i} line {j}"] = line
    for name, client in (("alpha", alpha), ("beta", beta)):
        secrets[f"{name} token"] = client.token
        secrets[f"{name} token secret part"] = client.token[10:]  # all but the display prefix

    captured = capsys.readouterr()
    haystacks = {
        "responses": "\n".join(seen),
        "events": json.dumps(all_events),
        "event stream": "\n".join(sse),
        "logs": "\n".join(capture_all_logs.lines),
        "stdout": captured.out,
        "stderr": captured.err,
    }
    assert len(seen) > 20 and len(capture_all_logs.lines) > 50  # the net was cast
    assert any(ids[alpha] in line for line in capture_all_logs.lines)
    leaks = [(secret, where, _around(text, value)) for secret, value in secrets.items()
             for where, text in haystacks.items() if value in text]
    assert leaks == []


def _around(text: str, value: str) -> str:
    at = text.index(value)
    return text[max(0, at - 300): at + len(value) + 100]
