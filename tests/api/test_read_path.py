"""The read path of `GET /clusters/{id}` and `GET /clusters` (docs/read-path.md): the same
bytes as the models give, and the per-process read cache kept true by the commits'
notifications on Redis, by the same process's DELETE, by its max age; team isolation with
a warm cache; the cache off with 0. Real Postgres and Redis, real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.api import readpath
from app.api.app import create_app
from app.db.models import Cluster, Node
from app.db.session import driver_connection
from app.schemas.clusters import ClusterPage, to_out
from app.services import dispatch
from app.services.dispatch import Dispatcher
from app.services.state import locked_cluster, utcnow
from app.services.teams import create_token
from app.settings import Settings
from tests.support.events import make_cluster
from tests.support.stack import ServedApp, assert_problem, team_client

LONG = 30.0  # a max age no test waits for: only an invalidation explains a prompt change



@pytest.fixture
async def dispatcher(settings: Settings) -> AsyncIterator[Dispatcher]:
    d = await dispatch.connect(settings.redis_url, settings.redis_names)
    yield d
    await d.redis.aclose()


async def client_of(db, served: ServedApp, team: str) -> tuple[httpx.AsyncClient, uuid.UUID]:
    client = await team_client(db, served.url, team)
    return client, client.team_id  # type: ignore[attr-defined]


async def set_node(db, cluster_id: uuid.UUID, **values) -> None:
    """Change node 0 directly in the database: a commit nobody announces."""
    async with db() as session, session.begin():
        await session.execute(update(Node).where(Node.cluster_id == cluster_id,
                                                 Node.index == 0).values(**values))


async def public_ip(client: httpx.AsyncClient, cluster_id: uuid.UUID) -> str | None:
    r = await client.get(f"/clusters/{cluster_id}")
    assert r.status_code == 200, r.text
    return r.json()["nodes"][0]["public_ip"]


async def test_bodies_are_the_models_bytes(db, engine) -> None:
    """GET's and the list's bodies are byte for byte what FastAPI writes for `to_out(...)`
    (ClusterOut) and a ClusterPage: field order, floats, dates, JSON columns, text."""
    async with db() as session:
        token, _ = await create_token(session, "alpha")
    cid = await make_cluster(db, token.team_id, nodes=3)
    now = utcnow()
    async with db() as session, session.begin():
        await session.execute(update(Node).where(Node.cluster_id == cid, Node.index == 0).values(
            status="ready", hourly_rate=0.44, started_at=now - timedelta(hours=1),
            ready_at=now - timedelta(minutes=59), pod_id="pod0", public_ip="203.0.113.7",
            ssh_port=22022, data_center_id="EU-RO-1", gpu_type_id="NVIDIA GeForce RTX 4090",
            host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2", private_ip="10.65.0.2"))
        await session.execute(update(Node).where(Node.cluster_id == cid, Node.index == 1).values(
            status="terminated", hourly_rate=1e-7, started_at=now - timedelta(hours=2),
            terminated_at=now - timedelta(minutes=30), reason="deleted",
            message='gone: "quoted", é, \u2028, \t'))
        await session.execute(update(Cluster).where(Cluster.id == cid).values(
            env={"B": "2", "A": "é ü", "Z": "</script>"}, ports=["22/tcp", "8888/http"],
            data_center_ids=["EU-RO-1"], max_hourly_cost=3.5, ttl_seconds=60,
            setup="echo 'hi'\n\tprintf \"%s\" x", ready_at=now, expires_at=now,
            ssh_public_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2 ada@é"],
            secret_names=["A_TOKEN", "B"]))
    async with db() as session:
        cluster = await session.scalar(select(Cluster).where(Cluster.id == cid))
        expected = to_out(cluster, now)
    async with driver_connection(engine) as conn:
        one = await readpath.read_cluster(conn, cid)
        entries = await readpath.read_page(conn, token.team_id, statuses=None, name=None,
                                           after=None, limit=10)
        page = await readpath.read_clusters(conn, [e.id for e in entries])
    assert one is not None and one.team_id == token.team_id
    assert readpath.cluster_json(one, now) == expected.model_dump_json().encode()
    assert expected.nodes[0].ssh_command == "ssh root@203.0.113.7 -p 22022"
    assert expected.nodes[1].ssh_command is None  # terminated (and no address)
    assert expected.secret_names == ["A_TOKEN", "B"]
    next_url = "http://testserver/clusters?limit=1&cursor=abc"
    assert [(e.id, e.status) for e in entries] == [(cid, "pending")]
    assert readpath.page_json(list(page.values()), next_url, now) == ClusterPage(
        items=[expected], next=next_url).model_dump_json().encode()
    assert readpath.page_json([], None, now) == b'{"items":[],"next":null}'

    # Nothing bills any more: the body is encoded once, and is the models' bytes at any time.
    await set_node(db, cid, terminated_at=now, status="terminated")
    async with driver_connection(engine) as conn:
        done = await readpath.read_cluster(conn, cid)
    assert done is not None and not done.bills and done.body is not None
    async with db() as session:
        cluster = await session.scalar(select(Cluster).where(Cluster.id == cid))
        for later in (now, now + timedelta(days=2)):
            assert readpath.cluster_json(done, later) == \
                to_out(cluster, later).model_dump_json().encode()


async def test_a_worker_commit_reaches_a_warm_cache_promptly(db, served_with, dispatcher) -> None:
    served, app = await served_with(read_cache_s=LONG)
    alpha, team_id = await client_of(db, served, "alpha")
    cid = await make_cluster(db, team_id, nodes=2)
    assert await public_ip(alpha, cid) is None  # read once: cached now

    # Committed but not announced: the cache still answers (for up to its max age).
    await set_node(db, cid, public_ip="198.51.100.1")
    assert await public_ip(alpha, cid) is None
    assert app.state.read_cache.hits >= 1

    # A worker-side transaction: commit, then the notification on hangar:events.
    async with locked_cluster(db, cid, dispatcher) as tx:
        tx.nodes[0].public_ip = "198.51.100.2"
        tx.notice("address changed", node=tx.nodes[0])
    started = time.monotonic()
    while await public_ip(alpha, cid) != "198.51.100.2":
        assert time.monotonic() - started < 2.0, "the notification did not invalidate"
        await asyncio.sleep(0.02)

    # Any message naming the cluster invalidates it (commits without an event, later).
    await set_node(db, cid, public_ip="198.51.100.3")
    await dispatcher.redis.publish(dispatcher.names.events, str(cid))
    started = time.monotonic()
    while await public_ip(alpha, cid) != "198.51.100.3":
        assert time.monotonic() - started < 2.0
        await asyncio.sleep(0.02)
    await alpha.aclose()


async def test_delete_then_get_in_one_process_is_not_stale(db, served_with) -> None:
    served, app = await served_with(read_cache_s=LONG)
    alpha, team_id = await client_of(db, served, "alpha")
    cid = await make_cluster(db, team_id, nodes=1)
    assert (await alpha.get(f"/clusters/{cid}")).json()["status"] == "pending"
    assert (await alpha.get(f"/clusters/{cid}")).json()["status"] == "pending"  # cached
    deleted = await alpha.delete(f"/clusters/{cid}")
    assert deleted.status_code == 202
    after = (await alpha.get(f"/clusters/{cid}")).json()  # at once, no waiting
    assert after["status"] == deleted.json()["status"] != "pending"
    assert after["reason"] == "deleted"
    await alpha.aclose()


async def test_another_teams_cluster_is_404_with_a_warm_cache(db, served_with) -> None:
    served, app = await served_with(read_cache_s=LONG)
    alpha, alpha_id = await client_of(db, served, "alpha")
    beta, _ = await client_of(db, served, "beta")
    cid = await make_cluster(db, alpha_id, nodes=1)
    for _ in range(2):
        assert (await alpha.get(f"/clusters/{cid}")).status_code == 200
    assert len(app.state.read_cache) == 1 and app.state.read_cache.hits >= 1
    theirs = assert_problem(await beta.get(f"/clusters/{cid}"), 404, "not_found")
    unknown = assert_problem(await beta.get(f"/clusters/{uuid.uuid4()}"), 404, "not_found")
    assert theirs["detail"] == unknown["detail"] and str(cid) not in theirs["detail"]
    assert_problem(await beta.delete(f"/clusters/{cid}"), 404, "not_found")
    assert (await alpha.get(f"/clusters/{cid}")).json()["status"] == "pending"
    assert [c["id"] for c in (await beta.get("/clusters")).json()["items"]] == []
    await alpha.aclose()
    await beta.aclose()


async def test_read_cache_off_with_zero(db, served_with) -> None:
    served, app = await served_with(read_cache_s=0)
    alpha, team_id = await client_of(db, served, "alpha")
    cid = await make_cluster(db, team_id, nodes=1)
    assert await public_ip(alpha, cid) is None
    await set_node(db, cid, public_ip="198.51.100.9")  # not announced
    assert await public_ip(alpha, cid) == "198.51.100.9"
    await set_node(db, cid, public_ip="198.51.100.10")
    listed = (await alpha.get("/clusters")).json()["items"]
    assert listed[0]["nodes"][0]["public_ip"] == "198.51.100.10"
    assert len(app.state.read_cache) == 0 and app.state.read_cache.hits == 0
    await alpha.aclose()


async def test_max_age_bounds_a_missed_notification(db, served_with) -> None:
    served, app = await served_with(read_cache_s=0.3)
    alpha, team_id = await client_of(db, served, "alpha")
    cid = await make_cluster(db, team_id, nodes=1)
    assert await public_ip(alpha, cid) is None
    await set_node(db, cid, public_ip="198.51.100.4")  # never announced
    changed = time.monotonic()
    while await public_ip(alpha, cid) != "198.51.100.4":
        assert time.monotonic() - changed < 0.3 + 0.5, "staler than the max age (plus a read)"
        await asyncio.sleep(0.02)
    await alpha.aclose()


async def test_list_pages_share_the_read_cache_and_are_priced_now(db, served_with,
                                                                  dispatcher) -> None:
    """A page's order comes from the database every time, its clusters from the read cache
    (the same entries as GET /clusters/{id}, under the same rules), priced at response
    time; a cached entry whose status is not the one the page's query saw is read again."""
    served, app = await served_with(read_cache_s=LONG)
    cache = app.state.read_cache
    alpha, team_id = await client_of(db, served, "alpha")
    ids = [await make_cluster(db, team_id, nodes=2, name=f"c{i}") for i in range(3)]
    await set_node(db, ids[0], hourly_rate=3600.0, started_at=utcnow() - timedelta(seconds=10))
    first = (await alpha.get("/clusters")).json()["items"]
    assert [c["name"] for c in first] == ["c2", "c1", "c0"] and len(cache) == 3
    hits = cache.hits
    await asyncio.sleep(0.2)
    second = (await alpha.get("/clusters")).json()["items"]
    assert cache.hits == hits + 3
    assert first[2]["hourly_rate"] == second[2]["hourly_rate"] == 3600.0
    assert 10 <= first[2]["accrued_cost"] < second[2]["accrued_cost"] < 60  # $1 per second
    # GET /clusters/{id} answers from the entry the page stored.
    assert (await alpha.get(f"/clusters/{ids[1]}")).json() == second[1]
    assert cache.hits == hits + 4

    # An announced commit reaches the page promptly.
    async with locked_cluster(db, ids[1], dispatcher) as tx:
        tx.nodes[0].public_ip = "198.51.100.2"
        tx.notice("address changed", node=tx.nodes[0])
    started = time.monotonic()
    while (await alpha.get("/clusters")).json()["items"][1]["nodes"][0]["public_ip"] is None:
        assert time.monotonic() - started < 2.0, "the notification did not invalidate"
        await asyncio.sleep(0.02)

    # A status change nobody announced: the page's own query sees it, so a page filtered
    # by status never shows a cluster with a status it excludes, and the entry is renewed.
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.id == ids[2]).values(
            status="bootstrapping"))
    assert (await alpha.get(f"/clusters/{ids[2]}")).json()["status"] == "pending"  # cached
    page = (await alpha.get("/clusters", params={"status": "bootstrapping"})).json()["items"]
    assert [(c["id"], c["status"]) for c in page] == [(str(ids[2]), "bootstrapping")]
    assert (await alpha.get(f"/clusters/{ids[2]}")).json()["status"] == "bootstrapping"
    await alpha.aclose()


# --- the lean route answers as FastAPI's handler does -------------------------------------------


async def test_lean_route_errors_are_fastapis(db, served_with) -> None:
    """`GET /clusters/{id}` (a LeanRoute) and `DELETE /clusters/{id}` (FastAPI's own
    handler) declare the same inputs: the same 401 without a token, checked before the
    path, and the same 422 for a bad id."""
    served, _ = await served_with()
    alpha, _ = await client_of(db, served, "alpha")
    async with httpx.AsyncClient(base_url=served.url) as anon:
        for path in ("/clusters/not-a-uuid", f"/clusters/{uuid.uuid4()}"):
            got, ref = await anon.get(path), await anon.delete(path)
            assert_problem(got, 401, "unauthorized")
            assert got.json() | {"request_id": None} == ref.json() | {"request_id": None}
            assert got.headers["www-authenticate"] == ref.headers["www-authenticate"]
    for bad in ("not-a-uuid", "1234", "hgr_" + "x" * 43, "%00"):
        got, ref = await alpha.get(f"/clusters/{bad}"), await alpha.delete(f"/clusters/{bad}")
        body = assert_problem(got, 422, "invalid_request")
        assert body | {"request_id": None} == ref.json() | {"request_id": None}
        assert body["errors"][0]["field"] == "cluster_id"
    await alpha.aclose()


def test_get_cluster_is_served_by_a_lean_route() -> None:
    from app.api.routing import LeanRoute

    routes = [r for r in create_app().routes
              if getattr(r, "path", None) == "/clusters/{cluster_id}"]
    get = next(r for r in routes if r.methods == {"GET"})
    assert isinstance(get, LeanRoute) and get.lean


def test_the_openapi_document_declares_the_bearer_scheme() -> None:
    """`get_caller` parses the header itself (no HTTPBearer sub-dependency): the document
    still declares the scheme, on every operation that needs a token and only there."""
    doc = create_app().openapi()
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {"HTTPBearer", "StreamToken"}
    assert schemes["HTTPBearer"] == {
        "type": "http", "description": "An API token from `hangar keys create`.",
        "scheme": "bearer"}
    assert schemes["StreamToken"]["in"] == "query"
    secured = {(path, method) for path, item in doc["paths"].items()
               for method, op in item.items() if op.get("security") == [{"HTTPBearer": []}]}
    assert secured == {("/clusters", "post"), ("/clusters", "get"),
                       ("/clusters/{cluster_id}", "get"), ("/clusters/{cluster_id}", "delete"),
                       ("/clusters/{cluster_id}", "patch"),
                       ("/clusters/{cluster_id}/stream-tokens", "post"), ("/gpu-types", "get"),
                       ("/network-volumes", "get"), ("/team", "get"), ("/usage", "get"),
                       ("/webhooks", "post"), ("/webhooks", "get"),
                       ("/webhooks/{webhook_id}", "get"), ("/webhooks/{webhook_id}", "delete"),
                       ("/webhooks/{webhook_id}/deliveries", "get"),
                       ("/webhooks/{webhook_id}/test", "post"),
                       ("/webhooks/{webhook_id}/enable", "post")}
    # The event stream also takes a stream token (browsers' EventSource).
    assert doc["paths"]["/clusters/{cluster_id}/events"]["get"]["security"] == [
        {"HTTPBearer": []}, {"StreamToken": []}]
    assert list(doc["paths"]) == ["/healthz", "/readyz", "/metrics", "/clusters",
                                  "/clusters/{cluster_id}", "/clusters/{cluster_id}/events",
                                  "/clusters/{cluster_id}/stream-tokens", "/gpu-types",
                                  "/network-volumes", "/team", "/usage", "/webhooks",
                                  "/webhooks/{webhook_id}",
                                  "/webhooks/{webhook_id}/enable",
                                  "/webhooks/{webhook_id}/deliveries",
                                  "/webhooks/{webhook_id}/test"]
    op = doc["paths"]["/clusters/{cluster_id}"]["get"]
    assert [k for k in op if k != "description"][:5] == ["tags", "summary", "operationId",
                                                         "security", "parameters"]
    assert "401" in op["responses"] and "422" in op["responses"]


async def test_a_page_filter_writes_only_cluster_statuses(engine) -> None:
    """The status filter is written into the statement (a plan per filter), so only the
    status names may reach it."""
    async with driver_connection(engine) as conn:
        with pytest.raises(ValueError, match="not a cluster status"):
            await readpath.read_page(conn, uuid.uuid4(), statuses=["ready') OR (1=1"],
                                     name=None, after=None, limit=5)
        assert await readpath.read_page(conn, uuid.uuid4(), statuses=["ready", "pending"],
                                        name=None, after=None, limit=5) == []
