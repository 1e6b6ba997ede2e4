"""Fault injection, from Python and through the `/_sim` admin API."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.simulator import CAPACITY_DETAIL, Simulator

from .helpers import GPU, assert_shape, create, our_body, wait_status


async def test_capacity_fault_is_400_with_documented_detail(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.capacity(gpu_ids=[GPU])
    resp = await client.post("/pods", json=our_body())
    assert resp.status_code == 400
    body = resp.json()
    assert_shape("ErrorResponse", body)
    assert body["detail"] == (
        "There are no longer any instances available with the requested specifications. "
        "Please refresh and try again."
    )
    assert body["detail"] == CAPACITY_DETAIL
    # Other GPU types are unaffected.
    await create(client, our_body(gpu={"id": "NVIDIA L40S", "count": 1}))


async def test_data_center_scoped_capacity(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.capacity(gpu_ids=[GPU], data_centers=["US-KS-2"])
    resp = await client.post("/pods", json=our_body(dataCenterIds=["US-KS-2"]))
    assert resp.status_code == 400 and resp.json()["detail"] == CAPACITY_DETAIL
    pod = await create(client, our_body(dataCenterIds=["EU-RO-1"]))
    assert pod["dataCenterId"] == "EU-RO-1"
    # Unpinned creates land anywhere but the blocked data center.
    for i in range(4):
        pod = await create(client, our_body(f"free-{i}", dataCenterIds=[]))
        assert pod["dataCenterId"] != "US-KS-2"
    # The catalog shows the blocked offering as NONE (visible_in_catalog default).
    params = {"include": "AVAILABILITY", "product": "POD"}
    rtx = (await client.get(f"/catalog/gpus/{GPU}", params=params)).json()
    assert {d["id"]: d["availability"] for d in rtx["dataCenters"]}["US-KS-2"] == "NONE"


async def test_capacity_fault_count_and_name_prefix(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.capacity(name_prefix="c2-", count=1)
    assert (await client.post("/pods", json=our_body("c1-n0"))).status_code == 201
    assert (await client.post("/pods", json=our_body("c2-n0"))).status_code == 400
    assert (await client.post("/pods", json=our_body("c2-n0"))).status_code == 201


async def test_rate_limit_with_retry_after(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.rate_limit(count=2, retry_after=7, endpoint="create")
    assert (await client.get("/pods")).status_code == 200  # other endpoints unaffected
    for _ in range(2):
        resp = await client.post("/pods", json=our_body())
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "7"
        assert resp.headers["ratelimit"].startswith('"minute";r=0;t=7, "hour";r=')
        assert resp.json()["detail"] == "rate limit exceeded for the minute window"
        assert_shape("ErrorResponse", resp.json())
    await create(client, our_body())
    assert sim.count("create_pod", status=429) == 2
    assert len(sim.alive_pods()) == 1  # rate-limited creates created nothing


async def test_server_errors(sim: Simulator, client: httpx.AsyncClient) -> None:
    pod = await create(client, our_body())
    sim.faults.server_error(502, count=1, endpoint="get_pod")
    sim.faults.server_error(500, count=1, endpoint=["list_pods"])
    resp = await client.get(f"/pods/{pod['id']}")
    assert resp.status_code == 502 and resp.headers["content-type"] == "application/problem+json"
    assert_shape("ErrorResponse", resp.json())
    assert (await client.get(f"/pods/{pod['id']}")).status_code == 200
    assert (await client.get("/pods")).status_code == 500
    assert (await client.get("/pods")).status_code == 200


async def test_low_balance_is_402_on_creates(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.low_balance(count=1)
    assert (await client.get("/pods")).status_code == 200  # creates only, by default
    resp = await client.post("/pods", json=our_body())
    assert resp.status_code == 402
    assert_shape("ErrorResponse", resp.json())
    assert "balance" in resp.json()["detail"].lower()
    assert sim.alive_pods() == []  # refused: nothing was created
    await create(client, our_body())


async def test_price_change_bills_a_multiple_of_the_list_price(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    async def billed(name: str) -> float:
        pod = await create(client, our_body(name))
        return (await wait_status(client, pod["id"], "RUNNING"))["cost"]

    list_price = await billed("list-price")
    assert list_price > 0
    sim.faults.price_change(1.5, count=1)
    assert await billed("dearer") == pytest.approx(list_price * 1.5, rel=1e-3)
    assert await billed("back-to-list") == pytest.approx(list_price)  # the rule was used up


async def test_probabilistic_faults(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.seed(7)
    sim.faults.server_error(503, probability=0.5, endpoint="catalog")
    codes = [(await client.get("/catalog/gpus")).status_code for _ in range(40)]
    assert 5 < codes.count(503) < 35 and codes.count(200) + codes.count(503) == 40


async def test_latency(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.latency(0.2, endpoint="list", count=1)
    started = time.monotonic()
    await client.get("/pods")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    await client.get("/pods")
    assert time.monotonic() - started < 0.15


async def test_lost_create_dropped_connection(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.lost_create(count=1)
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        await client.post("/pods", json=our_body("lost-one"))
    assert time.monotonic() - started < 1.0  # dropped, not hung
    # The pod exists anyway: a retry without a lookup would duplicate it.
    listed = (await client.get("/pods")).json()["pods"]
    assert [p["name"] for p in listed] == ["lost-one"]
    record = next(r for r in sim.requests if r.endpoint == "create_pod")
    assert record.status == 201 and not record.delivered
    assert record.fault == "lost_create:drop" and record.pod_id == listed[0]["id"]
    # Only the next create was affected.
    await create(client, our_body("lost-one"))
    assert len(sim.pods_named("lost-one")) == 2


async def test_lost_create_hang_until_client_timeout(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.lost_create(count=1, mode="hang", name_prefix="hang-")
    with pytest.raises(httpx.TimeoutException):
        await client.post("/pods", json=our_body("hang-0"), timeout=0.3)
    assert [p.name for p in sim.alive_pods()] == ["hang-0"]
    await create(client, our_body("hang-1"))


async def test_never_ip(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.faults.never_ip(name_prefix="noip-")
    pod = await create(client, our_body("noip-0"))
    running = await wait_status(client, pod["id"], "RUNNING")
    assert_shape("Pod", running)
    assert running["ssh"]["direct"] is None
    assert running["runtime"]["ports"] == [
        {"private": 22, "public": None, "type": "tcp", "ip": None}
    ]
    assert sim.pod(pod["id"]).ssh is None  # no SSH server at all
    other = await wait_status(client, (await create(client, our_body("ok-0")))["id"], "RUNNING")
    assert other["ssh"]["direct"] is not None


async def test_exit_during_start_and_after_running(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.configure(provision_delay=0.1, start_delay=0.1)
    sim.faults.exit_after(0.05, name_prefix="early-")
    sim.faults.exit_after(0.35, status="ERROR", name_prefix="late-")
    early = await create(client, our_body("early-0"))
    late = await create(client, our_body("late-0"))
    await asyncio.sleep(0.1)
    exited = (await client.get(f"/pods/{early['id']}")).json()
    assert exited["status"] == "EXITED" and exited["cost"] == 0.0
    assert exited["actions"] == ["start", "terminate"]
    await wait_status(client, late["id"], "RUNNING")
    errored = await wait_status(client, late["id"], "ERROR")
    assert errored["cost"] == 0.0 and errored["ssh"]["direct"] is None
    assert_shape("Pod", errored)
    # The early pod never ran.
    assert "RUNNING" not in [s for _, s in sim.pod(early["id"]).history]


async def test_pod_timing_rule(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.configure(provision_delay=5, start_delay=5)
    sim.faults.pod_timing(provision_delay=0, start_delay=0.05, name_prefix="fast-")
    pod = await create(client, our_body("fast-0"))
    await wait_status(client, pod["id"], "RUNNING", within=1)
    slow = await create(client, our_body("slow-0"))
    await asyncio.sleep(0.1)
    assert (await client.get(f"/pods/{slow['id']}")).json()["status"] == "PROVISIONING"


async def test_admin_api(
    sim: Simulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    resp = await admin.post("/faults", json={"kind": "rate_limit", "count": 1, "retry_after": 3})
    assert resp.status_code == 201
    rule = resp.json()
    assert rule["kind"] == "rate_limit" and rule["remaining"] == 1
    resp = await client.get("/pods")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "3"

    resp = await admin.post(
        "/faults", json={"kind": "capacity", "gpu_ids": [GPU], "data_centers": ["US-KS-2"]}
    )
    assert resp.status_code == 201
    assert (await client.post("/pods", json=our_body())).status_code == 400
    faults = (await admin.get("/faults")).json()["faults"]
    assert [f["kind"] for f in faults] == ["rate_limit", "capacity"]
    assert faults[0]["active"] is False
    assert (await admin.delete(f"/faults/{resp.json()['id']}")).status_code == 204
    await create(client, our_body())

    assert (await admin.post("/faults", json={"kind": "nope"})).status_code == 422
    assert (await admin.post("/faults", json={"kind": "latency", "bogus": 1})).status_code == 422

    resp = await admin.patch("/config", json={"provision_delay": 0, "start_delay": 0})
    assert resp.json()["start_delay"] == 0
    resp = await admin.put("/stock", json={"count": 0, "gpuId": GPU})
    assert resp.status_code == 200 and resp.json()["matched"] == 7
    assert (await client.post("/pods", json=our_body())).status_code == 400

    pods = (await admin.get("/pods", params={"alive": "true"})).json()["pods"]
    assert len(pods) == 1 and pods[0]["alive"]
    assert (await admin.post("/reset")).status_code == 204
    assert sim.faults.rules == [] and sim.alive_pods() == [] and sim.requests == []
    assert (await admin.get("/pods")).json()["pods"] == []
    await create(client, our_body())  # stock restored


async def test_admin_lost_create_and_counts(
    sim: Simulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.post("/faults", json={"kind": "lost_create", "count": 1})
    with pytest.raises(httpx.TransportError):
        await client.post("/pods", json=our_body("a"))
    body = (await admin.get("/requests", params={"endpoint": "create_pod"})).json()
    assert body["counts"] == {"create_pod": 1}
    assert body["requests"][0]["delivered"] is False
    names = [p["name"] for p in (await admin.get("/pods", params={"name": "a"})).json()["pods"]]
    assert names == ["a"]
