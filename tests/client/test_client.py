"""hangar_client against the real API, worker and RunPod simulator: what a service that
imports the client sees."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hangar_client import (
    AsyncHangarClient,
    ClusterFailed,
    ClusterStatus,
    ClusterStatusChanged,
    Event,
    HangarClient,
    InvalidRequest,
    NodeOutput,
    NodeStatus,
    NodeStatusChanged,
    NotFound,
    RateLimited,
    Unauthorized,
)
from sqlalchemy import update

from app.db.models import Team
from tests.client.conftest import GPU, in_thread
from tests.client.proxy import CuttingProxy

SETUP = "echo first line; sleep 0.5; echo second line"


def client(url: str, token: str, **kw) -> HangarClient:
    return HangarClient(url, token, backoff=0.05, max_backoff=0.5, **kw)


async def event_page(url: str, token: str, cluster_id: str) -> list[dict]:
    """Every event so far, from the JSON form of the events route."""
    out: list[dict] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}
                                 ) as http:
        after = 0
        while True:
            page = (await http.get(f"/clusters/{cluster_id}/events",
                                   params={"after": after})).json()
            out += page["items"]
            if not page["items"]:
                return out
            after = page["last_id"]


async def test_create_wait_follow_delete(served, worker, sim, token) -> None:
    def scenario() -> tuple:
        with client(served.url, token) as hangar:
            created = hangar.create_cluster("train", GPU, nodes=2, setup=SETUP,
                                            env={"WHO": "client"})
            seen: list[Event] = []
            ready = hangar.wait_until_ready(created.id, timeout=60, on_event=seen.append)
            followed = []
            for event in hangar.events(created.id):
                followed.append(event)
                if isinstance(event, ClusterStatusChanged) and event.status == "ready":
                    break
            listed = list(hangar.list_clusters(page_size=1))
            gone = hangar.delete_cluster(created.id, wait=True, timeout=60)
            return created, seen, ready, followed, listed, gone

    created, seen, ready, followed, listed, gone = await in_thread(scenario)

    assert created.status == ClusterStatus.PENDING and created.name == "train"
    assert created.env == {"WHO": "client"} and created.node_count == 2
    assert ready.status == ClusterStatus.READY and ready.id == created.id
    assert [n.status for n in ready.nodes] == [NodeStatus.READY] * 2
    assert all(n.public_ip and n.ssh_port and n.hourly_rate for n in ready.nodes)
    assert ready.hourly_rate == pytest.approx(sum(n.hourly_rate for n in ready.nodes))
    # wait_until_ready showed the way there, event by event, ready last.
    assert isinstance(seen[-1], ClusterStatusChanged) and seen[-1].status == "ready"
    # events() from the start: every event once, in order, typed.
    assert [e.id for e in followed] == list(range(1, len(followed) + 1))
    assert [e.id for e in seen] == [e.id for e in followed]
    lines = [e.line for e in followed if isinstance(e, NodeOutput)]
    assert sorted(lines) == sorted(["first line", "second line"] * 2)
    assert {e.node for e in followed if isinstance(e, NodeStatusChanged)} == {0, 1}
    # list_clusters followed the pages (one cluster a page here).
    assert [c.id for c in listed] == [created.id]
    # delete(wait=True) returns once every pod is confirmed gone.
    assert gone.status == ClusterStatus.TERMINATED and gone.reason == "deleted"
    assert gone.finished and sim.alive_pods() == []


async def test_events_resume_after_a_dropped_connection(served, worker, sim, token) -> None:
    proxy = await CuttingProxy(int(served.url.rsplit(":", 1)[1]), cut_in_event=3).start()
    try:
        def follow() -> tuple[str, list[Event]]:
            with client(proxy.url, token) as hangar:
                cluster = hangar.create_cluster("resume", GPU, nodes=2, setup=SETUP)
                events = []
                for event in hangar.events(cluster.id):
                    events.append(event)
                    if isinstance(event, ClusterStatusChanged) and event.status == "ready":
                        break
                return cluster.id, events

        cluster_id, events = await in_thread(follow)
    finally:
        await proxy.stop()

    assert proxy.cuts == 1, "the stream was cut once, in the middle of the third event"
    assert proxy.resumed_from == [2], "resumed after the last whole event it had"
    truth = await event_page(served.url, token, cluster_id)
    upto = [e for e in truth if e["id"] <= events[-1].id]
    # No gap, no duplicate: exactly the stored events up to ready, in order.
    assert [(e.id, e.type) for e in events] == [(e["id"], e["type"]) for e in upto]
    assert [e.data for e in events] == [e["data"] for e in upto]


async def test_wait_until_ready_raises_the_failure_reason(served, worker, sim, token) -> None:
    sim.faults.capacity(gpu_ids="NVIDIA GeForce RTX 4090")

    def scenario() -> ClusterFailed:
        with client(served.url, token) as hangar:
            cluster = hangar.create_cluster("full", GPU, nodes=2)
            with pytest.raises(ClusterFailed) as failed:
                hangar.wait_until_ready(cluster.id, timeout=60)
            return failed.value

    failure = await in_thread(scenario)
    assert failure.reason == "no_capacity"
    assert failure.message and failure.cluster.status == ClusterStatus.FAILED
    assert failure.cluster.reason == "no_capacity"
    assert "no_capacity" in str(failure)


async def test_errors_are_typed(served, token, db) -> None:
    def bad_token() -> Unauthorized:
        with client(served.url, "hgr_not-a-token") as hangar, pytest.raises(Unauthorized) as e:
            hangar.get_cluster(str(uuid.uuid4()))
        return e.value

    def the_rest() -> tuple:
        with client(served.url, token) as hangar:
            with pytest.raises(NotFound) as missing:
                hangar.get_cluster(str(uuid.uuid4()))
            with pytest.raises(InvalidRequest) as invalid:
                hangar.create_cluster("Not_A_Name", GPU, nodes=0)
            with pytest.raises(InvalidRequest) as unknown:
                hangar.create_cluster("x", "rtx 9999")
            hangar.create_cluster("first", GPU)
            with pytest.raises(RateLimited) as limited:
                hangar.create_cluster("second", GPU)
            return missing.value, invalid.value, unknown.value, limited.value

    unauthorized = await in_thread(bad_token)
    assert unauthorized.status == 401 and unauthorized.code == "unauthorized"
    async with db() as session, session.begin():
        await session.execute(update(Team).where(Team.name == "alpha")
                              .values(max_live_clusters=1))
    missing, invalid, unknown, limited = await in_thread(the_rest)

    assert missing.status == 404 and missing.code == "not_found" and missing.detail
    assert missing.request_id
    assert invalid.status == 422 and invalid.code == "invalid_request"
    assert {e.field for e in invalid.errors} == {"name", "nodes"}
    assert unknown.code == "unknown_gpu_type"
    assert "NVIDIA GeForce RTX 4090" in unknown.candidates
    assert limited.status == 429 and limited.limit == "max_live_clusters"
    assert "limit is 1" in limited.detail


async def test_gpu_types_and_list_filters(served, token) -> None:
    def scenario() -> tuple:
        with client(served.url, token) as hangar:
            catalog = hangar.gpu_types()
            only = hangar.gpu_types(name="4090")
            a = hangar.create_cluster("a", GPU)
            b = hangar.create_cluster("b", GPU)
            deleted = hangar.delete_cluster(a.id)
            by_status = [c.name for c in hangar.list_clusters(status=deleted.status)]
            by_name = [c.name for c in hangar.list_clusters(name="b")]
            everything = [c.name for c in hangar.list_clusters(page_size=1)]
            return catalog, only, b, by_status, by_name, everything

    catalog, only, b, by_status, by_name, everything = await in_thread(scenario)
    rtx = next(g for g in catalog if g.id == "NVIDIA GeForce RTX 4090")
    assert rtx.display_name == "RTX 4090" and rtx.memory_gb == 24
    assert rtx.price_secure and rtx.availability and rtx.data_centers
    assert [g.id for g in only] == ["NVIDIA GeForce RTX 4090"]
    assert by_status == ["a"] and by_name == ["b"] and everything == ["b", "a"]


async def test_async_client(served, worker, sim, token) -> None:
    async with AsyncHangarClient(served.url, token, backoff=0.05) as hangar:
        created = await hangar.create_cluster("async", GPU, setup=SETUP)
        ready = await hangar.wait_until_ready(created.id, timeout=60)
        events = []
        async for event in hangar.events(created.id):
            events.append(event)
            if isinstance(event, ClusterStatusChanged) and event.status == "ready":
                break
        listed = [c.id async for c in hangar.list_clusters()]
        gone = await hangar.delete_cluster(created.id, wait=True, timeout=60)
        after = [e async for e in hangar.events(created.id, after=events[-1].id)]

    assert ready.status == "ready" and [n.status for n in ready.nodes] == ["ready"]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.line for e in events if isinstance(e, NodeOutput)] == ["first line",
                                                                      "second line"]
    assert listed == [created.id]
    assert gone.finished and gone.reason == "deleted" and sim.alive_pods() == []
    # Resuming after ready: the teardown, then the iterator ends with the stream.
    assert after[0].id == events[-1].id + 1
    assert [e.type for e in after if isinstance(e, ClusterStatusChanged)] == [
        "cluster.terminating", "cluster.terminated"]


async def test_async_wait_raises_the_failure_reason(served, worker, sim, token) -> None:
    async with AsyncHangarClient(served.url, token) as hangar:
        cluster = await hangar.create_cluster("fails", GPU, setup="echo bye; exit 3")
        with pytest.raises(ClusterFailed) as failed:
            await hangar.wait_until_ready(cluster.id, timeout=60)
    assert failed.value.reason == "bootstrap_failed"
    assert "status 3" in failed.value.message
