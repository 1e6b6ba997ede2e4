"""GPU catalog: the request, mapping, TTL cache with one fetch at a time, name resolution."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.providers.base import GpuType, GpuTypeAmbiguous, GpuTypeNotFound, ServerError
from app.providers.runpod.catalog import normalise, resolve


def gpu(id: str, name: str, memory: int = 80, **kw) -> dict:
    entry = {
        "id": id,
        "name": name,
        "pool": None,
        "manufacturer": "NVIDIA",
        "memory": memory,
        "secure": True,
        "community": True,
        "price": {"secure": 2.69, "community": 1.99},
        "maxCount": {"secure": 8, "community": 4},
        "availability": "LOW",
        "dataCenters": [{"id": "US-KS-2", "name": "US Kansas 2", "availability": "LOW"}],
    }
    entry.update(kw)
    return entry


CATALOG = {
    "gpus": [
        gpu(
            "NVIDIA GeForce RTX 4090",
            "RTX 4090",
            24,
            price={"secure": 0.69, "community": 0.34, "serverless": 1.1},
            availability="HIGH",
        ),
        gpu("NVIDIA GeForce RTX 4080", "RTX 4080", 16),
        gpu("NVIDIA H100 80GB HBM3", "H100 SXM"),
        gpu(
            "NVIDIA H100 PCIe", "H100 PCIe", community=False, price={"secure": 2.39, "community": 0}
        ),
        gpu("NVIDIA H100 NVL", "H100 NVL", 94),
        gpu("NVIDIA A100 80GB PCIe", "A100 PCIe"),
        gpu("NVIDIA A100-SXM4-80GB", "A100 SXM"),
        gpu("NVIDIA L4", "L4", 24),
        gpu("NVIDIA L40S", "L40S", 48),
        gpu("NVIDIA L40", "L40", 48),
        gpu("AMD Instinct MI300X OAM", "MI300X", 192, manufacturer="AMD"),
    ]
}
ALL_IDS = sorted(g["id"] for g in CATALOG["gpus"])


@pytest.fixture
def catalog_route(runpod_api):
    return runpod_api.get("/catalog/gpus").respond(200, json=CATALOG)


async def test_catalog_request_and_mapping(provider, catalog_route):
    types = await provider.gpu_types()
    params = dict(catalog_route.calls.last.request.url.params)
    assert params == {"include": "AVAILABILITY", "product": "POD"}
    by_id = {t.id: t for t in types}
    rtx = by_id["NVIDIA GeForce RTX 4090"]
    assert rtx == GpuType(
        id="NVIDIA GeForce RTX 4090",
        display_name="RTX 4090",
        memory_gb=24,
        secure=True,
        community=True,
        price_secure=0.69,
        price_community=0.34,
        availability="HIGH",
        data_centers=rtx.data_centers,
        max_count_secure=8,
        max_count_community=4,
    )
    assert rtx.data_centers[0].id == "US-KS-2" and rtx.data_centers[0].availability == "LOW"
    pcie = by_id["NVIDIA H100 PCIe"]
    assert pcie.price("community") is None and not pcie.offered_on("community")


async def test_catalog_skips_unreadable_entries(provider, runpod_api):
    runpod_api.get("/catalog/gpus").respond(
        200, json={"gpus": [{"name": "no id"}, gpu("NVIDIA L4", "L4")]}
    )
    assert [t.id for t in await provider.gpu_types()] == ["NVIDIA L4"]


async def test_catalog_without_availability_fields(provider, runpod_api):
    bare = {
        k: v for k, v in gpu("NVIDIA L4", "L4").items() if k not in ("availability", "dataCenters")
    }
    runpod_api.get("/catalog/gpus").respond(200, json={"gpus": [bare]})
    (t,) = await provider.gpu_types()
    assert t.availability is None and t.data_centers == ()


async def test_catalog_cached_within_ttl(provider, catalog_route, clock):
    await provider.gpu_types()
    clock.now += 59
    await provider.gpu_types()
    assert catalog_route.call_count == 1
    clock.now += 2  # past the 60 s TTL
    await provider.gpu_types()
    assert catalog_route.call_count == 2


async def test_catalog_refresh_forces_a_fetch(provider, catalog_route):
    await provider.gpu_types()
    await provider.gpu_types(refresh=True)
    assert catalog_route.call_count == 2


async def test_concurrent_callers_share_one_fetch(provider, runpod_api):
    calls = 0

    async def slow(request):
        nonlocal calls
        calls += 1
        for _ in range(5):
            await asyncio.sleep(0)
        return httpx.Response(200, json=CATALOG)

    runpod_api.get("/catalog/gpus").mock(side_effect=slow)
    results = await asyncio.gather(*(provider.gpu_types() for _ in range(8)))
    assert calls == 1
    assert all(len(r) == len(CATALOG["gpus"]) for r in results)
    # Refreshes coalesce onto a fetch that started after they asked: the first of four
    # fetches; the other three asked while it was in flight, so they share one more.
    await asyncio.gather(*(provider.gpu_types(refresh=True) for _ in range(4)))
    assert calls == 3


async def test_catalog_retries_and_does_not_cache_failures(provider, runpod_api, problem, sleeps):
    route = runpod_api.get("/catalog/gpus").mock(
        side_effect=[problem(502, "x"), httpx.Response(200, json=CATALOG)]
    )
    assert len(await provider.gpu_types()) == len(CATALOG["gpus"])
    assert route.call_count == 2 and sleeps == [1.0]

    route.mock(side_effect=None, return_value=problem(500, "down"))
    with pytest.raises(ServerError):
        await provider.gpu_types(refresh=True)
    # the old catalog is still there for non-refresh callers
    assert len(await provider.gpu_types()) == len(CATALOG["gpus"])


# --- resolution ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),  # exact id
        ("nvidia geforce rtx 4090", "NVIDIA GeForce RTX 4090"),  # id, any case
        ("RTX 4090", "NVIDIA GeForce RTX 4090"),  # exact display name
        ("rtx-4090", "NVIDIA GeForce RTX 4090"),
        ("GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),
        ("4090", "NVIDIA GeForce RTX 4090"),
        ("rtx4090", "NVIDIA GeForce RTX 4090"),
        ("h100 sxm", "NVIDIA H100 80GB HBM3"),
        ("H100-SXM", "NVIDIA H100 80GB HBM3"),
        ("H100 SXM", "NVIDIA H100 80GB HBM3"),
        ("h100 pcie", "NVIDIA H100 PCIe"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
        ("a100 sxm", "NVIDIA A100-SXM4-80GB"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"),
        ("L4", "NVIDIA L4"),  # exact name beats L40 / L40S
        ("l40s", "NVIDIA L40S"),
        ("mi300x", "AMD Instinct MI300X OAM"),
    ],
)
async def test_resolve(provider, catalog_route, query, expected):
    assert (await provider.resolve_gpu_type(query)).id == expected


async def test_resolve_ambiguous_h100(provider, catalog_route):
    with pytest.raises(GpuTypeAmbiguous) as info:
        await provider.resolve_gpu_type("h100")
    assert info.value.candidates == [
        "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL", "NVIDIA H100 PCIe",
    ]
    message = info.value.message
    assert "'h100' is ambiguous" in message
    assert "NVIDIA H100 80GB HBM3 (H100 SXM)" in message  # display names help a person choose
    assert info.value.reason == "invalid_request"


@pytest.mark.parametrize("query", ["h100", "A100", "rtx", "rtx 9999"])
async def test_every_candidate_resolves_when_sent_back(provider, catalog_route, query):
    """A 422 offers only what it accepts: each candidate resolves to itself verbatim."""
    with pytest.raises(GpuTypeNotFound) as info:
        await provider.resolve_gpu_type(query)
    assert info.value.candidates
    for candidate in info.value.candidates:
        assert (await provider.resolve_gpu_type(candidate)).id == candidate


async def test_resolve_ambiguous_a100(provider, catalog_route):
    with pytest.raises(GpuTypeAmbiguous) as info:
        await provider.resolve_gpu_type("A100")
    assert len(info.value.candidates) == 2


@pytest.mark.parametrize("query", ["tpu", "", "   ", "rtx 9999"])
async def test_resolve_unknown(provider, catalog_route, query):
    with pytest.raises(GpuTypeNotFound) as info:
        await provider.resolve_gpu_type(query)
    assert not isinstance(info.value, GpuTypeAmbiguous)
    assert info.value.candidates == ALL_IDS
    assert all(i in info.value.message for i in ALL_IDS)
    assert info.value.reason == "invalid_request"


async def test_resolve_uses_the_cache(provider, catalog_route):
    await provider.resolve_gpu_type("4090")
    await provider.resolve_gpu_type("h100 sxm")
    assert catalog_route.call_count == 1


def test_normalise():
    assert normalise("  NVIDIA  GeForce RTX-4090 ") == "rtx 4090"
    assert normalise("NVIDIA A100-SXM4-80GB") == "a100 sxm4 80gb"
    assert normalise("AMD Instinct MI300X OAM") == "amd instinct mi300x oam"


def test_resolve_empty_catalog():
    with pytest.raises(GpuTypeNotFound, match="catalog is empty"):
        resolve("4090", [])
