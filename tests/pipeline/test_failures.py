"""Every failure path of docs/ARCHITECTURE.md, driven through the simulator's fault injection."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis.asyncio as aioredis

from tests.support.stack import clear_namespace, events, wait_for

PREFIX = "hangar-"


async def create(client, **fields) -> str:
    body = {"name": "c", "gpu_type": "NVIDIA GeForce RTX 4090", **fields}
    r = await client.post("/clusters", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def pods_per_node(sim) -> Counter:
    """How many pods the simulator ever created per (cluster, node)."""
    return Counter(p.name.rsplit("-a", 1)[0] for p in sim.all_pods())


async def test_no_capacity_anywhere(hangar, worker, sim) -> None:
    sim.faults.capacity(gpu_ids="NVIDIA GeForce RTX 4090")
    cid = await create(hangar, nodes=2)
    body = await wait_for(hangar, cid, {"failed"})
    assert body["reason"] == "no_capacity"
    assert all(n["status"] == "terminated" for n in body["nodes"])
    assert sim.alive_pods() == []
    notices = [e for e in await events(hangar, cid) if e["type"] == "cluster.notice"]
    assert any(e["data"].get("code") == "no_capacity_candidate" for e in notices)


async def test_capacity_in_second_data_center(hangar, worker, sim) -> None:
    catalog = (await hangar.get("/gpu-types", params={"name": "4090"})).json()
    rank = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}
    dcs = sorted((d for d in catalog[0]["data_centers"] if d["availability"] in rank),
                 key=lambda d: rank[d["availability"]])
    assert len(dcs) >= 2
    first = dcs[0]["id"]
    sim.faults.capacity(gpu_ids="NVIDIA GeForce RTX 4090", data_centers=first,
                        visible_in_catalog=True)
    cid = await create(hangar)
    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready", body
    assert body["nodes"][0]["data_center_id"] != first
    notices = [e["data"] for e in await events(hangar, cid) if e["type"] == "cluster.notice"]
    assert [n["code"] for n in notices] == ["no_capacity_candidate"]
    assert first in notices[0]["message"]
    assert len(sim.alive_pods()) == 1


async def test_rate_limits_and_server_errors(hangar, worker, sim) -> None:
    sim.faults.rate_limit(count=3, endpoint="create", retry_after=1)
    sim.faults.server_error(count=3, endpoint=["list_pods", "get_pod"], status=503)
    sim.faults.server_error(count=2, endpoint="list_gpus", status=502)
    cid = await create(hangar, nodes=2)
    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready", body
    assert max(pods_per_node(sim).values()) == 1
    assert sim.count("create_pod", status=429) == 3


async def test_create_5xx_after_creating_is_adopted(hangar, worker, sim) -> None:
    rule = sim.faults.lost_create(count=2, mode="drop")
    cid = await create(hangar, nodes=2)
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert rule.remaining == 0, "both creates lost their response"
    assert sim.count("create_pod") == 2, "adopted by name, never created again"
    per_node = pods_per_node(sim)
    assert sorted(per_node.values()) == [1, 1], per_node
    assert len(sim.alive_pods()) == 2


async def test_one_batch_of_creates_with_mixed_outcomes(hangar, worker, sim) -> None:
    """A cluster's first creates go out together; each failure takes its own path after:
    a lost response is adopted by name, a 5xx and no capacity are retried, one pod per node."""
    lost = sim.faults.lost_create(count=1, mode="drop")
    failed = sim.faults.server_error(count=1, endpoint="create", status=500)
    full = sim.faults.capacity(count=1, visible_in_catalog=False)
    cid = await create(hangar, nodes=6)
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert (lost.remaining, failed.remaining, full.remaining) == (0, 0, 0)
    assert sorted(pods_per_node(sim).values()) == [1] * 6
    assert len(sim.alive_pods()) == 6
    codes = [e["data"].get("code") for e in await events(hangar, cid) if e["type"] == "cluster.notice"]
    assert "no_capacity_candidate" in codes


async def test_pod_exits_while_starting(hangar, worker, sim) -> None:
    sim.faults.pod_timing(start_delay=5.0)
    sim.faults.exit_after(0.5, status="EXITED", count=1)
    cid = await create(hangar, nodes=2)
    body = await wait_for(hangar, cid, {"failed"}, timeout=10)
    assert body["reason"] == "pod_exited", body
    assert sim.alive_pods() == []


async def test_pod_never_gets_ip(hangar, worker, sim, app_settings) -> None:
    sim.faults.never_ip()
    cid = await create(hangar)
    body = await wait_for(hangar, cid, {"failed"},
                          timeout=app_settings.provision_timeout_s + 10)
    assert body["reason"] == "provision_timeout", body
    assert sim.alive_pods() == []


async def test_setup_fails(hangar, worker, sim) -> None:
    cid = await create(hangar, nodes=2, setup='echo "about to fail"; exit 3')
    body = await wait_for(hangar, cid, {"failed"})
    assert body["reason"] == "bootstrap_failed", body
    assert "status 3" in body["message"]
    assert sim.alive_pods() == []
    lines = [e["data"]["line"] for e in await events(hangar, cid) if e["type"] == "node.output"]
    assert "about to fail" in lines


async def test_host_key_changed_refuses_to_reconnect(hangar, worker, sim) -> None:
    """The first connection pins the key; a later one (the setup outlives a bootstrap step)
    meets another key: the node fails and nothing more runs on that server."""
    sim.faults.change_host_key(name_prefix=PREFIX)
    cid = await create(hangar, setup="echo started; sleep 6; echo finished")
    body = await wait_for(hangar, cid, {"failed"}, timeout=60)
    assert body["reason"] == "host_key_changed", body
    assert body["nodes"][0]["reason"] == "host_key_changed"
    lines = [e["data"]["line"] for e in await events(hangar, cid) if e["type"] == "node.output"]
    assert lines == ["started"]
    assert sim.alive_pods() == []


async def test_delete_during_creation(hangar, worker, sim) -> None:
    sim.faults.latency(1.0, endpoint="create")
    cid = await create(hangar, nodes=3)
    await asyncio.sleep(0.4)  # creates are in flight at the simulator
    r = await hangar.delete(f"/clusters/{cid}")
    assert r.status_code == 202
    body = await wait_for(hangar, cid, {"terminated"}, timeout=20)
    assert all(n["status"] == "terminated" for n in body["nodes"])
    await asyncio.sleep(0.5)
    assert sim.alive_pods() == []


async def test_redis_flushed_mid_flight(hangar, worker, sim, app_settings) -> None:
    await worker.stop()
    cid = await create(hangar, nodes=2)
    r = aioredis.from_url(app_settings.redis_url)
    assert await r.zcard(app_settings.redis_names.queue) == 1  # one job creates every node
    await r.aclose()
    # Every queued job is gone (as after a FLUSHDB): only the rows remember the work.
    await clear_namespace(app_settings.redis_url, app_settings.redis_names)
    await worker.start()
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=30)
    assert body["status"] == "ready", body
    assert max(pods_per_node(sim).values()) == 1


async def test_orphan_pod_is_swept(hangar, worker, sim) -> None:
    from app.providers import make_provider
    from app.providers.base import PodSpec
    from workers.cron import sweep

    provider = make_provider(worker.settings)
    try:
        orphan = await provider.create_pod(PodSpec(
            name="hangar-0000-n0-a1", image="img", gpu_type_id="NVIDIA GeForce RTX 4090",
            gpu_count=1, volume_gb=0))
        stranger = await provider.create_pod(PodSpec(
            name="someone-else", image="img", gpu_type_id="NVIDIA GeForce RTX 4090",
            gpu_count=1, volume_gb=0))
        await asyncio.sleep(worker.settings.orphan_grace_s + 0.2)
        swept = await sweep(worker.ctx["work"])
        assert swept == 1
        alive = {p.id for p in sim.alive_pods()}
        assert orphan.id not in alive and stranger.id in alive
    finally:
        await provider.aclose()


async def test_ttl_expires(hangar, worker, sim) -> None:
    cid = await create(hangar, ttl_seconds=1)
    body = await wait_for(hangar, cid, {"terminated", "failed"}, timeout=20)
    assert body["status"] == "terminated"
    assert body["reason"] == "ttl_expired"
    assert sim.alive_pods() == []


async def test_budget_refused_and_spot_rules(hangar) -> None:
    r = await hangar.post("/clusters", json={"name": "x", "gpu_type": "4090", "nodes": 4,
                                             "max_hourly_cost": 0.01})
    assert r.status_code == 422
    assert r.json()["code"] == "max_hourly_cost_exceeded"
    r = await hangar.post("/clusters", json={"name": "x", "gpu_type": "4090", "allocation": "spot"})
    assert r.status_code == 422 and "spot" in r.json()["detail"]
    r = await hangar.post("/clusters", json={"name": "x", "gpu_type": "h100"})
    assert r.status_code == 422 and r.json()["code"] == "ambiguous_gpu_type"
    r = await hangar.post("/clusters", json={"name": "x", "gpu_type": "tpu-v5"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_gpu_type"


async def test_low_balance_stops_with_budget_exceeded(hangar, worker, sim) -> None:
    """RunPod answers a create 402 (balance too low; its guidance: stop). The node fails at
    once with budget_exceeded, nothing is retried, and the sibling pod that was created is
    torn down with the cluster."""
    rule = sim.faults.low_balance(count=1)
    cid = await create(hangar, nodes=2)
    body = await wait_for(hangar, cid, {"failed"})
    assert body["reason"] == "budget_exceeded", body
    assert "Insufficient balance" in body["message"]
    assert rule.remaining == 0
    assert sim.count("create_pod", status=402) == 1
    assert sim.count("create_pod") == 2, "a 402 is never retried"
    assert all(n["status"] == "terminated" for n in body["nodes"])
    assert sim.alive_pods() == []


async def test_billed_price_above_max_hourly_cost(hangar, worker, sim) -> None:
    """The quote fits max_hourly_cost, but the running pods bill more (RunPod's price moved
    between the quote and the create): the cluster fails with budget_exceeded as soon as the
    rates are known, before bootstrap, and no pod is left running."""
    gpu = (await hangar.get("/gpu-types", params={"name": "4090"})).json()[0]
    quote = 2 * gpu["price_secure"]
    sim.faults.price_change(1.5)
    cid = await create(hangar, nodes=2, cloud_type="secure", max_hourly_cost=round(quote * 1.2, 4))
    body = await wait_for(hangar, cid, {"failed"})
    assert body["reason"] == "budget_exceeded", body
    assert "above max_hourly_cost" in body["message"]
    assert all(n["status"] == "terminated" for n in body["nodes"])
    assert not any(e["type"] == "node.output" for e in await events(hangar, cid))
    assert sim.alive_pods() == []


async def test_spot_if_available_falls_back(hangar, worker, sim) -> None:
    cid = await create(hangar, allocation="spot-if-available")
    evs = await events(hangar, cid)
    assert any(e["data"].get("code") == "spot_fallback" for e in evs)
    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready"


async def test_output_is_bounded_and_drops_are_announced(hangar, worker, sim) -> None:
    setup = "python3 -c \"print('x' * 5000)\"; seq 1 1000"
    cid = await create(hangar, setup=setup)
    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready", body
    evs = await events(hangar, cid)
    lines = [e["data"]["line"] for e in evs if e["type"] == "node.output"]
    dropped = sum(e["data"]["dropped"] for e in evs
                  if e["type"] == "cluster.notice" and e["data"].get("code") == "output_dropped")
    assert dropped > 0, "a burst of 1,001 lines exceeds the per-read bound"
    assert len(lines) + dropped == 1001
    assert len(lines[0]) < 1100 and lines[0].endswith("[truncated]")


async def test_long_retry_after_delays_the_node_not_the_job(hangar, worker, sim, db) -> None:
    """A 429 whose Retry-After is longer than a job may run is handed to the node: it is
    looked at again then, and no job sleeps on it or times out."""
    from sqlalchemy import select

    from app.db.models import Node
    from app.services.state import utcnow

    sim.faults.rate_limit(count=1, endpoint="create", retry_after=120)
    cid = await create(hangar)
    for _ in range(100):
        notices = [e["data"] for e in await events(hangar, cid) if e["type"] == "cluster.notice"]
        if notices:
            break
        await asyncio.sleep(0.1)
    assert [n["code"] for n in notices] == ["provider_retry"]
    assert "120.0s" in notices[0]["message"]
    async with db() as session:
        node = (await session.scalars(select(Node))).one()
    assert node.status == "creating" and node.pod_id is None
    assert (node.next_check_at - utcnow()).total_seconds() > 100
    await asyncio.sleep(3)  # longer than a job may run here (lease 10 s - 5 s)
    assert sim.count("create_pod") == 1  # asked once; no retry inside the job
    assert worker.worker.jobs_failed == 0  # nothing timed out
    async with db() as session:
        node = (await session.scalars(select(Node))).one()
    assert node.status == "creating" and node.lease_owner is None
