"""`PATCH /clusters/{id}` changes a live cluster's TTL: extend, shorten (an expiry already
past tears it down now), clear; a cluster that has ended is a 409."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from tests.support.stack import assert_problem, events, wait_for


async def ready_cluster(hangar, **fields) -> dict:
    r = await hangar.post("/clusters", json={"name": "ttl", "gpu_type": "4090", **fields})
    assert r.status_code == 202, r.text
    return await wait_for(hangar, r.json()["id"], {"ready"})


async def test_extend_then_clear_the_ttl(hangar, worker, sim) -> None:
    body = await ready_cluster(hangar, ttl_seconds=4)
    cid, ready_at = body["id"], datetime.fromisoformat(body["ready_at"])
    r = await hangar.patch(f"/clusters/{cid}", json={"ttl_seconds": 3600})
    assert r.status_code == 200, r.text
    assert r.json()["ttl_seconds"] == 3600
    assert datetime.fromisoformat(r.json()["expires_at"]) == ready_at + timedelta(hours=1)
    assert (await hangar.get(f"/clusters/{cid}")).json()["expires_at"] == r.json()["expires_at"]
    await asyncio.sleep(5)  # past the first expiry: its check finds the new one and waits
    assert (await hangar.get(f"/clusters/{cid}")).json()["status"] == "ready"
    r = await hangar.patch(f"/clusters/{cid}", json={"ttl_seconds": None})
    assert r.status_code == 200 and r.json()["ttl_seconds"] is None
    assert r.json()["expires_at"] is None
    notices = [e["data"] for e in await events(hangar, cid)
               if e["type"] == "cluster.notice" and e["data"].get("code") == "ttl_changed"]
    assert [(n["previous_ttl_seconds"], n["ttl_seconds"]) for n in notices] == [
        (4, 3600), (3600, None)]


async def test_shorten_tears_down_at_the_new_time(hangar, worker, sim) -> None:
    body = await ready_cluster(hangar, ttl_seconds=3600)
    cid = body["id"]
    ready_at = datetime.fromisoformat(body["ready_at"])
    elapsed = (datetime.now(ready_at.tzinfo) - ready_at).total_seconds()
    r = await hangar.patch(f"/clusters/{cid}", json={"ttl_seconds": int(elapsed) + 3})
    assert r.status_code == 200 and r.json()["status"] == "ready"
    done = await wait_for(hangar, cid, {"terminated"}, timeout=30)
    assert done["reason"] == "ttl_expired"
    assert sim.alive_pods() == []


async def test_an_expiry_already_past_tears_down_now(hangar, worker, sim) -> None:
    body = await ready_cluster(hangar)
    await asyncio.sleep(1.1)
    r = await hangar.patch(f"/clusters/{body['id']}", json={"ttl_seconds": 1})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "terminating" and r.json()["reason"] == "ttl_expired"
    await wait_for(hangar, body["id"], {"terminated"})


async def test_a_ttl_set_before_ready_counts_from_ready(hangar, worker, sim) -> None:
    r = await hangar.post("/clusters", json={"name": "early", "gpu_type": "4090"})
    cid = r.json()["id"]
    r = await hangar.patch(f"/clusters/{cid}", json={"ttl_seconds": 2})
    assert r.status_code == 200 and r.json()["expires_at"] is None  # not ready yet
    body = await wait_for(hangar, cid, {"ready"})
    assert datetime.fromisoformat(body["expires_at"]) == (
        datetime.fromisoformat(body["ready_at"]) + timedelta(seconds=2))
    done = await wait_for(hangar, cid, {"terminated"}, timeout=30)
    assert done["reason"] == "ttl_expired"


async def test_ended_clusters_and_bad_bodies(hangar, client_for, worker, sim) -> None:
    body = await ready_cluster(hangar)
    cid = body["id"]
    for bad in ({}, {"ttl_seconds": 0}, {"ttl_seconds": "60"}, {"ttl_seconds": 60, "x": 1}):
        assert_problem(await hangar.patch(f"/clusters/{cid}", json=bad), 422)
    beta = await client_for("beta")
    assert_problem(await beta.patch(f"/clusters/{cid}", json={"ttl_seconds": 60}), 404)
    await hangar.delete(f"/clusters/{cid}")
    assert_problem(await hangar.patch(f"/clusters/{cid}", json={"ttl_seconds": 60}), 409,
                   "cluster_ended")
    await wait_for(hangar, cid, {"terminated"})
    assert_problem(await hangar.patch(f"/clusters/{cid}", json={"ttl_seconds": 60}), 409,
                   "cluster_ended")
