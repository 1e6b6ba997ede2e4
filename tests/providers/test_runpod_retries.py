"""The RunPod client's reads and their retries: backoff, Retry-After, the call deadline,
transport errors (respx: the exact responses and waits)."""

from __future__ import annotations

import httpx
import pytest

from app.providers.base import (
    AccessDenied,
    InvalidCredentials,
    InvalidRequest,
    PodSpec,
    PodState,
    RateLimited,
    ServerError,
    TransportError,
)
from app.providers.runpod import (
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
