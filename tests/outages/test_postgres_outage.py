"""Postgres stopped for 10 s with clusters bootstrapping: every route answers 503
problem+json with Retry-After on a connection that stays open, the worker waits it out
(one warning, no traceback per job), and once the database is back the work resumes at
once: the leases the worker could not give back meanwhile are given back then, not waited
out (two minutes here)."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from tests.support.stack import assert_problem, events, wait_for

from .helpers import Follower, duplicate_pods, posted

SETUP = 'for i in $(seq 1 8); do echo "node $HANGAR_NODE_RANK line $i"; sleep 0.5; done'


async def test_postgres_outage_answers_503_then_resumes_at_once(
    stack_for, sim, outage_s, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="hangar.outages")
    stack = await stack_for(lease_s=120.0)
    client, worker = stack.client, stack.worker
    sim.configure(start_delay=0.5)
    ids = [await posted(client, f"busy-{i}", nodes=2, setup=SETUP) for i in range(3)]
    followers = {cid: Follower(client, cid) for cid in ids}
    # Bootstrap steps under way: node leases held, output being written.
    for _ in range(200):
        if any(e["type"] == "node.output" for e in await events(client, ids[-1])):
            break
        await asyncio.sleep(0.05)

    stack.postgres.stop()
    went_down = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.served.url, headers=client.headers,
                                 limits=httpx.Limits(max_connections=1)) as probe:
        answers = [
            await probe.get("/clusters"),
            await probe.get(f"/clusters/{ids[0]}"),
            await probe.get(f"/clusters/{ids[0]}/events"),
            await probe.post("/clusters", json={"name": "late", "gpu_type": "4090"}),
            await probe.delete(f"/clusters/{ids[0]}"),
        ]
        for r in answers:
            assert_problem(r, 503, "database_unavailable")
            assert int(r.headers["Retry-After"]) > 0
            assert r.headers.get("connection") != "close"
        local = {r.extensions["network_stream"].get_extra_info("client_addr") for r in answers}
        assert len(local) == 1, "every answer on the one kept-alive connection"
    while time.monotonic() - went_down < outage_s:
        assert worker.alive, worker.text()[-3000:]
        await asyncio.sleep(0.5)
    stack.postgres.start()
    back = time.monotonic()

    for cid in ids:
        # Well within the lease: leases held at the outage are not waited out.
        body = await wait_for(client, cid, {"ready", "failed"}, timeout=60)
        assert body["status"] == "ready", body
    resumed_in = time.monotonic() - back
    assert resumed_in < stack.settings.lease_s / 2, resumed_in
    for cid in ids:
        assert (await client.delete(f"/clusters/{cid}")).status_code == 202
    for cid in ids:
        await wait_for(client, cid, {"terminated"}, timeout=30)
    assert worker.alive

    assert sim.alive_pods() == []
    assert duplicate_pods([p.name for p in sim.all_pods()]) == {}
    for cid, follower in followers.items():
        stored = [e["id"] for e in await events(client, cid)]
        assert stored == list(range(1, len(stored) + 1))
        assert await follower.done() == stored
        lines = [e for e in await events(client, cid) if e["type"] == "node.output"]
        assert len(lines) == 16, "each line of both nodes once"

    assert len(worker.warnings_about("the database is unavailable")) == 1, worker.text()[-3000:]
    assert "Traceback" not in worker.text()
    api_warnings = [r for r in caplog.records if r.getMessage().startswith(
        "the database is unavailable")]
    assert len(api_warnings) == 1, [r.getMessage() for r in caplog.records]
