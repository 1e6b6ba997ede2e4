"""Events committed in another process reach an API process's SSE clients through Redis:
an appender subprocess, and a real worker process driving a cluster at the simulator."""

from __future__ import annotations

import asyncio
import sys
import textwrap

from tests.support.events import make_cluster, open_stream, read_events
from tests.support.stack import events as all_events
from tests.support.stack import eventually, hub_of, settings_env

APPENDER = textwrap.dedent("""
    import asyncio, sys, time, uuid
    from app.db.session import make_engine, make_sessionmaker
    from app.services import dispatch
    from app.services.state import locked_cluster
    from app.settings import get_settings

    async def main(cluster_id, n):
        settings = get_settings()
        engine = make_engine(settings.database_url, pool_size=1)
        dispatcher = await dispatch.connect(settings.redis_url, settings.redis_names)
        sessionmaker = make_sessionmaker(engine)
        for i in range(n):
            await asyncio.sleep(0.1)
            async with locked_cluster(sessionmaker, uuid.UUID(cluster_id), dispatcher) as tx:
                tx.notice("from another process", i=i)
        await dispatcher.redis.aclose()
        await engine.dispose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


async def test_event_appended_by_another_process_reaches_the_stream(
        db, teams, served, app_settings) -> None:
    hub = hub_of(served)
    hub.poll_s = 60.0  # only the Redis notification can deliver within this test
    await eventually(lambda: hub.connected)
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    async with open_stream(alpha.client, cid) as (_, events):
        assert [e.id for e in await read_events(events, count=1)] == [1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", APPENDER, str(cid), "5", env=settings_env(app_settings))
        try:
            got = await read_events(events, count=5, timeout=30)
        finally:
            await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    assert [e.id for e in got] == [2, 3, 4, 5, 6]
    assert [e.data["i"] for e in got] == [0, 1, 2, 3, 4]
    assert all(e.data["message"] == "from another process" for e in got)


async def test_worker_process_changes_reach_a_client_of_the_api(hangar, app_settings,
                                                                sim) -> None:
    """A cluster's whole life, driven by `hangar worker` in its own process, seen live by
    one stream on the API (uvicorn): every event once, in order, and then the end."""
    hub = hangar.served.server.config.app.state.hub
    hub.poll_s = 60.0
    await eventually(lambda: hub.connected)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", env=settings_env(app_settings),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        r = await hangar.post("/clusters", json={"name": "streamed", "gpu_type": "4090",
                                                 "nodes": 2, "setup": "echo hello"})
        assert r.status_code == 202, r.text
        cid = r.json()["id"]
        seen = []
        try:
            async with open_stream(hangar, cid) as (_, stream), asyncio.timeout(45):
                async for ev in stream:
                    if ev.id is None:
                        continue
                    seen.append(ev)
                    if ev.type == "cluster.ready":
                        await hangar.delete(f"/clusters/{cid}")
                # The loop ended: the server closed the stream after the last event.
        except TimeoutError:
            listed = [(e["id"], e["type"]) for e in await all_events(hangar, cid)]
            raise AssertionError(f"stream stalled: saw {[(e.id, e.type) for e in seen]}; "
                                 f"the database has {listed}") from None
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 20)

    types = [e.type for e in seen]
    for t in ("cluster.pending", "cluster.provisioning", "cluster.bootstrapping",
              "cluster.ready", "cluster.terminating", "cluster.terminated"):
        assert types.count(t) == 1, (t, types)
    assert types.index("cluster.ready") < types.index("cluster.terminating")
    assert types[-1] == "cluster.terminated"
    for node in (0, 1):
        mine = [e.data["status"] for e in seen if e.type.startswith("node.")
                and e.type != "node.output" and e.data["node"] == node]
        assert mine[0] == "pending" and mine[-1] == "terminated" and "ready" in mine
    assert sorted(e.data["line"] for e in seen if e.type == "node.output") == ["hello"] * 2
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))
    # The stream and the JSON listing agree: nothing missed, nothing extra.
    assert [(e["id"], e["type"]) for e in await all_events(hangar, cid)] == \
        [(e.id, e.type) for e in seen]
