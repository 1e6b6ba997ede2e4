"""The v2 pod endpoints over real HTTP: auth, headers, shapes, lifecycle, listing, actions."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.simulator import Simulator
from app.simulator.problems import PROBLEM_JSON

from .helpers import GPU, assert_shape, create, our_body, wait_status


async def test_missing_or_wrong_key_is_401_problem(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as anon:
        resp = await anon.get("/pods")
        assert resp.status_code == 401
        assert resp.headers["content-type"] == PROBLEM_JSON
        assert resp.json() == {
            "title": "Unauthorized",
            "status": 401,
            "detail": "missing bearer token",
        }
        assert resp.headers["x-request-id"]
        assert "ratelimit" not in resp.headers  # only authenticated responses carry it

        resp = await anon.get("/pods", headers={"Authorization": "Bearer nope"})
        assert resp.status_code == 401
        assert_shape("ErrorResponse", resp.json())

        resp = await anon.get("/pods", headers={"Authorization": "Bearer no-access-key"})
        assert resp.status_code == 403
        assert resp.json()["detail"] == "access denied"
    assert sim.count("list_pods", status=401) == 2
    assert sim.count("list_pods", status=403) == 1


async def test_headers_on_success(client: httpx.AsyncClient) -> None:
    first = await client.get("/pods")
    second = await client.get("/pods")
    assert first.status_code == 200
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers["ratelimit-policy"].startswith('"minute";q=')
    assert '"hour";q=' in first.headers["ratelimit-policy"]
    r1 = int(first.headers["ratelimit"].split(";r=")[1].split(";")[0])
    r2 = int(second.headers["ratelimit"].split(";r=")[1].split(";")[0])
    assert r2 == r1 - 1


async def test_create_then_provisioning_starting_running(client: httpx.AsyncClient) -> None:
    pod = await create(client, our_body())
    assert_shape("Pod", pod)
    assert pod["status"] == "PROVISIONING"
    assert pod["runtime"] == {}
    assert pod["ssh"]["direct"] is None
    assert pod["startedAt"] is None
    assert pod["actions"] == ["stop", "terminate"]
    assert pod["dataCenterId"] == "US-KS-2"
    assert pod["cost"] == 0.44
    assert pod["env"]["PUBLIC_KEY"].startswith("ssh-ed25519")
    assert pod["mounts"] == {"persistent": {"size": 20, "path": "/workspace"}}

    running = await wait_status(client, pod["id"], "RUNNING")
    assert_shape("Pod", running)
    port = running["ssh"]["direct"]["port"]
    assert running["ssh"]["direct"] == {
        "host": "127.0.0.1",
        "port": port,
        "username": "root",
        "command": f"ssh root@127.0.0.1 -p {port}",
    }
    assert running["runtime"]["ports"] == [
        {"private": 22, "public": port, "type": "tcp", "ip": "127.0.0.1"}
    ]
    assert running["startedAt"] is not None
    assert running["actions"] == ["stop", "restart", "terminate"]


async def test_transitions_follow_the_clock(sim: Simulator, client: httpx.AsyncClient) -> None:
    """PROVISIONING, then STARTING after provision_delay, then RUNNING after start_delay more.
    Each status is checked against the time since the create was sent, measured after its
    read came back: a lower bound that holds however slow the machine is."""
    sim.configure(provision_delay=0.3, start_delay=0.5)
    sent = time.monotonic()
    pod = await create(client, our_body())
    assert pod["status"] == "PROVISIONING"
    seen: list[tuple[float, str]] = []
    while not seen or seen[-1][1] != "RUNNING":
        status = (await client.get(f"/pods/{pod['id']}")).json()["status"]
        seen.append((time.monotonic() - sent, status))
        assert seen[-1][0] < 10, seen
        await asyncio.sleep(0.02)
    order = ["PROVISIONING", "STARTING", "RUNNING"]
    statuses = [s for _, s in seen]
    assert statuses == sorted(statuses, key=order.index), seen
    assert "STARTING" in statuses, seen
    assert all(t >= 0.3 for t, s in seen if s == "STARTING"), seen
    assert all(t >= 0.8 for t, s in seen if s == "RUNNING"), seen


async def test_zero_delays_run_on_first_read(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.configure(provision_delay=0, start_delay=0)
    pod = await create(client, our_body())
    assert pod["status"] == "PROVISIONING"
    assert (await client.get(f"/pods/{pod['id']}")).json()["status"] == "RUNNING"


async def test_list_pagination_newest_first(client: httpx.AsyncClient) -> None:
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        await create(client, our_body(name))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, "someUnknownFilter": "x", "includeClusterPods": "false"}
        if cursor:
            params["cursor"] = cursor
        resp = await client.get("/pods", params=params)
        assert resp.status_code == 200
        body = resp.json()
        assert_shape("ListPodsResponse", body)
        pages += 1
        seen += [p["name"] for p in body["pods"]]
        if not body["pagination"]["hasNextPage"]:
            assert body["pagination"]["nextCursor"] is None
            break
        cursor = body["pagination"]["nextCursor"]
    assert pages == 3
    assert seen == list(reversed(names))

    full = (await client.get("/pods")).json()
    assert [p["name"] for p in full["pods"]] == list(reversed(names))
    assert full["pagination"] == {"nextCursor": None, "hasNextPage": False}


async def test_list_bad_cursor_and_limit_422(client: httpx.AsyncClient) -> None:
    resp = await client.get("/pods", params={"cursor": "not-a-cursor!"})
    assert resp.status_code == 422
    assert resp.headers["content-type"] == PROBLEM_JSON
    assert_shape("ErrorResponse", resp.json())
    for limit in ("0", "1001", "ten"):
        assert (await client.get("/pods", params={"limit": limit})).status_code == 422


async def test_create_unknown_field_is_422_naming_it(client: httpx.AsyncClient) -> None:
    resp = await client.post("/pods", json=our_body(interruptible=True))
    assert resp.status_code == 422
    body = resp.json()
    assert_shape("ErrorResponse", body)
    assert body["detail"] == "Request validation failed."
    assert len(body["errors"]) == 1 and "'interruptible'" in body["errors"][0]


async def test_create_schema_violations_are_422(client: httpx.AsyncClient) -> None:
    cases = [
        (our_body(gpu={"id": GPU, "count": 0}), "$.gpu.count"),
        (our_body(mounts={"persistent": {"size": 5, "path": "/w"}}), "$.mounts.persistent.size"),
        ({"name": "no-image", "gpu": {"id": GPU, "count": 1}}, "'image' is a required property"),
        (our_body(gpuTypeIds=[GPU]), "'gpuTypeIds'"),
        (our_body(gpu={"id": GPU, "count": 1, "minRamPerGpu": 8}), "'minRamPerGpu'"),
    ]
    for body, expected in cases:
        resp = await client.post("/pods", json=body)
        assert resp.status_code == 422, body
        errors = resp.json()["errors"]
        assert any(expected in e for e in errors), errors
        # One bad value must not make every valid sibling "unexpected".
        assert not any("'name'" in e for e in errors), errors
    resp = await client.post(
        "/pods", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422


async def test_create_rule_violations_are_400(client: httpx.AsyncClient) -> None:
    resp = await client.post("/pods", json=our_body(gpu={"id": "NVIDIA RTX 9999", "count": 1}))
    assert resp.status_code == 400
    assert "NVIDIA RTX 9999" in resp.json()["detail"]
    resp = await client.post("/pods", json=our_body(gpu={"id": GPU, "count": 16}))
    assert resp.status_code == 400
    resp = await client.post(
        "/pods",
        json=our_body(
            mounts={
                "persistent": {"size": 20, "path": "/w"},
                "network": [{"volumeId": "v", "path": "/n"}],
            }
        ),
    )
    assert resp.status_code == 400
    resp = await client.post("/pods", json=our_body(dataCenterIds=["XX-NOPE-1"]))
    assert resp.status_code == 400
    resp = await client.post("/pods", json=our_body(ports=["ssh"]))
    assert resp.status_code == 400


async def test_spec_example_body_and_cost_by_cloud(client: httpx.AsyncClient) -> None:
    example = {
        "name": "pytorch-training",
        "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "gpu": {"id": GPU, "count": 1},
        "disk": 50,
    }
    pod = await create(client, example)
    assert pod["cloud"] == "SECURE" and pod["ports"] == [] and pod["mounts"] == {}
    running = await wait_status(client, pod["id"], "RUNNING")
    assert running["ssh"]["direct"] is None  # no 22/tcp published
    pod = await create(
        client,
        our_body("community", cloud="COMMUNITY", dataCenterIds=[], gpu={"id": GPU, "count": 2}),
    )
    assert pod["cost"] == 0.62
    assert pod["dataCenterId"] in ("EU-RO-1", "CA-MTL-1", "EU-SE-1")


async def test_get_and_delete_unknown_404(client: httpx.AsyncClient) -> None:
    resp = await client.get("/pods/doesnotexist")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == PROBLEM_JSON
    assert resp.json()["detail"] == "pod not found"
    assert (await client.delete("/pods/doesnotexist")).status_code == 404
    resp = await client.post("/pods/doesnotexist/action", json={"action": "stop"})
    assert resp.status_code == 404


async def test_terminate_removes_from_list_and_get(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    pod = await create(client, our_body())
    resp = await client.delete(f"/pods/{pod['id']}")
    assert resp.status_code == 204 and resp.content == b""
    assert (await client.get(f"/pods/{pod['id']}")).status_code == 404
    assert (await client.delete(f"/pods/{pod['id']}")).status_code == 404
    assert (await client.get("/pods")).json()["pods"] == []
    assert sim.alive_pods() == []
    assert [p.status for p in sim.all_pods()] == ["TERMINATED"]


async def test_actions(client: httpx.AsyncClient) -> None:
    pod = await create(client, our_body())
    pod_id = pod["id"]
    resp = await client.post(f"/pods/{pod_id}/action", json={"action": "reset"})
    assert resp.status_code == 422
    assert any("'reset'" in e for e in resp.json()["errors"])
    resp = await client.post(f"/pods/{pod_id}/action", json={"action": "start"})
    assert resp.status_code == 409  # PROVISIONING allows stop/terminate only
    await wait_status(client, pod_id, "RUNNING")

    resp = await client.post(f"/pods/{pod_id}/action", json={"action": "stop"})
    assert resp.status_code == 200
    stopped = resp.json()
    assert_shape("Pod", stopped)
    assert stopped["status"] == "EXITED"
    assert stopped["cost"] == 0.0
    assert stopped["actions"] == ["start", "terminate"]
    assert stopped["ssh"]["direct"] is None and stopped["runtime"] is None
    assert (await client.post(f"/pods/{pod_id}/action", json={"action": "stop"})).status_code == 409

    resp = await client.post(f"/pods/{pod_id}/action", json={"action": "start"})
    assert resp.status_code == 200 and resp.json()["status"] == "STARTING"
    running = await wait_status(client, pod_id, "RUNNING")
    assert running["ssh"]["direct"] is not None

    resp = await client.post(f"/pods/{pod_id}/action", json={"action": "restart"})
    assert resp.status_code == 200 and resp.json()["status"] == "STARTING"
    await wait_status(client, pod_id, "RUNNING")

    resp = await client.post(f"/pods/{pod_id}/action", json={"action": "terminate"})
    assert resp.status_code == 204
    assert (await client.get(f"/pods/{pod_id}")).status_code == 404


async def test_request_record(
    sim: Simulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    pod = await create(client, our_body())
    await client.get(f"/pods/{pod['id']}")
    await client.get(f"/pods/{pod['id']}")
    await client.get("/pods")
    await client.delete(f"/pods/{pod['id']}")
    await client.get("/catalog/gpus")
    assert sim.count("create_pod") == 1
    assert sim.count("get_pod") == 2
    assert sim.count("delete_pod", status=204) == 1
    assert sim.counts() == {
        "create_pod": 1,
        "get_pod": 2,
        "list_pods": 1,
        "delete_pod": 1,
        "list_gpus": 1,
    }
    create_rec = sim.requests[0]
    assert create_rec.method == "POST" and create_rec.path == "/v2/pods"
    assert create_rec.status == 201 and create_rec.pod_id == pod["id"]
    assert create_rec.pod_name == "hangar-c1-n0"

    body = (await admin.get("/requests")).json()
    assert body["counts"]["get_pod"] == 2 and body["total"] == 6
    assert body["requests"][0]["endpoint"] == "create_pod"
    assert (await admin.delete("/requests")).status_code == 204
    assert sim.count() == 0

    pods = (await admin.get("/pods")).json()["pods"]
    assert [(p["name"], p["status"], p["alive"]) for p in pods] == [
        ("hangar-c1-n0", "TERMINATED", False)
    ]


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    resp = await client.get("/nope")
    assert resp.status_code == 404 and resp.headers["content-type"] == PROBLEM_JSON
    resp = await client.put("/pods")
    assert resp.status_code == 405 and "allow" in resp.headers
    assert_shape("ErrorResponse", resp.json())


async def test_start_ssh_uses_account_keys(client: httpx.AsyncClient, public_key: str) -> None:
    resp = await client.put("/account/ssh-keys", json={"keys": [public_key]})
    assert resp.status_code == 200 and resp.json() == {"keys": [public_key]}
    assert (await client.put("/account/ssh-keys", json={"keys": ["junk"]})).status_code == 422
    body = our_body("startssh", startSsh=True)
    del body["env"]
    pod = await create(client, body)
    assert pod["env"]["PUBLIC_KEY"] == public_key
