"""Instant Clusters over real HTTP: lifecycle, members over real SSH, hidden members,
all-or-nothing placement, faults, spec validation, admin views."""

from __future__ import annotations

import asyncssh
import httpx
import pytest

from app.simulator import CAPACITY_DETAIL, Simulator
from app.simulator.problems import PROBLEM_JSON

from .helpers import (
    GPU,
    assert_shape,
    cluster_body,
    create,
    create_cluster,
    our_body,
    ssh_connect,
    wait_members,
)


async def test_cluster_lifecycle_members_and_delete(
    sim: Simulator, client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    created = await create_cluster(client, cluster_body("train-a", public_key))
    assert_shape("Cluster", created)
    assert created["name"] == "train-a" and created["type"] == "TRAINING"
    assert created["compute"] == {"gpuTypeId": GPU, "gpuCountPerPod": 1, "podCount": 3}
    assert created["dataCenterId"] == "US-KS-2"
    assert created["pods"] == {"total": 3, "byStatus": {"PROVISIONING": 3}}
    assert "network" not in created and "primary" not in created  # not provisioned yet

    members = await wait_members(client, created["id"])
    for rank, member in enumerate(members):
        assert_shape("Pod", member)
        assert member["cluster"] == {"id": created["id"], "rank": rank, "ip": f"10.65.0.{rank + 2}"}
        assert member["dataCenterId"] == "US-KS-2" and member["cost"] == 0.44
        assert member["globalNetworking"] == {"enabled": False}

    cluster = (await client.get(f"/clusters/{created['id']}")).json()
    assert_shape("Cluster", cluster)
    assert cluster["pods"] == {"total": 3, "byStatus": {"RUNNING": 3}}
    assert cluster["network"]["cidr"] == "10.65.0.0/16"
    head = members[0]
    assert cluster["primary"] == {
        "podId": head["id"],
        "status": "RUNNING",
        "sshEndpoint": f"{head['ssh']['direct']['host']}:{head['ssh']['direct']['port']}",
    }
    listed = (await client.get("/clusters")).json()
    assert_shape("ListClustersResponse", listed)
    assert [c["id"] for c in listed["clusters"]] == [created["id"]]

    # Every member is a real SSH pod taking the key given at create, with RunPod's
    # cluster environment.
    for rank, member in enumerate(members):
        async with await ssh_connect(member, ssh_key) as conn:
            result = await conn.run(
                'echo "$NODE_RANK $NODE_ADDR $MASTER_ADDR $PRIMARY_ADDR $NUM_NODES $WORLD_SIZE"'
            )
        assert result.stdout == f"{rank} 10.65.0.{rank + 2} 10.65.0.2 10.65.0.2 3 3\n"
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(members[1], stranger)

    resp = await client.delete(f"/clusters/{created['id']}")
    assert resp.status_code == 204 and resp.content == b""
    assert sim.alive_pods() == [] and sim.alive_clusters() == []
    for path in (f"/clusters/{created['id']}", f"/clusters/{created['id']}/pods"):
        resp = await client.get(path)
        assert resp.status_code == 404 and resp.headers["content-type"] == PROBLEM_JSON
        assert_shape("ErrorResponse", resp.json())
    for member in members:
        assert (await client.get(f"/pods/{member['id']}")).status_code == 404
    assert (await client.delete(f"/clusters/{created['id']}")).status_code == 404
    assert (await client.get("/clusters")).json() == {"clusters": []}
    # Every member's GPUs went back to the stock.
    stock = {(s["gpuId"], s["dataCenterId"], s["cloud"]): s["free"] for s in sim.catalog.stock_json()}
    assert stock[(GPU, "US-KS-2", "SECURE")] == sim.catalog.default_stock


async def test_members_are_hidden_from_pod_list_and_refuse_pod_endpoints(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    alone = await create(client, our_body("alone"))
    cluster = await create_cluster(client, cluster_body("pair", pods=2))
    members = (await client.get(f"/clusters/{cluster['id']}/pods")).json()["pods"]
    assert len(members) == 2

    listed = (await client.get("/pods")).json()["pods"]
    assert [p["id"] for p in listed] == [alone["id"]]
    assert "cluster" not in listed[0]
    resp = await client.get("/pods", params={"includeClusterPods": "true"})
    everything = resp.json()["pods"]
    assert_shape("ListPodsResponse", resp.json())
    assert {p["id"] for p in everything} == {alone["id"]} | {m["id"] for m in members}
    assert all(p["cluster"]["id"] == cluster["id"] for p in everything if p["id"] != alone["id"])
    assert (await client.get("/pods", params={"includeClusterPods": "maybe"})).status_code == 422

    member = members[0]
    got = (await client.get(f"/pods/{member['id']}")).json()
    assert got["cluster"]["id"] == cluster["id"]
    resp = await client.delete(f"/pods/{member['id']}")
    assert resp.status_code == 409 and resp.headers["content-type"] == PROBLEM_JSON
    assert cluster["id"] in resp.json()["detail"]
    assert_shape("ErrorResponse", resp.json())
    resp = await client.post(f"/pods/{member['id']}/action", json={"action": "stop"})
    assert resp.status_code == 409
    assert len(sim.alive_pods()) == 3  # nothing was terminated


async def test_rank_and_overlay_address_wait_for_provisioning(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.pod_timing(provision_delay=30, name_prefix="slow-")
    cluster = await create_cluster(client, cluster_body("slow-c", pods=2))
    members = (await client.get(f"/clusters/{cluster['id']}/pods")).json()["pods"]
    for member in members:
        assert_shape("Pod", member)
        assert member["status"] == "PROVISIONING"
        assert member["cluster"] == {"id": cluster["id"], "rank": None}
    again = (await client.get(f"/clusters/{cluster['id']}")).json()
    assert "network" not in again and "primary" not in again


async def test_placement_is_all_or_nothing_in_one_data_center(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    # Room for two of three members in US-KS-2: nothing is created there.
    sim.set_stock(2, gpu_id=GPU, data_center="US-KS-2", cloud="SECURE")
    resp = await client.post("/clusters", json=cluster_body("big", pods=3))
    assert resp.status_code == 400 and resp.json()["detail"] == CAPACITY_DETAIL
    assert sim.all_pods() == [] and sim.all_clusters() == []
    assert sim.catalog.free(GPU, "US-KS-2", "SECURE") == 2

    # The next allowed data center has room for all of them.
    body = cluster_body("big", pods=3, dataCenterIds=["US-KS-2", "US-TX-3"])
    cluster = await create_cluster(client, body)
    assert cluster["dataCenterId"] == "US-TX-3"
    members = (await client.get(f"/clusters/{cluster['id']}/pods")).json()["pods"]
    assert {m["dataCenterId"] for m in members} == {"US-TX-3"}
    # Two one-GPU pods still fit in US-KS-2.
    assert (await client.post("/pods", json=our_body("small"))).status_code == 201


async def test_capacity_fault_for_cluster_creates_only(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.capacity(gpu_ids=GPU, data_centers="US-KS-2", products="CLUSTER")
    resp = await client.post("/clusters", json=cluster_body("c"))
    assert resp.status_code == 400 and resp.json()["detail"] == CAPACITY_DETAIL
    assert sim.all_pods() == []
    # Pods are not affected, and the cluster goes to the next allowed data center.
    assert (await client.post("/pods", json=our_body("p"))).json()["dataCenterId"] == "US-KS-2"
    body = cluster_body("c", dataCenterIds=["US-KS-2", "EU-RO-1"])
    assert (await create_cluster(client, body))["dataCenterId"] == "EU-RO-1"

    # The catalog reports the blocked offering as unavailable for clusters only.
    async def level(product: str) -> str:
        params = {"include": "AVAILABILITY", "product": product}
        gpu = (await client.get(f"/catalog/gpus/{GPU}", params=params)).json()
        return next(d["availability"] for d in gpu["dataCenters"] if d["id"] == "US-KS-2")

    assert await level("CLUSTER") == "NONE"
    assert await level("POD") != "NONE"
    with pytest.raises(ValueError):
        sim.faults.capacity(products="SERVERLESS")


async def test_rule_violations_are_400_and_create_nothing(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    cases = [
        (cluster_body(compute={"gpuTypeId": "RTX 9999", "gpuCountPerPod": 1, "podCount": 2}),
         "compute.gpuTypeId"),
        (cluster_body(compute={"gpuTypeId": GPU, "gpuCountPerPod": 9, "podCount": 2}),
         "exceeds maxCount 8"),
        (cluster_body(dataCenterIds=["XX-1"]), "unknown data center"),
        (cluster_body(ports=["22/tcp", "nope"]), "invalid port"),
        (cluster_body(mounts={"persistent": {"size": 20, "path": "/w"},
                              "network": [{"volumeId": "v", "path": "/n"}]}),
         "mutually exclusive"),
    ]
    for body, fragment in cases:
        resp = await client.post("/clusters", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert fragment in resp.json()["detail"]
    assert sim.all_pods() == [] and sim.all_clusters() == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"compute": {"gpuTypeId": GPU, "gpuCountPerPod": 1, "podCount": 1}}, "podCount"),
        ({"compute": {"gpuTypeId": GPU, "gpuCountPerPod": 1, "podCount": 251}}, "podCount"),
        ({"compute": {"gpuTypeId": GPU, "gpuCountPerPod": 0, "podCount": 2}}, "gpuCountPerPod"),
        ({"compute": {"gpuTypeId": GPU, "podCount": 2}}, "gpuCountPerPod"),
        ({"compute": {"gpuTypeId": GPU, "gpuCountPerPod": 1, "podCount": 2, "x": 1}}, "'x'"),
        ({"type": "BATCH"}, "type"),
        ({"cloud": "SECURE"}, "'cloud'"),  # clusters have no cloud field
        ({"registry": "reg-1"}, "'registry'"),  # nor a registry credential
        ({"globalNetworking": True}, "'globalNetworking'"),
        ({"gpu": {"id": GPU, "count": 1}}, "'gpu'"),
        ({"mounts": {"network": [{"volumeId": "v"}]}}, "path"),
        ({"disk": 0}, "disk"),
    ],
)
async def test_spec_validator_refuses_bad_bodies(
    sim: Simulator, client: httpx.AsyncClient, change: dict, where: str
) -> None:
    resp = await client.post("/clusters", json=cluster_body("bad", **change))
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert_shape("ErrorResponse", problem)
    assert any(where in line for line in problem["errors"]), problem["errors"]
    assert sim.all_clusters() == []


async def test_missing_required_fields_and_non_json(client: httpx.AsyncClient) -> None:
    body = cluster_body()
    for field in ("name", "type", "compute"):
        partial = {k: v for k, v in body.items() if k != field}
        resp = await client.post("/clusters", json=partial)
        assert resp.status_code == 422 and field in " ".join(resp.json()["errors"])
    resp = await client.post("/clusters", content=b"{not json", headers={"content-type": "x"})
    assert resp.status_code == 422


async def test_lost_cluster_create_is_found_by_name(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.lost_create(count=1, endpoint="create_cluster")
    with pytest.raises(httpx.TransportError):
        await client.post("/clusters", json=cluster_body("hangar-lost", pods=2))
    listed = (await client.get("/clusters")).json()["clusters"]
    assert [c["name"] for c in listed] == ["hangar-lost"]
    assert listed[0]["pods"]["total"] == 2
    record = next(r for r in sim.requests if r.endpoint == "create_cluster")
    assert record.status == 201 and not record.delivered
    assert record.fault == "lost_create:drop"
    assert record.cluster_id == listed[0]["id"] and record.cluster_name == "hangar-lost"
    # Pod creates were not covered by that rule, and the rule is used up.
    await create(client, our_body("p"))
    await create_cluster(client, cluster_body("hangar-next", pods=2))
    with pytest.raises(ValueError):
        sim.faults.lost_create(endpoint="get_cluster")


async def test_rate_limits_and_server_errors_on_cluster_endpoints(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.rate_limit(count=1, endpoint="clusters", retry_after=7)
    resp = await client.get("/clusters")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "7"
    assert (await client.get("/pods")).status_code == 200  # pod endpoints unaffected

    sim.faults.server_error(503, count=1, endpoint="create_cluster")
    resp = await client.post("/clusters", json=cluster_body("c5"))
    assert resp.status_code == 503 and resp.headers["content-type"] == PROBLEM_JSON
    assert sim.all_clusters() == []  # refused before the handler: nothing created
    cluster = await create_cluster(client, cluster_body("c5"))

    sim.faults.server_error(500, count=1, endpoint="delete_cluster")
    assert (await client.delete(f"/clusters/{cluster['id']}")).status_code == 500
    assert sim.alive_clusters() != []
    assert (await client.delete(f"/clusters/{cluster['id']}")).status_code == 204

    # Name-prefix rules see the cluster's name on its own endpoints.
    other = await create_cluster(client, cluster_body("keep-me"))
    sim.faults.server_error(502, endpoint="clusters", name_prefix="keep-")
    assert (await client.get(f"/clusters/{other['id']}")).status_code == 502
    assert (await client.post("/clusters", json=cluster_body("keep-2"))).status_code == 502
    assert (await client.post("/clusters", json=cluster_body("other"))).status_code == 201


async def test_member_faults_follow_the_member_name(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.exit_after(0.01, status="ERROR", name_prefix="flaky-1")
    cluster = await create_cluster(client, cluster_body("flaky", pods=2))
    member = next(p for p in sim.all_pods() if p.name == "flaky-1")
    await sim.wait_for_status(member.id, "ERROR")
    summary = (await client.get(f"/clusters/{cluster['id']}")).json()
    assert summary["pods"]["byStatus"].get("ERROR") == 1


async def test_admin_views_cover_clusters(
    sim: Simulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    cluster = await create_cluster(client, cluster_body("seen", pods=2))
    await wait_members(client, cluster["id"])
    await client.delete(f"/clusters/{cluster['id']}")

    views = (await admin.get("/clusters")).json()["clusters"]
    assert len(views) == 1 and views[0]["id"] == cluster["id"] and not views[0]["alive"]
    assert [m["rank"] for m in views[0]["members"]] == [0, 1]
    assert {m["status"] for m in views[0]["members"]} == {"TERMINATED"}
    assert (await admin.get("/clusters", params={"alive": "true"})).json()["clusters"] == []
    one = (await admin.get(f"/clusters/{cluster['id']}")).json()
    assert one["members"][1]["ip"] == "10.65.0.3"
    assert (await admin.get("/clusters/nope")).status_code == 404

    pods = (await admin.get("/pods")).json()["pods"]
    assert sorted((p["rank"], p["clusterId"], p["privateIp"]) for p in pods) == [
        (0, cluster["id"], "10.65.0.2"),
        (1, cluster["id"], "10.65.0.3"),
    ]
    counts = (await admin.get("/requests")).json()["counts"]
    assert counts["create_cluster"] == 1 and counts["delete_cluster"] == 1
    assert counts["list_cluster_pods"] >= 1

    resp = await admin.post(
        "/faults", json={"kind": "lost_create", "count": 1, "endpoint": "create_cluster"}
    )
    assert resp.status_code == 201 and resp.json()["endpoints"] == ["create_cluster"]
    assert (await admin.post("/reset")).status_code == 204
    assert sim.all_clusters() == [] and sim.faults.rules == []
