"""RunPodProvider against a respx-mocked v2 API: error mapping, retries, pagination, pods."""

from __future__ import annotations

import inspect
import json
import logging

import httpx
import pytest

from app.providers import base
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
    Conflict,
    ConnectFailed,
    RunPodConfig,
    RunPodProvider,
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


# --- protocol ---------------------------------------------------------------------


def test_implements_the_provider_protocol():
    members = [n for n in dir(base.Provider) if not n.startswith("_") and n not in dir(object)]
    members += list(base.Provider.__annotations__)
    for name in set(members):
        assert hasattr(RunPodProvider, name), name
        proto = getattr(base.Provider, name, None)
        if inspect.isfunction(proto):
            ours = getattr(RunPodProvider, name)
            assert inspect.iscoroutinefunction(ours), name
            p_params = list(inspect.signature(proto).parameters.values())
            o_params = list(inspect.signature(ours).parameters.values())
            assert [(p.name, p.kind, p.default) for p in p_params] == [
                (p.name, p.kind, p.default) for p in o_params
            ], name
    assert RunPodProvider.name == "runpod"
    assert RunPodProvider.supports_spot is False


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


# --- reads: retries ------------------------------------------------------------------


async def test_get_pod_maps_fields(provider, runpod_api, pod_json):
    runpod_api.get("/pods/7h9k2m4n6p").respond(200, json=pod_json())
    pod = await provider.get_pod("7h9k2m4n6p")
    assert pod is not None
    assert pod.status is PodState.RUNNING
    assert (pod.ssh_host, pod.ssh_port) == ("195.26.233.3", 34446)
    assert pod.ssh_ready
    assert pod.data_center_id == "US-KS-2"
    assert pod.cost_per_hour == 0.44
    assert pod.created_at is not None and pod.created_at.year == 2026
    assert pod.gpu_count == 1 and pod.gpu_type_id == "NVIDIA GeForce RTX 4090"


async def test_get_pod_404_is_none(provider, runpod_api, problem):
    route = runpod_api.get("/pods/gone").mock(return_value=problem(404, "pod not found"))
    assert await provider.get_pod("gone") is None
    assert route.call_count == 1


async def test_get_pod_terminated_is_mapped(provider, runpod_api, pod_json):
    runpod_api.get("/pods/p1").respond(200, json=pod_json(id="p1", status="TERMINATED", cost=0.0))
    pod = await provider.get_pod("p1")
    assert pod is not None and pod.is_gone and pod.cost_per_hour == 0.0


async def test_get_pod_id_is_url_encoded(provider, runpod_api, pod_json):
    route = runpod_api.get(url__regex=r".*/pods/a%2Fb$").respond(200, json=pod_json(id="a/b"))
    await provider.get_pod("a/b")
    assert route.call_count == 1


async def test_get_pod_empty_id_is_refused(provider, runpod_api):
    with pytest.raises(InvalidRequest):
        await provider.get_pod("")


async def test_reads_retry_5xx_with_exponential_backoff(
    provider, runpod_api, problem, pod_json, sleeps
):
    route = runpod_api.get("/pods/p1").mock(
        side_effect=[
            problem(500, "a"),
            problem(503, "b"),
            problem(502, "c"),
            httpx.Response(200, json=pod_json(id="p1")),
        ]
    )
    pod = await provider.get_pod("p1")
    assert pod is not None
    assert route.call_count == 4
    assert sleeps == [1.0, 2.0, 4.0]


async def test_reads_give_up_after_attempts_with_typed_error(provider, runpod_api, problem, sleeps):
    route = runpod_api.get("/pods/p1").mock(return_value=problem(503, "down"))
    with pytest.raises(ServerError):
        await provider.get_pod("p1")
    assert route.call_count == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_backoff_is_capped(config, runpod_api, problem, sleeps):
    cfg = RunPodConfig(
        api_key="k", api_url=config.api_url, retry_attempts=7, backoff_base=1.0, backoff_max=5.0,
        call_deadline=100.0,
    )
    async with RunPodProvider(cfg, sleep=sleeps, jitter=lambda cap: cap) as p:
        runpod_api.get("/pods/p1").mock(return_value=problem(500, "down"))
        with pytest.raises(ServerError):
            await p.get_pod("p1")
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


async def test_full_jitter_stays_within_cap(config, runpod_api, problem, sleeps):
    cfg = RunPodConfig(
        api_key="k", api_url=config.api_url, retry_attempts=6, backoff_base=1.0, backoff_max=8.0,
        call_deadline=100.0,
    )
    async with RunPodProvider(cfg, sleep=sleeps) as p:  # real random jitter
        runpod_api.get("/pods/p1").mock(return_value=problem(500, "down"))
        with pytest.raises(ServerError):
            await p.get_pod("p1")
    caps = [1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(sleeps) == 5
    assert all(0.0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError, httpx.ConnectTimeout]
)
async def test_reads_retry_transport_errors_then_raise(provider, runpod_api, sleeps, exc):
    route = runpod_api.get("/pods/p1").mock(side_effect=exc("boom"))
    with pytest.raises(TransportError):
        await provider.get_pod("p1")
    assert route.call_count == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_reads_honour_retry_after(provider, runpod_api, problem, pod_json, sleeps):
    route = runpod_api.get("/pods/p1").mock(
        side_effect=[
            problem(429, "minute window", headers={"Retry-After": "12"}),
            problem(429, "no header"),
            httpx.Response(200, json=pod_json(id="p1")),
        ]
    )
    await provider.get_pod("p1")
    assert route.call_count == 3
    assert sleeps == [12.0, 2.0]  # Retry-After; without the header, the backoff (2nd failure)


async def test_a_retry_after_past_the_deadline_is_the_callers(config, runpod_api, problem,
                                                              sleeps):
    """The client never waits past the call's deadline: the 429 goes to the caller at once,
    with RunPod's Retry-After, so a worker reschedules the node instead of sleeping."""
    cfg = RunPodConfig(api_key="k", api_url=config.api_url, call_deadline=20.0)
    route = runpod_api.get("/pods/p1").mock(
        return_value=problem(429, "hour window", headers={"Retry-After": "1800"})
    )
    async with RunPodProvider(cfg, sleep=sleeps) as p:
        with pytest.raises(RateLimited) as info:
            await p.get_pod("p1")
    assert sleeps == [] and route.call_count == 1
    assert info.value.retry_after == 1800.0


async def test_waits_stop_at_the_deadline(config, runpod_api, problem, sleeps):
    cfg = RunPodConfig(api_key="k", api_url=config.api_url, call_deadline=10.0,
                       retry_attempts=10, backoff_base=1.0, backoff_max=8.0)
    route = runpod_api.get("/pods/p1").mock(return_value=problem(503, "down"))
    async with RunPodProvider(cfg, sleep=sleeps, jitter=lambda cap: cap) as p:
        with pytest.raises(ServerError):
            await p.get_pod("p1")
    assert sleeps == [1.0, 2.0, 4.0]  # 8 more would pass 10 s
    assert route.call_count == 4


async def test_attempt_timeouts_shrink_to_the_deadline(config, runpod_api, pod_json, sleeps):
    seen = []

    def capture(request):
        seen.append(request.extensions["timeout"]["read"])
        if len(seen) == 1:
            raise httpx.ReadTimeout("slow")
        return httpx.Response(200, json=pod_json(id="p1"))

    cfg = RunPodConfig(api_key="k", api_url=config.api_url, call_deadline=3.0, read_timeout=30)
    runpod_api.get("/pods/p1").mock(side_effect=capture)
    async with RunPodProvider(cfg, sleep=sleeps, jitter=lambda cap: 0.0) as p:
        await p.get_pod("p1")
    assert len(seen) == 2 and all(0 < t <= 3.0 for t in seen)


async def test_reads_give_up_on_429_with_retry_after(provider, runpod_api, problem, sleeps):
    runpod_api.get("/pods/p1").mock(
        return_value=problem(429, "minute", headers={"Retry-After": "2"})
    )
    with pytest.raises(RateLimited) as info:
        await provider.get_pod("p1")
    assert info.value.retry_after == 2.0
    assert sleeps == [2.0] * 4


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, InvalidCredentials), (403, AccessDenied), (400, InvalidRequest), (422, InvalidRequest)],
)
async def test_reads_do_not_retry_client_errors(
    provider, runpod_api, problem, sleeps, status, expected
):
    route = runpod_api.get("/pods/p1").mock(return_value=problem(status, "no"))
    with pytest.raises(expected):
        await provider.get_pod("p1")
    assert route.call_count == 1 and sleeps == []


async def test_unreadable_read_is_not_retried(provider, runpod_api, sleeps):
    route = runpod_api.get("/pods/p1").respond(200, text="not json")
    with pytest.raises(UnexpectedResponse):
        await provider.get_pod("p1")
    assert route.call_count == 1 and sleeps == []


# --- list / find -------------------------------------------------------------------------


async def test_list_pods_follows_three_pages(provider, runpod_api, pod_json):
    pages = [
        {
            "pods": [pod_json(id="a", name="hangar-1")],
            "pagination": {"nextCursor": "c1", "hasNextPage": True},
        },
        {
            "pods": [pod_json(id="b", name="other")],
            "pagination": {"nextCursor": "c2", "hasNextPage": True},
        },
        {
            "pods": [pod_json(id="c", name="hangar-2")],
            "pagination": {"nextCursor": None, "hasNextPage": False},
        },
    ]
    route = runpod_api.get("/pods").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    pods = await provider.list_pods()
    assert [p.id for p in pods] == ["a", "b", "c"]
    params = [dict(call.request.url.params) for call in route.calls]
    assert params == [
        {"limit": "1000"},
        {"limit": "1000", "cursor": "c1"},
        {"limit": "1000", "cursor": "c2"},
    ]


async def test_list_pods_filters_by_prefix_client_side(provider, runpod_api, pod_json):
    runpod_api.get("/pods").respond(
        200,
        json={
            "pods": [
                pod_json(id="a", name="hangar-1"),
                pod_json(id="b", name="other"),
                pod_json(id="c", name="hangar-2"),
            ]
        },
    )
    assert [p.id for p in await provider.list_pods(name_prefix="hangar-")] == ["a", "c"]


async def test_list_pods_without_pagination_is_one_page(provider, runpod_api, pod_json):
    route = runpod_api.get("/pods").respond(
        200, json={"pods": [pod_json(id="a"), pod_json(id="b")]}
    )
    assert len(await provider.list_pods()) == 2
    assert route.call_count == 1


async def test_list_pods_empty(provider, runpod_api):
    runpod_api.get("/pods").respond(200, json={"pods": []})
    assert await provider.list_pods() == []


async def test_list_pods_stops_on_cursor_loop(provider, runpod_api, pod_json, caplog):
    looping = {
        "pods": [pod_json(id="a")],
        "pagination": {"nextCursor": "same", "hasNextPage": True},
    }
    route = runpod_api.get("/pods").mock(return_value=httpx.Response(200, json=looping))
    with caplog.at_level(logging.WARNING, logger="hangar.runpod"):
        pods = await provider.list_pods()
    assert [p.id for p in pods] == ["a"]  # de-duplicated
    assert route.call_count == 2  # first page, then "same" once; a second "same" stops
    assert "twice" in caplog.text


async def test_list_pods_stops_at_max_pages(config, runpod_api, pod_json, sleeps, caplog):
    cfg = RunPodConfig(api_key="k", api_url=config.api_url, list_max_pages=3)
    counter = iter(range(100))

    def page(request):
        n = next(counter)
        return httpx.Response(
            200,
            json={
                "pods": [pod_json(id=f"p{n}")],
                "pagination": {"nextCursor": f"c{n}", "hasNextPage": True},
            },
        )

    route = runpod_api.get("/pods").mock(side_effect=page)
    async with RunPodProvider(cfg, sleep=sleeps) as p:
        with caplog.at_level(logging.WARNING, logger="hangar.runpod"):
            pods = await p.list_pods()
    assert route.call_count == 3 and len(pods) == 3
    assert "incomplete" in caplog.text


async def test_list_pods_has_next_without_cursor_stops(provider, runpod_api, pod_json):
    route = runpod_api.get("/pods").respond(
        200, json={"pods": [pod_json()], "pagination": {"hasNextPage": True}}
    )
    assert len(await provider.list_pods()) == 1
    assert route.call_count == 1


async def test_list_pods_retries_a_page(provider, runpod_api, problem, pod_json, sleeps):
    route = runpod_api.get("/pods").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "pods": [pod_json(id="a")],
                    "pagination": {"nextCursor": "c1", "hasNextPage": True},
                },
            ),
            problem(503, "down"),
            httpx.Response(
                200, json={"pods": [pod_json(id="b")], "pagination": {"hasNextPage": False}}
            ),
        ]
    )
    assert [p.id for p in await provider.list_pods()] == ["a", "b"]
    assert route.call_count == 3
    assert dict(route.calls[2].request.url.params)["cursor"] == "c1"
    assert sleeps == [1.0]


async def test_find_pod_by_name_exact_live_oldest(provider, runpod_api, pod_json, caplog):
    runpod_api.get("/pods").respond(
        200,
        json={
            "pods": [
                pod_json(id="newer", name="hangar-c1-n1", createdAt="2026-06-02T00:00:00Z"),
                pod_json(id="older", name="hangar-c1-n1", createdAt="2026-06-01T00:00:00Z"),
                pod_json(
                    id="dead",
                    name="hangar-c1-n1",
                    status="TERMINATED",
                    createdAt="2026-05-01T00:00:00Z",
                ),
                pod_json(id="longer", name="hangar-c1-n10", createdAt="2026-01-01T00:00:00Z"),
            ]
        },
    )
    with caplog.at_level(logging.WARNING, logger="hangar.runpod"):
        pod = await provider.find_pod_by_name("hangar-c1-n1")
    assert pod is not None and pod.id == "older"
    assert "2 live pods" in caplog.text


async def test_find_pod_by_name_none(provider, runpod_api, pod_json):
    runpod_api.get("/pods").respond(
        200, json={"pods": [pod_json(id="x", name="hangar-c1-n1", status="TERMINATED")]}
    )
    assert await provider.find_pod_by_name("hangar-c1-n1") is None
    assert await provider.find_pod_by_name("nobody") is None


# --- terminate ------------------------------------------------------------------


@pytest.mark.parametrize("status", [204, 404])
async def test_terminate_gone(provider, runpod_api, problem, status):
    resp = httpx.Response(204) if status == 204 else problem(404, "pod not found")
    route = runpod_api.delete("/pods/p1").mock(return_value=resp)
    action = runpod_api.post("/pods/p1/action").respond(204)
    await provider.terminate_pod("p1")
    assert route.call_count == 1 and action.call_count == 0


@pytest.mark.parametrize("action_status", [204, 404])
async def test_terminate_409_falls_back_to_action(provider, runpod_api, problem, action_status):
    runpod_api.delete("/pods/p1").mock(return_value=problem(409, "pod belongs to a cluster"))
    resp = httpx.Response(204) if action_status == 204 else problem(404, "pod not found")
    action = runpod_api.post("/pods/p1/action").mock(return_value=resp)
    await provider.terminate_pod("p1")
    assert action.call_count == 1
    assert json.loads(action.calls.last.request.content) == {"action": "terminate"}


async def test_terminate_409_twice_raises(provider, runpod_api, problem):
    runpod_api.delete("/pods/p1").mock(return_value=problem(409, "cluster member"))
    runpod_api.post("/pods/p1/action").mock(return_value=problem(409, "cluster member"))
    with pytest.raises(Conflict):
        await provider.terminate_pod("p1")


async def test_terminate_retries_then_succeeds(provider, runpod_api, problem, sleeps):
    route = runpod_api.delete("/pods/p1").mock(
        side_effect=[
            problem(500, "x"),
            httpx.ReadTimeout("slow"),
            problem(429, "minute", headers={"Retry-After": "5"}),
            httpx.Response(204),
        ]
    )
    await provider.terminate_pod("p1")
    assert route.call_count == 4
    assert sleeps == [1.0, 2.0, 5.0]


async def test_terminate_gives_up(provider, runpod_api, problem, sleeps):
    route = runpod_api.delete("/pods/p1").mock(return_value=problem(503, "x"))
    with pytest.raises(ServerError):
        await provider.terminate_pod("p1")
    assert route.call_count == 5


async def test_terminate_forbidden_raises(provider, runpod_api, problem):
    runpod_api.delete("/pods/p1").mock(return_value=problem(403, "access denied"))
    with pytest.raises(AccessDenied):
        await provider.terminate_pod("p1")


# --- plumbing: key hygiene, hooks, client ownership ---------------------------------------


def test_api_key_not_in_repr(config, provider):
    key = "rpa_TEST_SECRET_KEY_0123456789"
    assert key not in repr(config) and key not in str(config)
    assert key not in repr(provider)
    assert config.api_key.get_secret_value() == key
    plain = RunPodConfig(api_key="plain-string-key", api_url="u")
    assert "plain-string-key" not in repr(plain)


async def test_key_and_env_values_never_logged(provider, runpod_api, problem, pod_json, caplog):
    runpod_api.post("/pods").mock(
        side_effect=[
            problem(429, "slow down", headers={"Retry-After": "0"}),
            httpx.Response(201, json=pod_json()),
        ]
    )
    runpod_api.get("/pods/p1").mock(return_value=problem(500, "x"))
    with caplog.at_level(logging.DEBUG):
        await provider.create_pod(
            spec_for(env={"PUBLIC_KEY": "ssh-ed25519 SECRETPUB", "HF_TOKEN": "hf_SECRET"})
        )
        with pytest.raises(ServerError):
            await provider.get_pod("p1")
    assert caplog.records
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in ("rpa_TEST_SECRET_KEY_0123456789", "SECRETPUB", "hf_SECRET"):
        assert secret not in text
    assert "HF_TOKEN" in text  # keys are fine, values are not


async def test_on_request_hook_counts_attempts(
    provider, runpod_api, problem, pod_json, requests_seen
):
    runpod_api.post("/pods").mock(side_effect=[problem(429, "slow"), problem(400, CAPACITY_TEXT)])
    with pytest.raises(CapacityError):
        await provider.create_pod(spec_for())
    runpod_api.get("/pods/p1").mock(side_effect=[httpx.ConnectError("x"), problem(404, "gone")])
    await provider.get_pod("p1")
    assert [(e, o) for e, o, _ in requests_seen] == [
        ("POST /pods", "rate_limited"),
        ("POST /pods", "capacity"),
        ("GET /pods/{id}", "transport_error"),
        ("GET /pods/{id}", "not_found"),
    ]
    assert all(s >= 0 for _, _, s in requests_seen)


async def test_on_request_hook_failure_is_harmless(config, runpod_api, pod_json):
    def broken(*args):
        raise RuntimeError("metrics down")

    runpod_api.get("/pods/p1").respond(200, json=pod_json(id="p1"))
    async with RunPodProvider(config, on_request=broken) as p:
        assert await p.get_pod("p1") is not None


async def test_owned_http_client_is_closed(config):
    p = RunPodProvider(config)
    http = p._http
    assert http.timeout.connect == 5.0 and http.timeout.read == 30.0
    await p.aclose()
    assert http.is_closed
    await p.aclose()  # twice is fine


async def test_given_http_client_is_left_open(config):
    http = httpx.AsyncClient()
    p = RunPodProvider(config, http)
    await p.aclose()
    assert not http.is_closed
    await http.aclose()


async def test_timeouts_are_sent_per_request(config, runpod_api, pod_json):
    seen = {}

    def capture(request):
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, json=pod_json(id="p1"))

    runpod_api.get("/pods/p1").mock(side_effect=capture)
    async with RunPodProvider(config, httpx.AsyncClient(timeout=999)) as p:
        await p.get_pod("p1")
    assert seen["connect"] == 5.0 and seen["read"] == 30.0


def test_config_defaults():
    cfg = RunPodConfig(api_key="k", api_url="https://api.runpod.io/v2")
    assert cfg.catalog_ttl == 60.0 and cfg.retry_attempts == 5 and cfg.call_deadline == 20.0
    with pytest.raises(ValueError):
        RunPodConfig(api_key="k", api_url="u", call_deadline=0)


def test_config_rejects_empty_key():
    with pytest.raises(ValueError):
        RunPodConfig(api_key=" ", api_url="u")
