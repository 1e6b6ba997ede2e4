"""The GPU catalog and data centers: shapes, include/product rules, stock."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from app.simulator import Simulator

from .helpers import GPU, assert_shape, create, our_body

EXPECTED_IDS = {
    "NVIDIA GeForce RTX 4090",
    "NVIDIA RTX A6000",
    "NVIDIA A100 80GB PCIe",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 80GB HBM3",
    "NVIDIA H100 PCIe",
    "NVIDIA H100 NVL",
    "NVIDIA L40S",
}


async def test_list_gpus_plain(client: httpx.AsyncClient) -> None:
    resp = await client.get("/catalog/gpus")
    assert resp.status_code == 200
    body = resp.json()
    assert_shape("ListGpuTypesResponse", body)
    by_id = {g["id"]: g for g in body["gpus"]}
    assert set(by_id) == EXPECTED_IDS
    assert by_id["NVIDIA H100 80GB HBM3"]["name"] == "H100 SXM"
    rtx = by_id[GPU]
    assert rtx["price"] == {"secure": 0.44, "community": 0.31, "serverless": 1.1}
    assert rtx["maxCount"] == {"secure": 8, "community": 4}
    assert rtx["memory"] == 24 and rtx["secure"] and rtx["community"]
    assert "availability" not in rtx and "dataCenters" not in rtx


async def test_include_and_product_rules(client: httpx.AsyncClient) -> None:
    bad = [
        {"include": "AVAILABILITY"},
        {"product": "POD"},
        {"count": "2"},
        {"cloud": "SECURE"},
        {
            "include": "AVAILABILITY",
            "product": "POD",
            "cudaVersions": "12.8",
            "minCudaVersion": "12.4",
        },
    ]
    for params in bad:
        resp = await client.get("/catalog/gpus", params=params)
        assert resp.status_code == 400, params
        assert_shape("ErrorResponse", resp.json())
    resp = await client.get("/catalog/gpus", params={"include": "AVAILABILITY", "product": "BOAT"})
    assert resp.status_code == 422
    resp = await client.get(f"/catalog/gpus/{quote(GPU)}", params={"product": "POD"})
    assert resp.status_code == 400


async def test_availability_per_data_center(sim: Simulator, client: httpx.AsyncClient) -> None:
    params = {"include": "AVAILABILITY", "product": "POD"}
    body = (await client.get("/catalog/gpus", params=params)).json()
    assert_shape("ListGpuTypesResponse", body)
    rtx = next(g for g in body["gpus"] if g["id"] == GPU)
    assert rtx["availability"] == "HIGH"
    assert {d["id"] for d in rtx["dataCenters"]} == {"US-KS-2", "EU-RO-1", "US-TX-3", "CA-MTL-1"}
    assert all(d["availability"] == "HIGH" and d["name"] for d in rtx["dataCenters"])
    assert {"version": "12.8", "available": True} in rtx["cudaVersions"]

    community = (
        await client.get("/catalog/gpus", params={**params, "cloud": "COMMUNITY", "count": "2"})
    ).json()
    rtx = next(g for g in community["gpus"] if g["id"] == GPU)
    assert {d["id"] for d in rtx["dataCenters"]} == {"EU-RO-1", "CA-MTL-1", "EU-SE-1"}
    nvl = next(g for g in community["gpus"] if g["id"] == "NVIDIA H100 NVL")
    assert nvl["availability"] == "NONE" and "dataCenters" not in nvl

    sim.set_stock(2, gpu_id=GPU, data_center="US-KS-2")
    sim.set_stock(0, gpu_id=GPU, data_center="EU-RO-1")
    rtx = (await client.get(f"/catalog/gpus/{quote(GPU)}", params=params)).json()
    assert_shape("GpuType", rtx)
    levels = {d["id"]: d["availability"] for d in rtx["dataCenters"]}
    assert levels["US-KS-2"] == "LOW" and levels["EU-RO-1"] == "NONE"

    fr = (await client.get("/catalog/gpus", params={**params, "countryCodes": "RO"})).json()
    assert GPU in {g["id"] for g in fr["gpus"]}
    assert "NVIDIA H100 NVL" in {g["id"] for g in fr["gpus"]}
    assert "NVIDIA RTX A6000" not in {g["id"] for g in fr["gpus"]}  # not in Romania (secure)


async def test_get_gpu_by_encoded_id_and_404(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"/catalog/gpus/{quote('NVIDIA A100 80GB PCIe')}")
    assert resp.status_code == 200
    assert_shape("GpuType", resp.json())
    assert resp.json()["name"] == "A100 PCIe"
    resp = await client.get(f"/catalog/gpus/{quote('NVIDIA RTX 9999')}")
    assert resp.status_code == 404
    assert_shape("ErrorResponse", resp.json())


async def test_stock_decrements_and_restores(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_stock(1, gpu_id=GPU, data_center="US-KS-2", cloud="SECURE")
    pod = await create(client, our_body("first"))
    assert sim.catalog.free(GPU, "US-KS-2", "SECURE") == 0
    resp = await client.post("/pods", json=our_body("second"))
    assert resp.status_code == 400
    await client.delete(f"/pods/{pod['id']}")
    assert sim.catalog.free(GPU, "US-KS-2", "SECURE") == 1
    await create(client, our_body("third"))


async def test_datacenters(sim: Simulator, client: httpx.AsyncClient) -> None:
    body = (await client.get("/catalog/datacenters")).json()
    assert_shape("ListDataCentersResponse", body)
    assert {d["id"] for d in body["dataCenters"]} >= {"US-KS-2", "EU-RO-1", "US-TX-3", "CA-MTL-1"}
    assert all("gpuAvailability" not in d for d in body["dataCenters"])
    body = (
        await client.get(
            "/catalog/datacenters", params={"regions": "EUROPE", "include": "GPU_AVAILABILITY"}
        )
    ).json()
    assert_shape("ListDataCentersResponse", body)
    assert {d["id"] for d in body["dataCenters"]} == {"EU-RO-1", "EU-SE-1"}
    ro = next(d for d in body["dataCenters"] if d["id"] == "EU-RO-1")
    assert {"id": GPU, "name": "RTX 4090", "availability": "HIGH"} in ro["gpuAvailability"]
