"""CORS: only the origins in HANGAR_CORS_ORIGINS get answers a browser lets a page read
(tests/browser/test_other_origin.py does the same from real pages in Chromium)."""

from __future__ import annotations

import httpx
import pytest

from app.settings import Settings

DASH = "https://dash.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"}


async def test_no_origin_is_allowed_by_default(served_with, db) -> None:
    served, _ = await served_with()
    async with httpx.AsyncClient(base_url=served.url) as c:
        pre = await c.options("/clusters", headers={"Origin": DASH, **PREFLIGHT})
        assert pre.status_code == 405
        r = await c.get("/healthz", headers={"Origin": DASH})
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in r.headers


async def test_an_allowed_origin_gets_preflights_and_readable_answers(served_with, db) -> None:
    from tests.support.stack import team_client

    served, _ = await served_with(cors_origins=[DASH, "http://127.0.0.1:9999"])
    client = await team_client(db, served.url, "alpha")
    async with client:
        pre = await client.options("/clusters", headers={"Origin": DASH, **PREFLIGHT})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == DASH
        allowed = pre.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "idempotency-key", "last-event-id",
                       "if-none-match"):
            assert header in allowed
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert pre.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in pre.headers

        r = await client.get("/clusters", headers={"Origin": DASH})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == DASH
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"location", "x-request-id", "retry-after", "idempotent-replayed",
                "etag"} <= exposed
        assert "origin" in r.headers["vary"].lower()

        # An error is readable too: the page can show the problem.
        denied = await client.get("/clusters", headers={"Origin": DASH, "Authorization": ""})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == DASH
        assert denied.headers["x-request-id"]


async def test_another_origin_is_refused(served_with, db) -> None:
    served, _ = await served_with(cors_origins=[DASH])
    async with httpx.AsyncClient(base_url=served.url) as c:
        pre = await c.options("/clusters", headers={"Origin": "https://evil.example.com",
                                                     **PREFLIGHT})
        r = await c.get("/healthz", headers={"Origin": "https://dash.example.com.evil.net"})
    assert pre.status_code == 400
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("value, origins", [
    ("", []),
    ("https://Dash.Example.com/, http://127.0.0.1:8080", ["https://dash.example.com",
                                                         "http://127.0.0.1:8080"]),
    ("*", ["*"]),
    ("http://[::1]:3000", ["http://[::1]:3000"]),
    ('["https://a.example.com", "http://127.0.0.1:8080"]', ["https://a.example.com",
                                                         "http://127.0.0.1:8080"]),
    ("[]", []),
])
def test_the_setting_takes_comma_separated_origins(value, origins) -> None:
    assert Settings(HANGAR_CORS_ORIGINS=value).cors_origins == origins


@pytest.mark.parametrize("value", ["dash.example.com", "https://dash.example.com/app",
                                   "ftp://x.example.com", "https://x.example.com:port"])
def test_a_value_that_is_not_an_origin_is_refused_with_the_reason(value) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        Settings(HANGAR_CORS_ORIGINS=value)
