"""Global networking on pods and network volumes (seeded, listed, mounted, refused)."""

from __future__ import annotations

import httpx
import pytest

from app.simulator import Simulator
from app.simulator.problems import PROBLEM_JSON

from .helpers import assert_shape, cluster_body, create, create_cluster, our_body, wait_status


async def test_global_networking_private_ip_once_assigned(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    first = await create(client, our_body("gn-0", globalNetworking=True))
    assert_shape("Pod", first)
    # "Derived from whether the pod has an assigned global-network address": not yet.
    assert first["globalNetworking"] == {"enabled": False}
    second = await create(client, our_body("gn-1", globalNetworking=True))
    plain = await create(client, our_body("plain"))

    first = await wait_status(client, first["id"], "RUNNING")
    second = await wait_status(client, second["id"], "RUNNING")
    plain = await wait_status(client, plain["id"], "RUNNING")
    for pod in (first, second):
        assert_shape("Pod", pod)
        networking = pod["globalNetworking"]
        assert networking["enabled"] is True and networking["ip"].startswith("10.65.")
        assert networking["internalDns"] == f"{pod['id']}.runpod.internal"
    assert first["globalNetworking"]["ip"] != second["globalNetworking"]["ip"]
    assert plain["globalNetworking"] == {"enabled": False}
    assert "cluster" not in first


async def test_global_networking_needs_an_eligible_data_center(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    # CA-MTL-1 has no global networking in the simulated catalog.
    resp = await client.post(
        "/pods", json=our_body("gn", globalNetworking=True, dataCenterIds=["CA-MTL-1"])
    )
    assert resp.status_code == 400 and "global networking" in resp.json()["detail"]
    # Without dataCenterIds the pod lands where global networking exists.
    sim.set_stock(0, data_center="US-KS-2")
    sim.set_stock(0, data_center="US-TX-3")
    sim.set_stock(0, data_center="EU-RO-1")
    resp = await client.post(
        "/pods", json=our_body("gn", globalNetworking=True, dataCenterIds=[])
    )
    assert resp.status_code == 400  # only CA-MTL-1 has stock left: no capacity
    sim.set_stock(5, data_center="EU-RO-1")
    pod = await create(client, our_body("gn", globalNetworking=True, dataCenterIds=[]))
    assert pod["dataCenterId"] == "EU-RO-1"


async def test_network_volumes_listed_and_read(
    sim: Simulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    assert (await client.get("/network-volumes")).json() == {"networkVolumes": []}
    resp = await admin.post(
        "/network-volumes",
        json={"id": "vol-data", "name": "dataset", "size": 100, "dataCenterId": "EU-RO-1"},
    )
    assert resp.status_code == 201
    assert resp.json() == {
        "id": "vol-data",
        "name": "dataset",
        "size": 100,
        "dataCenter": "EU-RO-1",
        "type": "STANDARD",
    }
    fast = sim.add_network_volume("fast", 50, "US-KS-2", type="HIGH_PERFORMANCE")

    listed = (await client.get("/network-volumes")).json()
    assert_shape("ListNetworkVolumesResponse", listed)
    assert [v["id"] for v in listed["networkVolumes"]] == ["vol-data", fast.id]
    one = (await client.get(f"/network-volumes/{fast.id}")).json()
    assert_shape("NetworkVolume", one)
    assert one["dataCenter"] == "US-KS-2" and one["type"] == "HIGH_PERFORMANCE"

    resp = await client.get("/network-volumes/nope")
    assert resp.status_code == 404 and resp.headers["content-type"] == PROBLEM_JSON
    # Read only here: creating and deleting volumes is not Hangar's business.
    resp = await client.post("/network-volumes", json={"name": "x", "size": 10})
    assert resp.status_code == 405
    assert sim.count("list_network_volumes") == 2 and sim.count("get_network_volume") == 2

    assert (await admin.get("/network-volumes")).json() == listed
    assert (await admin.delete("/network-volumes/vol-data")).status_code == 204
    assert (await admin.delete("/network-volumes/vol-data")).status_code == 404
    assert (await client.get("/network-volumes/vol-data")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "v", "size": 5, "dataCenterId": "EU-RO-1"},
        {"name": "v", "size": 5000, "dataCenterId": "EU-RO-1"},
        {"name": "v", "size": 20, "dataCenterId": "XX-1"},
        {"name": "v", "size": 20, "dataCenterId": "EU-SE-1"},  # offers no volumes
        {"name": "v", "size": 20, "dataCenterId": "US-TX-3", "type": "HIGH_PERFORMANCE"},
        {"name": "", "size": 20, "dataCenterId": "EU-RO-1"},
        {"size": 20, "dataCenterId": "EU-RO-1"},
    ],
)
async def test_seeding_refuses_what_runpod_would(
    admin: httpx.AsyncClient, body: dict
) -> None:
    assert (await admin.post("/network-volumes", json=body)).status_code == 422


async def test_pod_with_a_network_volume(sim: Simulator, client: httpx.AsyncClient) -> None:
    volume = sim.add_network_volume("data", 100, "EU-RO-1")
    mounts = {"network": [{"volumeId": volume.id, "path": "/data"}]}

    # Unknown volume: 404, nothing created.
    resp = await client.post(
        "/pods", json=our_body(mounts={"network": [{"volumeId": "nope", "path": "/data"}]})
    )
    assert resp.status_code == 404 and "nope" in resp.json()["detail"]
    # dataCenterIds that exclude the volume's data center: 400.
    resp = await client.post("/pods", json=our_body(mounts=mounts, dataCenterIds=["US-KS-2"]))
    assert resp.status_code == 400 and "EU-RO-1" in resp.json()["detail"]
    assert sim.all_pods() == []

    # Otherwise the pod goes where the volume is, and reports the mount.
    for dc_ids in ([], ["US-KS-2", "EU-RO-1"]):
        pod = await create(client, our_body(mounts=mounts, dataCenterIds=dc_ids))
        assert_shape("Pod", pod)
        assert pod["dataCenterId"] == "EU-RO-1" and pod["mounts"] == mounts
    # No capacity in the volume's data center is a capacity error, not a move.
    sim.set_stock(0, data_center="EU-RO-1")
    assert (await client.post("/pods", json=our_body(mounts=mounts))).status_code == 400


async def test_cluster_with_a_network_volume(sim: Simulator, client: httpx.AsyncClient) -> None:
    volume = sim.add_network_volume("data", 100, "US-TX-3")
    mounts = {"network": [{"volumeId": volume.id, "path": "/workspace"}]}

    resp = await client.post(
        "/clusters",
        json=cluster_body(mounts={"network": [{"volumeId": "gone", "path": "/workspace"}]}),
    )
    assert resp.status_code == 404
    resp = await client.post("/clusters", json=cluster_body(mounts=mounts))  # US-KS-2 only
    assert resp.status_code == 400 and "US-TX-3" in resp.json()["detail"]
    assert sim.all_clusters() == [] and sim.all_pods() == []

    cluster = await create_cluster(client, cluster_body(mounts=mounts, dataCenterIds=[]))
    assert cluster["dataCenterId"] == "US-TX-3"
    members = (await client.get(f"/clusters/{cluster['id']}/pods")).json()["pods"]
    assert {m["dataCenterId"] for m in members} == {"US-TX-3"}
    assert all(m["mounts"] == mounts for m in members)
