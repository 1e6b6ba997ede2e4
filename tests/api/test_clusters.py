"""Reading clusters (filters, newest first, cursor pages), one cluster with its price,
idempotent DELETE, and the GPU catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from app.db.models import Cluster, Node
from tests.support.stack import VALID, assert_problem


async def test_list_filters_newest_first_and_pages(client_for, db) -> None:
    alpha = await client_for("alpha")
    names = [f"c{i}" for i in range(7)]
    for name in names:
        assert (await alpha.post("/clusters", json={**VALID, "name": name})).status_code == 202
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.name.in_(["c1", "c4"]))
                              .values(status="failed"))

    # Pages of 3, newest first, following `next` links until null.
    seen: list[str] = []
    url: str | None = "/clusters?limit=3"
    pages = 0
    while url:
        page = (await alpha.get(url)).json()
        seen += [c["name"] for c in page["items"]]
        url, pages = page["next"], pages + 1
        if url:
            assert url.startswith("http") and "cursor=" in url and "limit=3" in url
    assert seen == list(reversed(names)) and pages == 3

    failed = (await alpha.get("/clusters", params={"status": "failed"})).json()
    assert [c["name"] for c in failed["items"]] == ["c4", "c1"] and failed["next"] is None
    both = await alpha.get("/clusters", params=[("status", "failed"), ("status", "pending")])
    assert len(both.json()["items"]) == 7
    named = (await alpha.get("/clusters", params={"name": "c3"})).json()["items"]
    assert [c["name"] for c in named] == ["c3"]
    # Filters and cursor combine: the second page of the pending ones.
    first = (await alpha.get("/clusters", params={"status": "pending", "limit": 2})).json()
    second = (await alpha.get(first["next"])).json()
    assert [c["name"] for c in first["items"] + second["items"]] == ["c6", "c5", "c3", "c2"]


async def test_bad_list_parameters_are_422(client_for) -> None:
    alpha = await client_for("alpha")
    for params, field in (
        ({"cursor": "not-a-cursor"}, None),
        ({"cursor": "MjAyNnxub3BlfG5vcGU"}, None),  # base64 of garbage
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "a" * 201}, "cursor"),
        ({"status": "exploded"}, "status.0"),
        ({"limit": 0}, "limit"),
        ({"limit": 10**30}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"name": "UPPER"}, "name"),
        ({"name": "bad\x00name"}, "name"),
    ):
        r = await alpha.get("/clusters", params=params)
        if field is None:
            assert_problem(r, 422, "invalid_cursor")
        else:
            body = assert_problem(r, 422, "invalid_request")
            assert body["errors"][0]["field"] == field, body


async def test_one_cluster_with_nodes_rate_and_cost(client_for, db) -> None:
    alpha = await client_for("alpha")
    created = (await alpha.post("/clusters", json={**VALID, "nodes": 2})).json()
    assert created["hourly_rate"] == 0 and created["accrued_cost"] == 0
    # Pretend node 0 has run for an hour at $0.44/h and node 1 ran 30 min at $0.44/h.
    now = datetime.now(UTC)
    async with db() as session, session.begin():
        await session.execute(update(Node).where(Node.index == 0).values(
            status="ready", hourly_rate=0.44, started_at=now - timedelta(hours=1)))
        await session.execute(update(Node).where(Node.index == 1).values(
            status="terminated", hourly_rate=0.44, started_at=now - timedelta(hours=1),
            terminated_at=now - timedelta(minutes=30)))
    body = (await alpha.get(f"/clusters/{created['id']}")).json()
    assert [n["index"] for n in body["nodes"]] == [0, 1]
    assert {n["status"] for n in body["nodes"]} == {"ready", "terminated"}
    assert body["hourly_rate"] == 0.44  # only nodes still billing
    assert 0.66 <= body["accrued_cost"] < 0.67  # 1 h + 0.5 h at $0.44/h
    for field in ("gpu_type", "gpu_type_requested", "node_count", "created_at", "ssh_public_key",
                  "reason", "message", "ready_at", "terminated_at"):
        assert field in body
    assert body["gpu_type"] == "NVIDIA GeForce RTX 4090" and body["gpu_type_requested"] == "RTX 4090"


async def test_delete_is_idempotent(client_for, db) -> None:
    alpha = await client_for("alpha")
    cid = (await alpha.post("/clusters", json=VALID)).json()["id"]
    first = await alpha.delete(f"/clusters/{cid}")
    second = await alpha.delete(f"/clusters/{cid}")
    assert first.status_code == second.status_code == 202
    # Nodes that never got a pod are gone at once, so the cluster may already be terminated.
    assert first.json()["status"] in {"terminating", "terminated"}
    assert second.json()["status"] == first.json()["status"]
    assert second.json()["reason"] == first.json()["reason"] == "deleted"
    async with db() as session:
        cluster = await session.scalar(select(Cluster))
    assert cluster.status == first.json()["status"] and cluster.delete_requested_at is not None
    assert_problem(await alpha.delete("/clusters/not-a-uuid"), 422, "invalid_request")


async def test_gpu_types_catalog_and_filters(client_for, sim) -> None:
    alpha = await client_for("alpha")
    everything = (await alpha.get("/gpu-types")).json()
    assert {g["id"] for g in everything} == {g.id for g in sim.catalog.gpus()}
    rtx = next(g for g in everything if g["id"] == "NVIDIA GeForce RTX 4090")
    assert rtx["display_name"] == "RTX 4090" and rtx["memory_gb"] == 24
    assert rtx["price_secure"] == 0.44 and rtx["price_community"] == 0.31
    assert rtx["availability"] in {"HIGH", "MEDIUM", "LOW", "NONE"}
    assert rtx["data_centers"] and all({"id", "availability"} <= set(d) for d in rtx["data_centers"])

    by_name = (await alpha.get("/gpu-types", params={"name": "a100"})).json()
    assert by_name and all("a100" in f"{g['id']} {g['display_name']}".lower() for g in by_name)
    community = (await alpha.get("/gpu-types", params={"cloud_type": "community"})).json()
    assert community and all(g["community"] for g in community)
    assert (await alpha.get("/gpu-types", params={"name": "no-such-gpu"})).json() == []
    r = await alpha.get("/gpu-types", params={"cloud_type": "orbital"})
    assert assert_problem(r, 422, "invalid_request")["errors"][0]["field"] == "cloud_type"


async def test_gpu_types_when_the_provider_is_down_is_503(client_for, sim) -> None:
    alpha = await client_for("alpha")
    sim.faults.server_error(status=503, endpoint="catalog")
    r = await alpha.get("/gpu-types")
    assert_problem(r, 503, "provider_unavailable")
    assert r.headers["retry-after"] == "5"
    assert "retry" in r.json()["detail"].lower()


async def test_unknown_and_ambiguous_gpu_types_list_the_choices(client_for) -> None:
    alpha = await client_for("alpha")
    unknown = assert_problem(
        await alpha.post("/clusters", json={**VALID, "gpu_type": "rtx 9999"}), 422,
        "unknown_gpu_type")
    assert "NVIDIA GeForce RTX 4090" in unknown["candidates"]
    ambiguous = assert_problem(
        await alpha.post("/clusters", json={**VALID, "gpu_type": "a100"}), 422,
        "ambiguous_gpu_type")
    assert len(ambiguous["candidates"]) >= 2


async def test_request_id_is_honoured_or_generated(served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anon:
        mine = await anon.get("/healthz", headers={"X-Request-ID": "trace-123.abc"})
        assert mine.headers["x-request-id"] == "trace-123.abc"
        fresh = await anon.get("/healthz")
        assert len(fresh.headers["x-request-id"]) == 32
        # Something unfit for a log line is replaced, not echoed.
        odd = await anon.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200})
        assert odd.headers["x-request-id"] != "a b\tc" + "x" * 200
        problem = await anon.get("/clusters", headers={"X-Request-ID": "req-42"})
        assert problem.json()["request_id"] == "req-42" == problem.headers["x-request-id"]


async def test_default_image_is_the_setting(served_with, db, worker, sim) -> None:
    """HANGAR_DEFAULT_IMAGE is the image of a cluster created without one, and the pod's."""
    from tests.support.stack import team_client, wait_for

    served, _ = await served_with(default_image="example.org/team/train:7")
    client = await team_client(db, served.url, "alpha")
    async with client:
        r = await client.post("/clusters", json=VALID)
        assert r.status_code == 202, r.text
        assert r.json()["image"] == "example.org/team/train:7"
        body = await wait_for(client, r.json()["id"], {"ready", "failed"})
        assert body["image"] == "example.org/team/train:7"
    assert [p.image for p in sim.all_pods()] == ["example.org/team/train:7"]
