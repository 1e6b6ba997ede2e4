"""Creating pods with the RunPod client: the body, and which failures are retried (a create
is never repeated where a duplicate pod could result)."""

from __future__ import annotations

import json

import httpx
import pytest

from app.providers.base import (
    AccessDenied,
    CapacityError,
    InsufficientBalance,
    InvalidCredentials,
    InvalidRequest,
    PodSpec,
    PodState,
    RateLimited,
    ServerError,
    TransportError,
)
from app.providers.runpod import (
    ConnectFailed,
    UnexpectedResponse,
)

CAPACITY_TEXT = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)


def spec_for(name: str = "hangar-c1-n0", **kw) -> PodSpec:
    values = {
        "name": name,
        "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "gpu_type_id": "NVIDIA GeForce RTX 4090",
        "gpu_count": 1,
    }
    values.update(kw)
    return PodSpec(**values)


# --- create -------------------------------------------------------------------------


async def test_create_sends_v2_body_and_maps_the_pod(provider, runpod_api, spec):
    example = spec["paths"]["/v2/pods"]["post"]["responses"]["201"]["content"]["application/json"]
    created = example["examples"]["pod"]["value"]
    route = runpod_api.post("/pods").respond(201, json=created)

    pod = await provider.create_pod(
        spec_for(env={"PUBLIC_KEY": "ssh-ed25519 AAAA test"}, data_center_ids=("US-KS-2",))
    )

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer rpa_TEST_SECRET_KEY_0123456789"
    assert str(request.url) == "https://api.test.invalid/v2/pods"
    body = json.loads(request.content)
    assert body == {
        "name": "hangar-c1-n0",
        "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
        "cloud": "SECURE",
        "disk": 50,
        "ports": ["22/tcp"],
        "env": {"PUBLIC_KEY": "ssh-ed25519 AAAA test"},
        "dataCenterIds": ["US-KS-2"],
        "mounts": {"persistent": {"size": 20, "path": "/workspace"}},
    }
    assert pod.id == "7h9k2m4n6p"
    assert pod.status is PodState.PROVISIONING
    assert pod.ssh_host is None and pod.ssh_port is None  # direct null, runtime {}
    assert pod.gpu_type_id == "NVIDIA GeForce RTX 4090" and pod.gpu_count == 1
    assert pod.cost_per_hour == created["cost"]


async def test_create_always_sends_count_and_ssh_port(provider, runpod_api, pod_json):
    route = runpod_api.post("/pods").respond(201, json=pod_json())
    await provider.create_pod(spec_for(gpu_count=4, ports=("8888/http",), volume_gb=0))
    body = json.loads(route.calls.last.request.content)
    assert body["gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 4}
    assert body["ports"] == ["22/tcp", "8888/http"]
    assert "mounts" not in body and "dataCenterIds" not in body
    for forbidden in ("interruptible", "startSsh", "imageName", "gpuTypeIds", "gpuCount"):
        assert forbidden not in body


@pytest.mark.parametrize("volume", [1, 5, 9, -1])
async def test_create_refuses_small_volume_before_sending(provider, runpod_api, volume):
    route = runpod_api.post("/pods").respond(201, json={})
    with pytest.raises(InvalidRequest, match="at least 10"):
        await provider.create_pod(spec_for(volume_gb=volume))
    assert route.call_count == 0


async def test_create_refuses_bad_spec_before_sending(provider, runpod_api):
    route = runpod_api.post("/pods").respond(201, json={})
    with pytest.raises(InvalidRequest, match="gpu_count"):
        await provider.create_pod(spec_for(gpu_count=0))
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("status", "detail", "errors", "expected"),
    [
        (400, CAPACITY_TEXT, None, CapacityError),
        (400, "No instances available for this GPU type", None, CapacityError),
        (400, "this GPU and data center combination could not be placed", None, CapacityError),
        (400, "request could not be processed", None, InvalidRequest),
        (400, "mounts.persistent and mounts.network are mutually exclusive", None, InvalidRequest),
        (401, "missing bearer token", None, InvalidCredentials),
        (402, "insufficient balance", None, InsufficientBalance),
        (403, "access denied", None, AccessDenied),
        (404, "template not found", None, InvalidRequest),
        (
            422,
            "Request validation failed.",
            ["$: additional properties 'bogus' not allowed"],
            InvalidRequest,
        ),
    ],
)
async def test_create_error_mapping(
    provider, runpod_api, problem, sleeps, status, detail, errors, expected
):
    route = runpod_api.post("/pods").mock(return_value=problem(status, detail, errors=errors))
    with pytest.raises(expected) as info:
        await provider.create_pod(spec_for())
    assert type(info.value) is expected
    assert info.value.status == status
    assert detail in info.value.message
    if errors:
        assert errors[0] in info.value.message
    assert route.call_count == 1  # none of these is retried
    assert sleeps == []


async def test_capacity_message_is_case_insensitive(provider, runpod_api, problem):
    runpod_api.post("/pods").mock(return_value=problem(400, CAPACITY_TEXT.upper()))
    with pytest.raises(CapacityError):
        await provider.create_pod(spec_for())


async def test_400_without_json_body_is_invalid_request(provider, runpod_api):
    runpod_api.post("/pods").respond(400, text="<html>bad</html>")
    with pytest.raises(InvalidRequest, match="bad"):
        await provider.create_pod(spec_for())


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_create_not_retried_on_5xx(provider, runpod_api, problem, sleeps, status):
    route = runpod_api.post("/pods").mock(return_value=problem(status, "upstream"))
    with pytest.raises(ServerError) as info:
        await provider.create_pod(spec_for())
    assert info.value.status == status
    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_create_not_retried_when_request_may_have_arrived(provider, runpod_api, sleeps, exc):
    route = runpod_api.post("/pods").mock(side_effect=exc("boom"))
    with pytest.raises(TransportError) as info:
        await provider.create_pod(spec_for())
    assert not isinstance(info.value, ConnectFailed)
    assert route.call_count == 1
    assert sleeps == []


async def test_create_retried_on_429_honouring_retry_after(
    provider, runpod_api, problem, pod_json, sleeps
):
    route = runpod_api.post("/pods").mock(
        side_effect=[
            problem(429, "rate limit exceeded for the minute window", headers={"Retry-After": "3"}),
            problem(429, "rate limit exceeded for the minute window", headers={"Retry-After": "7"}),
            httpx.Response(201, json=pod_json(status="PROVISIONING")),
        ]
    )
    pod = await provider.create_pod(spec_for())
    assert pod.status is PodState.PROVISIONING
    assert route.call_count == 3
    assert sleeps == [3.0, 7.0]


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_create_retried_when_connection_never_opened(
    provider, runpod_api, pod_json, sleeps, exc
):
    route = runpod_api.post("/pods").mock(
        side_effect=[exc("refused"), exc("refused"), httpx.Response(201, json=pod_json())]
    )
    await provider.create_pod(spec_for())
    assert route.call_count == 3
    assert sleeps == [1.0, 2.0]


async def test_create_gives_up_on_429_with_rate_limited(provider, runpod_api, problem, sleeps):
    route = runpod_api.post("/pods").mock(
        return_value=problem(429, "rate limit", headers={"Retry-After": "12"})
    )
    with pytest.raises(RateLimited) as info:
        await provider.create_pod(spec_for())
    assert info.value.retry_after == 12.0
    assert route.call_count == 5
    assert sleeps == [12.0] * 4


async def test_create_gives_up_on_connect_errors(provider, runpod_api, sleeps):
    route = runpod_api.post("/pods").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ConnectFailed):
        await provider.create_pod(spec_for())
    assert route.call_count == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_create_unreadable_201_is_a_server_error_to_adopt(provider, runpod_api):
    runpod_api.post("/pods").respond(201, json={"unexpected": True})
    with pytest.raises(ServerError) as info:
        await provider.create_pod(spec_for())
    assert isinstance(info.value, UnexpectedResponse)
