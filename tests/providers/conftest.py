"""Fixtures for the RunPod provider tests: a provider on a respx-mocked API, no real sleeps."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from app.providers.runpod import RunPodConfig, RunPodProvider

SPEC_PATH = Path(__file__).resolve().parents[2] / "app/providers/runpod/spec/openapi-v2.json"
API = "https://api.test.invalid/v2"
API_KEY = "rpa_TEST_SECRET_KEY_0123456789"


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> RunPodConfig:
    # backoff: jitter returns its cap, so delays are 1, 2, 4, 8 (max 8)
    return RunPodConfig(
        api_key=API_KEY,
        api_url=API,
        retry_attempts=5,
        backoff_base=1.0,
        backoff_max=8.0,
        call_deadline=100.0,
        catalog_ttl=60.0,
    )


@pytest.fixture
def requests_seen() -> list[tuple[str, str, float]]:
    return []


@pytest.fixture
async def provider(
    config: RunPodConfig, sleeps: Sleeps, clock: Clock, requests_seen: list
) -> AsyncIterator[RunPodProvider]:
    http = httpx.AsyncClient()
    p = RunPodProvider(
        config,
        http,
        sleep=sleeps,
        jitter=lambda cap: cap,
        clock=clock,
        on_request=lambda endpoint, outcome, s: requests_seen.append((endpoint, outcome, s)),
    )
    yield p
    await p.aclose()
    await http.aclose()


@pytest.fixture
def runpod_api() -> respx.MockRouter:
    with respx.mock(base_url=API, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


# --- payloads -----------------------------------------------------------------


def spec_pod_example(spec: dict[str, Any]) -> dict[str, Any]:
    content = spec["paths"]["/v2/pods/{id}"]["get"]["responses"]["200"]["content"]
    return copy.deepcopy(content["application/json"]["examples"]["pod"]["value"])


@pytest.fixture
def pod_json(spec: dict[str, Any]):
    """Factory: a v2 pod (the spec's getPod example) with overrides."""
    base = spec_pod_example(spec)

    def make(**overrides: Any) -> dict[str, Any]:
        pod = copy.deepcopy(base)
        pod.update(overrides)
        return pod

    return make


def _problem(status: int, detail: str, title: str = "", errors: list[str] | None = None) -> dict:
    body: dict[str, Any] = {"title": title or "Error", "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


def _problem_response(status: int, detail: str = "x", **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", None)
    return httpx.Response(
        status,
        json=_problem(status, detail, **kw),
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


@pytest.fixture
def problem():
    """Factory: an `httpx.Response` carrying a problem+json body."""
    return _problem_response
