"""Health, readiness, auth and problem+json over real HTTP."""

import httpx


async def test_healthz_and_readyz(served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "Hangar"


async def test_unknown_route_is_problem_json(served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404
