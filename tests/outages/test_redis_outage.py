"""Redis stopped for 10 s with clusters in flight: the worker waits it out and resumes by
itself, the API accepts and deletes as usual (accepting is a database fact; waking the
workers is best effort), and everything ends as it would have: no pod left or doubled, no
event lost or repeated on the streams, one warning."""

from __future__ import annotations

import asyncio
import time

from tests.support.stack import events, wait_for

from .helpers import Follower, duplicate_pods, posted, status_of

SETUP = 'for i in 1 2 3 4; do echo "node $HANGAR_NODE_RANK line $i"; sleep 0.5; done'


async def test_redis_outage_delays_work_and_loses_nothing(stack_for, sim, outage_s) -> None:
    stack = await stack_for()
    client, worker = stack.client, stack.worker
    sim.configure(start_delay=1.5)  # pods take a while: nodes are in flight at the outage
    ids = [await posted(client, f"before-{i}", nodes=2, setup=SETUP) for i in range(3)]
    followers = {cid: Follower(client, cid) for cid in ids}
    # Some pods exist, none is ready: creating, starting or bootstrapping.
    for _ in range(100):
        if len(sim.all_pods()) >= 2:
            break
        await asyncio.sleep(0.05)

    stack.redis.stop()
    went_down = time.monotonic()
    during = await posted(client, "during", nodes=2, setup=SETUP)
    followers[during] = Follower(client, during)
    deleted = ids[2]
    r = await client.delete(f"/clusters/{deleted}")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "terminating"
    assert (await status_of(client, during))["status"] == "pending"
    while time.monotonic() - went_down < outage_s:
        assert worker.alive, worker.text()[-3000:]
        await asyncio.sleep(0.5)
    stack.redis.start()

    kept = [ids[0], ids[1], during]
    for cid in kept:
        body = await wait_for(client, cid, {"ready", "failed"}, timeout=60)
        assert body["status"] == "ready", body
    body = await wait_for(client, deleted, {"terminated"}, timeout=30)
    assert body["reason"] == "deleted"
    for cid in kept:
        assert (await client.delete(f"/clusters/{cid}")).status_code == 202
    for cid in kept:
        await wait_for(client, cid, {"terminated"}, timeout=30)
    assert worker.alive, "the worker outlived the outage"

    assert sim.alive_pods() == [], "no pod left running"
    assert duplicate_pods([p.name for p in sim.all_pods()]) == {}
    for cid, follower in followers.items():
        stored = [e["id"] for e in await events(client, cid)]
        assert stored == list(range(1, len(stored) + 1))
        assert await follower.done() == stored, "each event once, in order, on the stream"
    lines = [e["data"]["line"] for e in await events(client, ids[0]) if e["type"] == "node.output"]
    assert sorted(lines).count("node 0 line 1") == 1  # the setup ran once per node

    assert len(worker.warnings_about("Redis is unavailable")) == 1, worker.text()[-3000:]
    assert "Traceback" not in worker.text()
