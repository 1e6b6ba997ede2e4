"""A worker whose HANGAR_SECRET_KEY differs from the API's cannot decrypt the clusters' SSH
keys: the cluster fails at once with `secret_key_mismatch` and a message saying why, rather
than waiting out its bootstrap timeout."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from tests.support.stack import RunningWorker, events, wait_for


async def test_before_any_pod_is_created(hangar, sim, app_settings) -> None:
    worker = RunningWorker(app_settings.model_copy(update={"secret_key": SecretStr("other")}))
    await worker.start()
    try:
        r = await hangar.post("/clusters", json={"name": "keys", "gpu_type": "4090", "nodes": 2})
        cid = r.json()["id"]
        body = await wait_for(hangar, cid, {"failed"}, timeout=10)
    finally:
        await worker.stop()
    assert body["reason"] == "secret_key_mismatch", body
    assert "HANGAR_SECRET_KEY" in body["message"]
    assert sim.all_pods() == [], "nothing was created that could never be bootstrapped"
    node = [e for e in await events(hangar, cid) if e["type"] == "node.terminating"]
    assert node and node[0]["data"]["reason"] == "secret_key_mismatch"


async def test_mid_bootstrap_after_a_worker_with_another_key_takes_over(
    hangar, sim, app_settings
) -> None:
    right = RunningWorker(app_settings)
    await right.start()
    try:
        r = await hangar.post("/clusters", json={"name": "keys", "gpu_type": "4090",
                                                  "setup": "echo started; sleep 30"})
        cid = r.json()["id"]
        for _ in range(200):  # the setup runs: its first line is out
            if any(e["type"] == "node.output" for e in await events(hangar, cid)):
                break
            await asyncio.sleep(0.05)
    finally:
        await right.stop()
    wrong = RunningWorker(app_settings.model_copy(update={"secret_key": SecretStr("other")}))
    await wrong.start()
    try:
        # The next bootstrap step (HANGAR_BOOTSTRAP_STEP is 3 s here) fails the node.
        body = await wait_for(hangar, cid, {"failed"}, timeout=15)
    finally:
        await wrong.stop()
    assert body["reason"] == "secret_key_mismatch", body
    assert sim.alive_pods() == []
