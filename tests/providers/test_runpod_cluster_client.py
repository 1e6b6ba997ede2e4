"""Instant Cluster and network volume calls against a respx-mocked v2 API: which failures
are retried, error mapping, tolerant parsing."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import httpx
import pytest

from app.providers.base import (
    AccessDenied,
    CapacityError,
    ClusterSpec,
    InvalidRequest,
    NotFound,
    PodState,
    RateLimited,
    ServerError,
    TransportError,
)
from app.providers.runpod import Conflict, ConnectFailed, UnexpectedResponse
from app.simulator.spec import validation_errors

from .conftest import API_KEY

GPU = "NVIDIA H100 80GB HBM3"
CAPACITY_TEXT = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)

CLUSTER: dict[str, Any] = {
    "id": "cl_abc123",
    "name": "hangar-c1-a1",
    "type": "TRAINING",
    "compute": {"gpuTypeId": GPU, "gpuCountPerPod": 8, "podCount": 2},
    "dataCenterId": "US-TX-3",
    "pods": {"total": 2, "byStatus": {"RUNNING": 1, "STARTING": 1}},
    "network": {"cidr": "10.65.0.0/16", "vxlanId": 42, "vxlanPort": 4789},
    "primary": {"podId": "pod_node0", "status": "RUNNING", "sshEndpoint": "1.2.3.4:22001"},
    "createdAt": "2026-06-29T20:00:00Z",
}


def spec_for(**kw: Any) -> ClusterSpec:
    values: dict[str, Any] = {"name": "hangar-c1-a1", "image": "img", "gpu_type_id": GPU,
                              "gpu_count": 8, "node_count": 2, "volume_gb": 0}
    values.update(kw)
    return ClusterSpec(**values)


def member(pod_json, pod_id: str, rank: int | None, ip: str | None, **kw: Any) -> dict:
    cluster: dict[str, Any] = {"id": "cl_abc123", "rank": rank}
    if ip is not None:
        cluster["ip"] = ip
    pod = pod_json(id=pod_id, name=f"hangar-c1-a1-{rank}", cluster=cluster, **kw)
    pod["ssh"]["direct"]["port"] = 22000 + (rank or 0)
    return pod


def test_the_hand_made_payloads_match_the_spec(pod_json) -> None:
    assert validation_errors("Cluster", CLUSTER) == []
    assert validation_errors("Pod", member(pod_json, "p0", 0, "10.65.0.2")) == []
    assert validation_errors("Pod", member(pod_json, "p1", None, None)) == []


async def test_create_sends_the_v2_body_and_maps_the_answer(provider, runpod_api) -> None:
    route = runpod_api.post("/clusters").mock(return_value=httpx.Response(201, json=CLUSTER))
    cluster = await provider.create_cluster(spec_for(
        env={"PUBLIC_KEY": "ssh-ed25519 AAAA"}, data_center_ids=("US-TX-3",),
        network_volume_id="vol-1", ports=("8888/http",),
    ))
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = json.loads(sent.content)
    assert body == {
        "name": "hangar-c1-a1",
        "type": "TRAINING",
        "compute": {"gpuTypeId": GPU, "gpuCountPerPod": 8, "podCount": 2},
        "image": "img",
        "disk": 50,
        "ports": ["22/tcp", "8888/http"],
        "env": {"PUBLIC_KEY": "ssh-ed25519 AAAA"},
        "dataCenterIds": ["US-TX-3"],
        "mounts": {"network": [{"volumeId": "vol-1", "path": "/workspace"}]},
    }
    assert validation_errors("CreateClusterRequest", body) == []
    assert cluster.id == "cl_abc123" and cluster.node_count == 2 and cluster.gpu_count == 8
    assert cluster.data_center_id == "US-TX-3" and cluster.network_cidr == "10.65.0.0/16"
    assert cluster.members_by_status == {"RUNNING": 1, "STARTING": 1}
    assert cluster.primary_pod_id == "pod_node0" and cluster.members == ()


@pytest.mark.parametrize(
    ("status", "detail", "error"),
    [
        (400, CAPACITY_TEXT, CapacityError),
        (400, "compute.gpuCountPerPod 9 exceeds maxCount 8", InvalidRequest),
        (404, "network volume 'vol-1' not found", InvalidRequest),
        (422, "Request validation failed.", InvalidRequest),
    ],
)
async def test_create_error_mapping(provider, runpod_api, problem, status, detail, error) -> None:
    route = runpod_api.post("/clusters").mock(return_value=problem(status, detail))
    with pytest.raises(error) as info:
        await provider.create_cluster(spec_for())
    assert info.value.status == status and not isinstance(info.value, NotFound)
    assert route.call_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_create_not_retried_on_5xx(provider, runpod_api, problem, sleeps, status) -> None:
    route = runpod_api.post("/clusters").mock(return_value=problem(status, "upstream"))
    with pytest.raises(ServerError):
        await provider.create_cluster(spec_for())
    assert route.call_count == 1 and sleeps == []


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
async def test_create_not_retried_when_it_may_have_arrived(provider, runpod_api, sleeps, exc):
    route = runpod_api.post("/clusters").mock(side_effect=exc("boom"))
    with pytest.raises(TransportError) as info:
        await provider.create_cluster(spec_for())
    assert not isinstance(info.value, ConnectFailed)
    assert route.call_count == 1 and sleeps == []


async def test_create_retried_on_429_and_connect_errors(
    provider, runpod_api, problem, sleeps
) -> None:
    route = runpod_api.post("/clusters").mock(
        side_effect=[
            problem(429, "rate limit exceeded for the minute window", headers={"Retry-After": "4"}),
            httpx.ConnectError("refused"),
            httpx.Response(201, json=CLUSTER),
        ]
    )
    await provider.create_cluster(spec_for())
    assert route.call_count == 3 and sleeps == [4.0, 2.0]


async def test_create_gives_up_on_429(provider, runpod_api, problem, sleeps) -> None:
    runpod_api.post("/clusters").mock(return_value=problem(429, "slow down"))
    with pytest.raises(RateLimited):
        await provider.create_cluster(spec_for())
    assert len(sleeps) == 4


async def test_create_unreadable_201_is_a_server_error_to_adopt(provider, runpod_api) -> None:
    runpod_api.post("/clusters").mock(return_value=httpx.Response(201, json={"name": "x"}))
    with pytest.raises(UnexpectedResponse):
        await provider.create_cluster(spec_for())


async def test_get_cluster_reads_summary_and_members(provider, runpod_api, pod_json) -> None:
    runpod_api.get("/clusters/cl_abc123").mock(return_value=httpx.Response(200, json=CLUSTER))
    members = [
        member(pod_json, "p1", 1, "10.65.0.3", status="STARTING", cost=3.5),
        member(pod_json, "p0", 0, "10.65.0.2", cost=3.5),
    ]
    runpod_api.get("/clusters/cl_abc123/pods").mock(
        return_value=httpx.Response(200, json={"pods": members})
    )
    cluster = await provider.get_cluster("cl_abc123")
    assert cluster is not None and len(cluster.members) == 2
    ranked = cluster.members_by_rank()
    assert [(m.id, m.cluster_rank, m.private_ip) for m in ranked] == [
        ("p0", 0, "10.65.0.2"), ("p1", 1, "10.65.0.3"),
    ]
    assert ranked[1].status is PodState.STARTING and not cluster.all_ready
    assert cluster.cost_per_hour == 7.0
    assert ranked[0].ssh_host == "195.26.233.3" and ranked[0].ssh_port == 22000


async def test_members_without_ranks_are_not_ranked_yet(provider, runpod_api, pod_json) -> None:
    summary = {k: v for k, v in CLUSTER.items() if k not in ("network", "primary")}
    runpod_api.get("/clusters/cl_abc123").mock(return_value=httpx.Response(200, json=summary))
    runpod_api.get("/clusters/cl_abc123/pods").mock(return_value=httpx.Response(200, json={
        "pods": [member(pod_json, "p0", 0, "10.65.0.2"), member(pod_json, "p1", None, None)]
    }))
    cluster = await provider.get_cluster("cl_abc123")
    assert cluster.network_cidr is None and cluster.primary_pod_id is None
    assert cluster.members_by_rank() is None and not cluster.all_ready
    assert cluster.members[1].private_ip is None and cluster.members[1].cluster_rank is None


async def test_tolerant_cluster_parsing(provider, runpod_api) -> None:
    odd = copy.deepcopy(CLUSTER)
    odd.update(futureField={"x": 1}, pods={"total": None, "byStatus": {"RUNNING": "two", "X": 1}},
               createdAt="2026-06-29 20:00:00.123 +0000 UTC", compute=None)
    runpod_api.get("/clusters").mock(return_value=httpx.Response(200, json={"clusters": [odd]}))
    [cluster] = await provider.list_clusters()
    assert cluster.member_count == 0 and cluster.members_by_status == {"X": 1}
    assert cluster.created_at is not None and cluster.node_count == 0


async def test_get_cluster_404s_are_none(provider, runpod_api, problem) -> None:
    runpod_api.get("/clusters/gone").mock(return_value=problem(404, "cluster not found"))
    assert await provider.get_cluster("gone") is None
    # Deleted between the two reads.
    runpod_api.get("/clusters/cl_abc123").mock(return_value=httpx.Response(200, json=CLUSTER))
    runpod_api.get("/clusters/cl_abc123/pods").mock(return_value=problem(404, "not found"))
    assert await provider.get_cluster("cl_abc123") is None


async def test_cluster_reads_retry_5xx(provider, runpod_api, problem, pod_json, sleeps) -> None:
    runpod_api.get("/clusters/cl_abc123").mock(
        side_effect=[problem(503, "x"), httpx.Response(200, json=CLUSTER)]
    )
    runpod_api.get("/clusters/cl_abc123/pods").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={"pods": []})]
    )
    assert (await provider.get_cluster("cl_abc123")).members == ()
    assert sleeps == [1.0, 1.0]


async def test_cluster_id_is_url_encoded_and_not_empty(provider, runpod_api, problem) -> None:
    route = runpod_api.get("/clusters/a%2Fb").mock(return_value=problem(404, "x"))
    assert await provider.get_cluster("a/b") is None and route.called
    with pytest.raises(InvalidRequest):
        await provider.get_cluster(" ")
    with pytest.raises(InvalidRequest):
        await provider.delete_cluster("")


async def test_list_clusters_filters_and_follows_pages(provider, runpod_api) -> None:
    def named(i: int, name: str) -> dict:
        return {**CLUSTER, "id": f"cl_{i}", "name": name}

    route = runpod_api.get("/clusters").mock(side_effect=[
        httpx.Response(200, json={"clusters": [named(1, "hangar-a"), named(2, "other")],
                                  "pagination": {"nextCursor": "c2", "hasNextPage": True}}),
        httpx.Response(200, json={"clusters": [named(3, "hangar-b"), named(1, "hangar-a")],
                                  "pagination": {"nextCursor": None, "hasNextPage": False}}),
    ])
    found = await provider.list_clusters("hangar-")
    assert [c.id for c in found] == ["cl_1", "cl_3"]
    assert route.calls[1].request.url.params["cursor"] == "c2"


async def test_list_clusters_stops_on_a_cursor_loop(provider, runpod_api, caplog) -> None:
    page = {"clusters": [CLUSTER], "pagination": {"nextCursor": "same", "hasNextPage": True}}
    route = runpod_api.get("/clusters").mock(return_value=httpx.Response(200, json=page))
    with caplog.at_level(logging.WARNING, logger="hangar.runpod"):
        assert len(await provider.list_clusters()) == 1
    assert route.call_count == 2 and "no new cursor" in caplog.text


async def test_find_cluster_by_name_takes_the_oldest(provider, runpod_api, caplog) -> None:
    newer = {**CLUSTER, "id": "cl_new", "createdAt": "2026-07-01T00:00:00Z"}
    older = {**CLUSTER, "id": "cl_old", "createdAt": "2026-06-01T00:00:00Z"}
    prefixed = {**CLUSTER, "id": "cl_x", "name": "hangar-c1-a1-b"}
    runpod_api.get("/clusters").mock(
        return_value=httpx.Response(200, json={"clusters": [newer, prefixed, older]})
    )
    with caplog.at_level(logging.WARNING, logger="hangar.runpod"):
        assert (await provider.find_cluster_by_name("hangar-c1-a1")).id == "cl_old"
    assert "2 clusters" in caplog.text
    assert await provider.find_cluster_by_name("hangar-c1") is None


@pytest.mark.parametrize("status", [204, 404])
async def test_delete_cluster_gone(provider, runpod_api, problem, status) -> None:
    response = httpx.Response(204) if status == 204 else problem(404, "cluster not found")
    route = runpod_api.delete("/clusters/cl_abc123").mock(return_value=response)
    await provider.delete_cluster("cl_abc123")
    assert route.call_count == 1


async def test_delete_cluster_retries_then_gives_up(provider, runpod_api, problem, sleeps) -> None:
    route = runpod_api.delete("/clusters/cl_abc123").mock(
        side_effect=[problem(503, "x"), httpx.ConnectError("no"), httpx.Response(204)]
    )
    await provider.delete_cluster("cl_abc123")
    assert route.call_count == 3 and sleeps == [1.0, 2.0]
    runpod_api.delete("/clusters/stuck").mock(return_value=problem(502, "x"))
    with pytest.raises(ServerError):
        await provider.delete_cluster("stuck")


async def test_delete_cluster_conflict_is_raised(provider, runpod_api, problem) -> None:
    runpod_api.delete("/clusters/cl_abc123").mock(return_value=problem(409, "busy"))
    with pytest.raises(Conflict):
        await provider.delete_cluster("cl_abc123")


async def test_private_ip_comes_from_the_assigned_address_only(
    provider, runpod_api, pod_json
) -> None:
    cases = [
        ({"enabled": True, "ip": "10.65.1.42", "internalDns": "x.runpod.internal"}, "10.65.1.42"),
        ({"enabled": False, "ip": "10.65.1.42"}, None),
        ({"enabled": True}, None),
        (None, None),
    ]
    for networking, expected in cases:
        runpod_api.get("/pods/p").mock(
            return_value=httpx.Response(200, json=pod_json(id="p", globalNetworking=networking))
        )
        pod = await provider.get_pod("p")
        assert pod.private_ip == expected and pod.cluster_id is None


async def test_network_volumes(provider, runpod_api, problem) -> None:
    volume = {"id": "2q9m7x4c", "name": "training-dataset", "size": 100,
              "dataCenter": "US-KS-2", "type": "HIGH_PERFORMANCE", "extra": True}
    runpod_api.get("/network-volumes").mock(
        return_value=httpx.Response(200, json={"networkVolumes": [volume]})
    )
    [found] = await provider.list_network_volumes()
    assert (found.id, found.name, found.size_gb, found.data_center_id, found.type) == (
        "2q9m7x4c", "training-dataset", 100, "US-KS-2", "HIGH_PERFORMANCE",
    )
    runpod_api.get("/network-volumes/2q9m7x4c").mock(
        return_value=httpx.Response(200, json=volume)
    )
    assert await provider.get_network_volume("2q9m7x4c") == found
    runpod_api.get("/network-volumes/nope").mock(return_value=problem(404, "not found"))
    assert await provider.get_network_volume("nope") is None
    runpod_api.get("/network-volumes/bad").mock(return_value=problem(403, "access denied"))
    with pytest.raises(AccessDenied):
        await provider.get_network_volume("bad")


async def test_env_values_never_logged(provider, runpod_api, problem, caplog) -> None:
    runpod_api.post("/clusters").mock(return_value=problem(400, CAPACITY_TEXT))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(CapacityError):
            await provider.create_cluster(spec_for(env={"PUBLIC_KEY": "SECRETPUB",
                                                         "HF_TOKEN": "hf_SECRET"}))
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert caplog.records
    for secret in (API_KEY, "SECRETPUB", "hf_SECRET"):
        assert secret not in text
