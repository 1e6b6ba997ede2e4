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
    PodSpec,
    ServerError,
)
from app.providers.runpod import (
    Conflict,
    RunPodConfig,
    RunPodProvider,
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
