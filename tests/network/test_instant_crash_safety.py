"""`network: cluster` with a worker SIGKILLed mid-create and mid-bootstrap, and every job run
twice by hand: one Instant Cluster, the setup started once per member."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from app.db.models import Node
from app.services import dispatch
from tests.support.stack import WorkerProcesses, events, wait_for
from workers.context import shutdown, startup
from workers.cron import reconcile, sweep
from workers.jobs import node_step, poll_starting

GPU = "NVIDIA GeForce RTX 4090"


async def test_worker_killed_mid_create_and_mid_bootstrap(hangar, sim, app_settings) -> None:
    # The create takes 1.5 s at the simulator (and creates): the first kill lands in flight.
    sim.faults.latency(1.5, endpoint="create_cluster", count=1)
    workers = WorkerProcesses(app_settings)
    restart, kill = workers.start, workers.kill

    try:
        await restart()
        r = await hangar.post("/clusters", json={
            "name": "crashy", "gpu_type": GPU, "network": "cluster", "nodes": 3,
            "setup": "echo start >> $HOME/runs; sleep 2; echo done",
        })
        cid = r.json()["id"]
        for _ in range(100):  # until the create reached the simulator
            if sim.count("create_cluster"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        await kill()

        await restart()
        body = await wait_for(hangar, cid, {"bootstrapping", "ready", "failed"}, timeout=40)
        assert body["status"] != "failed", body
        while (await hangar.get(f"/clusters/{cid}")).json()["status"] == "bootstrapping":  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # kill it again while the setup runs
        await asyncio.sleep(0.3)
        await kill()

        await restart()
        body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
        assert body["status"] == "ready", body
    finally:
        await workers.stop()  # never leave a worker behind to take other tests' jobs
    assert len(sim.all_clusters()) == 1, "the create in flight was adopted, not repeated"
    assert body["provider_cluster_id"] == sim.all_clusters()[0].id
    members = sim.alive_pods()
    assert len(members) == 3
    for pod in members:
        assert (pod.workdir / "runs").read_text() == "start\n", "setup started exactly once"
    lines = [e["data"]["line"] for e in await events(hangar, cid) if e["type"] == "node.output"]
    assert sorted(lines) == ["done"] * 3


async def test_each_job_twice_in_a_row(hangar, sim, app_settings, db) -> None:
    """No worker runs: every job function is called twice by hand until the cluster is
    ready, then deleted; the outcome is the same as running each once."""
    dispatcher = await dispatch.connect(app_settings.redis_url, app_settings.redis_names)
    redis = dispatcher.redis
    ctx: dict = {"redis": redis}
    await startup(ctx, app_settings)
    try:
        r = await hangar.post("/clusters", json={"name": "twice", "gpu_type": GPU, "nodes": 2,
                                                 "network": "cluster", "setup": "echo hi"})
        cid = uuid.UUID(r.json()["id"])
        async with db() as session:
            node_ids = [str(n) for n in (await session.scalars(
                select(Node.id).where(Node.cluster_id == cid).order_by(Node.index))).all()]

        async def twice_each() -> None:
            for nid in node_ids:
                await node_step(ctx, nid)
                await node_step(ctx, nid)
            await poll_starting(ctx)
            await poll_starting(ctx)
            await reconcile(ctx)
            await reconcile(ctx)

        for _ in range(60):
            await twice_each()
            if (await hangar.get(f"/clusters/{cid}")).json()["status"] == "ready":
                break
            await asyncio.sleep(0.2)
        body = (await hangar.get(f"/clusters/{cid}")).json()
        assert body["status"] == "ready", body
        assert len(sim.all_clusters()) == 1 and sim.count("create_cluster") == 1

        await hangar.delete(f"/clusters/{cid}")
        for _ in range(20):
            await twice_each()
            if (await hangar.get(f"/clusters/{cid}")).json()["status"] == "terminated":
                break
        assert (await hangar.get(f"/clusters/{cid}")).json()["status"] == "terminated"
        assert sim.alive_clusters() == [] and sim.alive_pods() == []
        assert sim.count("delete_cluster") == 1
        assert await sweep(ctx["work"]) == 0

        evs = await events(hangar, cid)
        status_events = [(e["type"], e["data"].get("node")) for e in evs
                         if e["type"] not in ("node.output", "cluster.notice")]
        assert len(status_events) == len(set(status_events)), "no status change twice"
        assert sorted(e["data"]["line"] for e in evs if e["type"] == "node.output") == ["hi"] * 2
    finally:
        await shutdown(ctx)
        await redis.aclose()
