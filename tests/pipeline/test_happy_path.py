"""A cluster goes pending → ready with its setup output, then DELETE leaves no pod behind."""

from __future__ import annotations

import asyncio

from tests.support.stack import events, wait_for

SETUP = 'echo "rank=$HANGAR_NODE_RANK of $HANGAR_NUM_NODES head=$HANGAR_HEAD_ADDR x=$X"'


async def test_three_nodes_ready_then_deleted(hangar, worker, sim) -> None:
    r = await hangar.post("/clusters", json={
        "name": "happy", "gpu_type": "4090", "nodes": 3, "setup": SETUP, "env": {"X": "a b"},
    })
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/clusters/{r.json()['id']}"
    cid = r.json()["id"]
    assert r.json()["status"] == "pending"

    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready", body
    assert body["ready_at"]
    assert [n["status"] for n in body["nodes"]] == ["ready"] * 3
    assert all(n["pod_id"] and n["public_ip"] and n["ssh_port"] for n in body["nodes"])

    evs = await events(hangar, cid)
    ids = [e["id"] for e in evs]
    assert ids == list(range(1, len(ids) + 1)), "event ids grow by one, no gaps"
    types = [e["type"] for e in evs]
    for status in ("pending", "provisioning", "bootstrapping", "ready"):
        assert f"cluster.{status}" in types
    head = body["nodes"][0]["public_ip"]
    lines = sorted(e["data"]["line"] for e in evs if e["type"] == "node.output")
    assert lines == [f"rank={i} of 3 head={head} x=a b" for i in range(3)]
    assert all(e["data"]["cluster_id"] == cid and e["data"]["at"] for e in evs)

    # Billing: rates come from RunPod's pods, cost accrues per second.
    await asyncio.sleep(1.0)
    body = (await hangar.get(f"/clusters/{cid}")).json()
    rates = [n["hourly_rate"] for n in body["nodes"]]
    assert all(r > 0 for r in rates)
    assert abs(body["hourly_rate"] - sum(rates)) < 1e-6
    assert body["accrued_cost"] > 0
    assert body["accrued_cost"] <= sum(rates) * 60 / 3600  # well under a minute of billing

    assert len(sim.alive_pods()) == 3
    r = await hangar.delete(f"/clusters/{cid}")
    assert r.status_code == 202
    assert r.json()["status"] == "terminating"
    assert (await hangar.delete(f"/clusters/{cid}")).status_code == 202  # idempotent
    body = await wait_for(hangar, cid, {"terminated"})
    assert all(n["terminated_at"] for n in body["nodes"])
    assert sim.alive_pods() == []
    assert body["hourly_rate"] == 0
    frozen = body["accrued_cost"]
    await asyncio.sleep(0.3)
    assert (await hangar.get(f"/clusters/{cid}")).json()["accrued_cost"] == frozen
