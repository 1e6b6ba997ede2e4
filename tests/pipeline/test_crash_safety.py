"""A killed worker and a job run twice do no harm: no duplicate pods, setup runs once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from arq.constants import in_progress_key_prefix, retry_key_prefix
from sqlalchemy import func, select, update

from app.db.models import Cluster, Node
from app.redis_names import forget_all
from app.services import dispatch
from tests.support.stack import RunningWorker, WorkerProcesses, events, wait_for
from workers import leases
from workers.context import shutdown, startup
from workers.cron import reconcile, sweep
from workers.jobs import expire_cluster, node_step, poll_starting


async def test_worker_killed_mid_flight(hangar, sim, app_settings) -> None:
    # Creates take 1 s at the simulator, so the first kill lands while they are in flight.
    sim.faults.latency(1.0, endpoint="create", count=2)
    workers = WorkerProcesses(app_settings)
    restart, kill = workers.start, workers.kill

    try:
        await restart()
        r = await hangar.post("/clusters", json={
            "name": "crashy", "gpu_type": "4090", "nodes": 2,
            "setup": "echo start >> $HOME/runs; sleep 2; echo done",
        })
        cid = r.json()["id"]
        await asyncio.sleep(1.5)
        await kill()

        await restart()
        body = await wait_for(hangar, cid, {"bootstrapping", "ready", "failed"}, timeout=30)
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
    per_node = Counter(p.name.rsplit("-a", 1)[0] for p in sim.all_pods())
    assert sorted(per_node.values()) == [1, 1], per_node
    for pod in sim.alive_pods():
        assert (pod.workdir / "runs").read_text() == "start\n", "setup started exactly once"
    lines = [e["data"]["line"] for e in await events(hangar, cid) if e["type"] == "node.output"]
    assert sorted(lines) == ["done", "done"]


async def test_each_job_twice_in_a_row(hangar, sim, app_settings, db) -> None:
    """No worker runs: we call every job function twice by hand until the cluster is ready,
    then deleted; the outcome is the same as running each once."""
    dispatcher = await dispatch.connect(app_settings.redis_url, app_settings.redis_names)
    redis = dispatcher.redis
    ctx: dict = {"redis": redis}
    await startup(ctx, app_settings)
    try:
        r = await hangar.post("/clusters", json={"name": "twice", "gpu_type": "4090", "nodes": 2,
                                                 "setup": "echo hi", "ttl_seconds": 3600})
        cid = uuid.UUID(r.json()["id"])
        async with db() as session:
            node_ids = [str(n) for n in (await session.scalars(
                select(Node.id).where(Node.cluster_id == cid))).all()]

        async def twice_each() -> None:
            for nid in node_ids:
                await node_step(ctx, nid)
                await node_step(ctx, nid)
            await poll_starting(ctx)
            await poll_starting(ctx)
            await reconcile(ctx)
            await reconcile(ctx)
            await expire_cluster(ctx, str(cid))
            await expire_cluster(ctx, str(cid))

        for _ in range(60):
            await twice_each()
            if (await hangar.get(f"/clusters/{cid}")).json()["status"] == "ready":
                break
            await asyncio.sleep(0.2)
        body = (await hangar.get(f"/clusters/{cid}")).json()
        assert body["status"] == "ready", body
        assert len(sim.all_pods()) == 2 and sim.count("create_pod") == 2

        await hangar.delete(f"/clusters/{cid}")
        for _ in range(20):
            await twice_each()
            if (await hangar.get(f"/clusters/{cid}")).json()["status"] == "terminated":
                break
        assert (await hangar.get(f"/clusters/{cid}")).json()["status"] == "terminated"
        assert sim.alive_pods() == []
        assert await sweep(ctx["work"]) == 0

        evs = await events(hangar, cid)
        status_events = [(e["type"], e["data"].get("node")) for e in evs
                         if e["type"] not in ("node.output", "cluster.notice")]
        assert len(status_events) == len(set(status_events)), "no status change twice"
        assert sorted(e["data"]["line"] for e in evs if e["type"] == "node.output") == ["hi", "hi"]
    finally:
        await shutdown(ctx)
        await redis.aclose()


@pytest.mark.parametrize("leftover", ["in_progress", "over_tries"])
async def test_reconciler_job_left_by_a_killed_worker(hangar, app_settings, db, leftover) -> None:
    """Redis flushed, the reconciler re-enqueued a node, and the worker that took that job
    was killed: its "in progress" marker stays for arq's in-progress timeout (the longest
    job timeout plus 10 s, over 2 min here), or it was the job's third try and arq fails it.
    Either way the node goes on within seconds, not minutes (or an hour of a kept result)."""
    r = await hangar.post("/clusters", json={"name": "left", "gpu_type": "4090", "nodes": 1})
    cid = uuid.UUID(r.json()["id"])
    names = app_settings.redis_names
    await forget_all(app_settings.redis_url, names)  # the create's own wake-up is gone
    dispatcher = await dispatch.connect(app_settings.redis_url, names)
    ctx: dict = {"redis": dispatcher.redis}
    await startup(ctx, app_settings)
    try:
        async with db() as session, session.begin():
            node_id = await session.scalar(select(Node.id).where(Node.cluster_id == cid))
            await session.execute(update(Node).where(Node.id == node_id).values(
                next_check_at=func.now() - timedelta(seconds=10)))
        await reconcile(ctx)
        queued = [j.decode() for j in await dispatcher.redis.zrange(names.queue, 0, -1)]
        assert len(queued) == 1 and ":recover:" in queued[0], queued
        job_id = queued[0]
        if leftover == "in_progress":  # arq's mark of a started job, and the lease it took
            await dispatcher.redis.psetex(in_progress_key_prefix + job_id, 130_000, b"1")
            assert await leases.acquire(ctx["work"].autocommit, node_id, uuid.uuid4(), 1.0)
            await asyncio.sleep(1.1)
        else:  # started three times already (arq counts tries in this key)
            await dispatcher.redis.set(retry_key_prefix + job_id, 3)
    finally:
        await shutdown(ctx)
        await dispatcher.redis.aclose()
    worker = RunningWorker(app_settings)
    await worker.start()
    try:
        body = await wait_for(hangar, str(cid), {"ready", "failed"}, timeout=30)
        assert body["status"] == "ready", body
    finally:
        await worker.stop()


async def test_expiry_left_in_progress_by_a_killed_worker(hangar, worker, app_settings,
                                                          db) -> None:
    """A ready cluster's TTL is up, and the job that should expire it was taken by a worker
    that was killed: arq holds it "in progress" for minutes. The reconciler expires the
    cluster once it is overdue by HANGAR_RECONCILE_GRACE (2 s here)."""
    r = await hangar.post("/clusters", json={"name": "ttl", "gpu_type": "4090", "nodes": 1,
                                             "ttl_seconds": 3600})
    cid = r.json()["id"]
    assert (await wait_for(hangar, cid, {"ready", "failed"}))["status"] == "ready"
    async with db() as session, session.begin():
        expires_at = await session.scalar(
            update(Cluster).where(Cluster.id == uuid.UUID(cid))
            .values(expires_at=func.now() - timedelta(seconds=1))
            .returning(Cluster.expires_at))
    job_id = app_settings.redis_names.job_id("expire", cid, int(expires_at.timestamp() * 1000))
    dispatcher = await dispatch.connect(app_settings.redis_url, app_settings.redis_names)
    try:  # arq's mark of a started job: the killed worker's
        await dispatcher.redis.psetex(in_progress_key_prefix + job_id, 130_000, b"1")
    finally:
        await dispatcher.redis.aclose()
    body = await wait_for(hangar, cid, {"terminating", "terminated"}, timeout=15)
    assert body["reason"] == "ttl_expired", body
