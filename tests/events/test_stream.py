"""GET /clusters/{id}/events: the SSE wire format, replay and resume, when the stream ends,
heartbeats, the JSON page, who may read it, and delivery when Redis says nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

from app.domain.status import NodeStatus
from app.services.state import locked_cluster
from tests.support.events import (
    SSE,
    append,
    finish,
    make_cluster,
    open_stream,
    read_events,
    sse_events,
)
from tests.support.stack import HEARTBEAT_S, eventually, hub_of


async def test_replay_of_a_finished_cluster_then_the_stream_ends(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    await append(db, cid, 3, dispatcher)
    last = await finish(db, cid, dispatcher)
    assert last == 7

    # A finished cluster: the whole stream is a finite body.
    r = await alpha.client.get(f"/clusters/{cid}/events", headers=SSE)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    body = r.text
    assert body.startswith(": connected\nretry: 2000\n\n")
    blocks = [b for b in body.split("\n\n") if b and not b.startswith(":")]
    assert len(blocks) == 7
    first = dict(line.split(": ", 1) for line in blocks[0].split("\n"))
    assert first["id"] == "1" and first["event"] == "cluster.pending"
    data = json.loads(first["data"])
    assert data["cluster_id"] == str(cid) and data["status"] == "pending" and data["at"]

    async with open_stream(alpha.client, cid) as (_, events):
        got = await read_events(events)  # ends by itself
    assert [e.id for e in got] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.type for e in got] == ["cluster.pending", *["cluster.notice"] * 3,
                                     "cluster.terminating", "node.terminated",
                                     "cluster.terminated"]
    assert [e.data["i"] for e in got[1:4]] == [0, 1, 2]
    assert got[-1].data["status"] == "terminated"


async def test_stream_ends_only_once_every_node_is_terminated(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id, nodes=1, node_status="starting")
    async with open_stream(alpha.client, cid) as (_, events):
        assert [e.id for e in await read_events(events, count=1)] == [1]
        async with locked_cluster(db, cid, dispatcher) as tx:
            tx.fail_node(tx.nodes[0], "pod_exited", "the pod exited")
        got = await read_events(events, count=2)
        assert {e.type for e in got} == {"node.terminating", "cluster.failed"}

        # The cluster is terminal but its node is not gone yet: the stream stays open.
        beats = 0
        async with asyncio.timeout(HEARTBEAT_S * 4):
            async for ev in events:
                assert ev.id is None, f"unexpected event {ev}"
                beats += "heartbeat" in ev.comments
                if beats == 2:
                    break

        async with locked_cluster(db, cid, dispatcher) as tx:
            tx.set_node_status(tx.nodes[0], NodeStatus.TERMINATED)
        rest = await read_events(events)  # ends by itself after the last event
    assert [e.type for e in rest] == ["node.terminated", "cluster.torn_down"]
    assert [e.id for e in got + rest] == [2, 3, 4, 5]


async def test_heartbeats_keep_an_idle_stream_open(db, teams) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    async with open_stream(alpha.client, cid) as (response, events):
        assert response.status_code == 200
        seen = []
        async with asyncio.timeout(HEARTBEAT_S * 6):
            async for ev in events:
                seen.append(ev)
                if sum("heartbeat" in e.comments for e in seen) == 3:
                    break
    ids = [e.id for e in seen if e.id is not None]
    assert ids == [1]
    assert seen[0].comments == ["connected"] and seen[0].retry == 2000


async def test_resume_with_last_event_id_misses_nothing(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    await append(db, cid, 9, dispatcher)
    async with open_stream(alpha.client, cid) as (_, events):
        part1 = await read_events(events, count=4)
    # Disconnected: more happens meanwhile, and more while the second stream runs.
    await append(db, cid, 5, dispatcher)
    async with open_stream(alpha.client, cid, last_event_id=part1[-1].id, after=0) as (_, ev2):
        part2 = await read_events(ev2, count=6)
        await append(db, cid, 3, dispatcher)
        final = await finish(db, cid, dispatcher)
        part2 += await read_events(ev2)
    ids = [e.id for e in part1 + part2]
    assert ids == list(range(1, final + 1)), "the header wins over ?after, no gap, no repeat"

    # `after` alone resumes the same way (for clients that cannot set headers).
    async with open_stream(alpha.client, cid, after=final - 3) as (_, ev3):
        assert [e.id for e in await read_events(ev3)] == [final - 2, final - 1, final]


async def test_resume_from_before_what_the_process_keeps(db, teams, dispatcher,
                                                         served) -> None:
    """A client far behind reads the database, then joins the shared in-memory tail."""
    hub_of(served).keep = 4
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    async with open_stream(alpha.client, cid) as (_, live):
        await read_events(live, count=1)
        await append(db, cid, 40, dispatcher, per_tx=5)
        assert [e.id for e in await read_events(live, count=40)] == list(range(2, 42))
        feed = hub_of(served).feed_of(cid)
        assert feed.base > 3 and len(feed.frames) <= 4
        async with open_stream(alpha.client, cid, last_event_id=3) as (_, behind):
            got = await read_events(behind, count=38)
            await append(db, cid, 2, dispatcher)
            got += await read_events(behind, count=2)
    assert [e.id for e in got] == list(range(4, 44))


async def test_json_page(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    await append(db, cid, 4, dispatcher)
    url = f"/clusters/{cid}/events"
    page = (await alpha.client.get(url, params={"limit": 3})).json()
    assert [e["id"] for e in page["items"]] == [1, 2, 3]
    assert page["last_id"] == 3 and page["finished"] is False
    assert page["items"][0] == {"id": 1, "type": "cluster.pending",
                                "data": page["items"][0]["data"]}
    page = (await alpha.client.get(url, params={"after": 3},
                                   headers={"Accept": "application/json"})).json()
    assert [e["id"] for e in page["items"]] == [4, 5] and page["finished"] is False

    final = await finish(db, cid, dispatcher)
    page = (await alpha.client.get(url, params={"after": 5, "limit": 1})).json()
    assert [e["id"] for e in page["items"]] == [6] and page["finished"] is False  # cut short
    page = (await alpha.client.get(url, params={"after": 5})).json()
    assert page["last_id"] == final and page["finished"] is True
    page = (await alpha.client.get(url, params={"after": final})).json()
    assert page == {"items": [], "last_id": final, "finished": True}


async def test_a_team_streams_only_its_own_clusters(db, teams, served) -> None:
    alpha, beta = teams["alpha"], teams["beta"]
    cid = await make_cluster(db, alpha.id)
    for headers in (SSE, {"Accept": "application/json"}):
        r = await beta.client.get(f"/clusters/{cid}/events", headers=headers)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
        r = await alpha.client.get(f"/clusters/{uuid.uuid4()}/events", headers=headers)
        assert r.status_code == 404
    assert hub_of(served).subscribers == 0 and hub_of(served).feeds == 0

    async with open_stream(beta.client, cid) as (response, _):
        assert response.status_code == 404
    anonymous = await alpha.client.get(f"/clusters/{cid}/events", headers={
        **SSE, "Authorization": ""})
    assert anonymous.status_code == 401

    for bad in ("seven", "-1", "1.5", str(2**63)):
        r = await alpha.client.get(f"/clusters/{cid}/events",
                                   headers={**SSE, "Last-Event-ID": bad})
        assert r.status_code == 422 and r.json()["code"] == "invalid_last_event_id", bad
    for after in (-1, 2**63):
        r = await alpha.client.get(f"/clusters/{cid}/events", params={"after": after})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"


async def test_live_events_arrive_through_the_redis_notification(db, teams, dispatcher,
                                                                 served) -> None:
    hub = hub_of(served)
    hub.poll_s = 60.0  # no fallback poll within this test: only the notification can wake
    await eventually(lambda: hub.connected)
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    async with open_stream(alpha.client, cid) as (_, events):
        assert [e.id for e in await read_events(events, count=1)] == [1]
        for i in range(3):
            await append(db, cid, 1, dispatcher)
            got = await read_events(events, count=1, timeout=5)
            assert got[0].id == 2 + i


async def test_missed_notifications_are_delivered_by_the_fallback_poll(db, teams, dispatcher,
                                                                       served) -> None:
    hub = hub_of(served)
    hub.poll_s = 0.3
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    async with open_stream(alpha.client, cid) as (_, events):
        assert [e.id for e in await read_events(events, count=1)] == [1]
        # Committed but never announced (a publish lost on the way).
        await append(db, cid, 3, None)
        assert [e.id for e in await read_events(events, count=3, timeout=5)] == [2, 3, 4]
        # Garbage on the channel is ignored; announcements still work afterwards.
        for junk in ("garbage", "not-a-uuid 5", f"{cid} not-a-number", f"{cid}", ""):
            await dispatcher.redis.publish(dispatcher.names.events, junk)
        feed = hub.feed_of(cid)
        feed.poll_s = 60.0
        await asyncio.sleep(0.4)  # the poll under way ends; the next one is a minute away
        await append(db, cid, 1, dispatcher)
        assert [e.id for e in await read_events(events, count=1, timeout=5)] == [5]
        assert hub.connected


async def test_a_lost_redis_subscription_delays_nothing(db, teams, dispatcher,
                                                      served) -> None:
    """One subscription per process, however many streams; when Redis drops it, the hub
    resubscribes and every feed reads again, so what was announced meanwhile still comes."""
    hub = hub_of(served)
    hub.poll_s = 60.0  # no fallback poll within this test
    await eventually(lambda: hub.connected)
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    async with contextlib.AsyncExitStack() as streams:
        readers = []
        for _ in range(5):
            _, events = await streams.enter_async_context(open_stream(alpha.client, cid))
            assert [e.id for e in await read_events(events, count=1)] == [1]
            readers.append(events)
        redis = dispatcher.redis
        mine = [c for c in await redis.client_list() if c.get("name") == hub.client_name]
        assert len(mine) == 1, "one Redis subscription for the whole process"

        await redis.client_kill_filter(_id=mine[0]["id"])
        await append(db, cid, 1, dispatcher)  # announced while the hub is likely away
        for events in readers:
            assert [e.id for e in await read_events(events, count=1, timeout=10)] == [2]
        await eventually(lambda: hub.connected)
        mine = [c for c in await redis.client_list() if c.get("name") == hub.client_name]
        assert len(mine) == 1


async def test_sse_parser_sanity() -> None:
    """The helper parses what format_sse_event writes (multi-line data included)."""
    from fastapi.sse import format_sse_event

    body = (format_sse_event(comment="c", retry=5)
            + format_sse_event(id="7", event="x", data_str='{"a":\n1}'))

    class Fake:
        async def aiter_lines(self):
            for line in body.decode().split("\n"):
                yield line

    got = [e async for e in sse_events(Fake())]  # type: ignore[arg-type]
    assert got[0].comments == ["c"] and got[0].retry == 5
    assert (got[1].id, got[1].type, got[1].data) == (7, "x", {"a": 1})
