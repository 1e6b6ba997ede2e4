"""`network: private` (global networking), network volumes and the 422s of both, and
`GET /network-volumes`, through the simulator."""

from __future__ import annotations

from tests.support.stack import assert_problem, wait_for

GPU = "NVIDIA GeForce RTX 4090"
REPORT = ('echo "$HANGAR_NODE_RANK $HANGAR_NODE_ADDR $HANGAR_HEAD_ADDR $MASTER_ADDR" '
          '> "$HOME/net.txt"')


async def test_private_pods_get_private_addresses(hangar, worker, sim) -> None:
    r = await hangar.post("/clusters", json={"name": "pv", "gpu_type": GPU, "nodes": 2,
                                             "network": "private", "setup": REPORT})
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert body["provider_cluster_id"] is None and sim.all_clusters() == []
    pods = {p.id: p for p in sim.alive_pods()}
    assert len(pods) == 2
    head = body["nodes"][0]["private_ip"]
    for node in body["nodes"]:
        pod = pods[node["pod_id"]]
        assert pod.global_networking and pod.request["globalNetworking"] is True
        assert node["private_ip"] == pod.private_ip and node["private_ip"] != node["public_ip"]
        # Only data centers with global networking (the simulator's CA-MTL-1 has none).
        assert sim.catalog.data_center(pod.data_center_id).global_network
        seen = (pod.workdir / "net.txt").read_text().split()
        assert seen == [str(node["index"]), pod.private_ip, head, head]


async def test_public_pods_report_public_addresses(hangar, worker, sim) -> None:
    r = await hangar.post("/clusters", json={"name": "pub", "gpu_type": GPU, "nodes": 2,
                                             "setup": REPORT})
    cid = r.json()["id"]
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert body["network"] == "public"
    head = body["nodes"][0]["public_ip"]
    for node in body["nodes"]:
        assert node["private_ip"] is None
        pod = sim.pod(node["pod_id"])
        assert "globalNetworking" not in pod.request
        seen = (pod.workdir / "net.txt").read_text().split()
        assert seen == [str(node["index"]), node["public_ip"], head, head]


async def test_pinned_data_centers_without_global_networking_are_refused(hangar, sim) -> None:
    r = await hangar.post("/clusters", json={"name": "pv", "gpu_type": GPU, "network": "private",
                                             "data_center_ids": ["CA-MTL-1"]})
    problem = assert_problem(r, 422, "global_networking_unavailable")
    assert "CA-MTL-1" in problem["detail"] and "US-KS-2" in problem["detail"]
    # Pinned ones that have it are kept (in order), the others dropped.
    r = await hangar.post("/clusters", json={"name": "pv", "gpu_type": GPU, "network": "private",
                                             "data_center_ids": ["CA-MTL-1", "EU-RO-1"]})
    assert r.status_code == 202, r.text
    assert sim.all_pods() == []


async def test_cluster_on_a_network_volume(hangar, worker, sim) -> None:
    volume = sim.add_network_volume("data", 100, "EU-RO-1", volume_id="vol1234567")
    r = await hangar.post("/clusters", json={
        "name": "nv", "gpu_type": GPU, "network": "cluster", "nodes": 2,
        "network_volume_id": volume.id, "volume_mount_path": "/data", "setup": "true"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["network_volume_id"] == volume.id and accepted["volume_gb"] == 0
    body = await wait_for(hangar, accepted["id"], {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert {n["data_center_id"] for n in body["nodes"]} == {"EU-RO-1"}
    ic = sim.all_clusters()[0]
    assert ic.request["mounts"] == {"network": [{"volumeId": volume.id, "path": "/data"}]}
    assert ic.request["dataCenterIds"] == ["EU-RO-1"]


async def test_pods_on_a_network_volume(hangar, worker, sim) -> None:
    volume = sim.add_network_volume("data", 100, "US-TX-3")
    r = await hangar.post("/clusters", json={"name": "nv", "gpu_type": GPU, "nodes": 2,
                                             "network_volume_id": volume.id, "setup": "true"})
    assert r.status_code == 202, r.text
    body = await wait_for(hangar, r.json()["id"], {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    for node in body["nodes"]:
        pod = sim.pod(node["pod_id"])
        assert pod.data_center_id == "US-TX-3"
        assert pod.request["mounts"] == {
            "network": [{"volumeId": volume.id, "path": "/workspace"}]}


async def test_network_volume_refusals(hangar, sim) -> None:
    volume = sim.add_network_volume("data", 100, "EU-RO-1")
    base = {"name": "nv", "gpu_type": GPU}

    r = await hangar.post("/clusters", json={**base, "network_volume_id": "nosuchvol"})
    problem = assert_problem(r, 422, "unknown_network_volume")
    assert "nosuchvol" in problem["detail"] and "GET /network-volumes" in problem["detail"]

    r = await hangar.post("/clusters", json={**base, "network_volume_id": volume.id,
                                             "data_center_ids": ["US-KS-2", "US-TX-3"]})
    problem = assert_problem(r, 422, "network_volume_data_center")
    assert "EU-RO-1" in problem["detail"] and problem["data_center_id"] == "EU-RO-1"

    r = await hangar.post("/clusters", json={**base, "network_volume_id": volume.id,
                                             "volume_gb": 20})
    problem = assert_problem(r, 422, "invalid_request")
    assert [e["field"] for e in problem["errors"]] == ["network_volume_id"]
    assert "volume_gb" in problem["detail"]

    # A volume in a data center without global networking cannot carry `private` pods.
    other = sim.add_network_volume("se", 100, "CA-MTL-1")
    r = await hangar.post("/clusters", json={**base, "network_volume_id": other.id,
                                             "network": "private"})
    assert_problem(r, 422, "global_networking_unavailable")
    assert sim.all_pods() == [] and sim.all_clusters() == []


async def test_request_refusals_for_instant_clusters(hangar, sim) -> None:
    base = {"name": "ic", "gpu_type": GPU, "network": "cluster"}
    for nodes in (1, 251):
        problem = assert_problem(await hangar.post("/clusters", json={**base, "nodes": nodes}),
                                 422, "invalid_request")
        assert [e["field"] for e in problem["errors"]] == ["nodes"]
        assert "2 to 250" in problem["detail"] or "less than or equal to 250" in problem["detail"]
    problem = assert_problem(await hangar.post("/clusters", json={
        **base, "nodes": 2, "cloud_type": "community"}), 422, "invalid_request")
    assert [e["field"] for e in problem["errors"]] == ["cloud_type"]
    assert "secure cloud only" in problem["detail"]
    problem = assert_problem(await hangar.post("/clusters", json={
        "name": "pods", "gpu_type": GPU, "nodes": 65}), 422, "invalid_request")
    assert "network 'cluster'" in problem["detail"]
    problem = assert_problem(await hangar.post("/clusters", json={
        **base, "nodes": 2, "network": "mesh"}), 422, "invalid_request")
    assert [e["field"] for e in problem["errors"]] == ["network"]
    assert sim.all_clusters() == [] and sim.count("create_cluster") == 0


async def test_instant_cluster_of_up_to_250_nodes_is_accepted(client_for, served_with) -> None:
    served, _ = await served_with(max_live_nodes=250)
    client = await client_for("big")
    client.base_url = served.url
    r = await client.post("/clusters", json={"name": "big", "gpu_type": GPU,
                                             "network": "cluster", "nodes": 250})
    assert r.status_code == 202, r.text
    assert r.json()["node_count"] == 250 and len(r.json()["nodes"]) == 250


async def test_list_network_volumes(hangar, sim) -> None:
    assert (await hangar.get("/network-volumes")).json() == []
    a = sim.add_network_volume("datasets", 500, "EU-RO-1", volume_id="vola000001")
    sim.add_network_volume("ckpt", 50, "US-KS-2", volume_id="volb000002",
                           type="HIGH_PERFORMANCE")
    r = await hangar.get("/network-volumes")
    assert r.status_code == 200
    got = sorted(r.json(), key=lambda v: v["id"])
    assert got == [
        {"id": a.id, "name": "datasets", "size_gb": 500, "data_center_id": "EU-RO-1",
         "type": "STANDARD"},
        {"id": "volb000002", "name": "ckpt", "size_gb": 50, "data_center_id": "US-KS-2",
         "type": "HIGH_PERFORMANCE"},
    ]
    anonymous = await hangar.get("/network-volumes", headers={"Authorization": ""})
    assert_problem(anonymous, 401)
    sim.faults.server_error(503, endpoint="network_volumes")
    assert_problem(await hangar.get("/network-volumes"), 503, "provider_unavailable")
