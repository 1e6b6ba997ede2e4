"""Abuse limits (app/api/abuse.py): failed authentications throttled per client address,
event streams capped per team, and request fields that would reach outside what they name
(a mount path with `..`, a data center the catalog does not have) refused with a 422."""

from __future__ import annotations

import secrets

import httpx

from tests.support.events import SSE, make_cluster
from tests.support.stack import VALID, assert_problem, eventually, team_client


async def test_failed_authentication_is_throttled_per_address(served_with, db) -> None:
    served, app = await served_with(auth_failures_per_minute=5)
    good = await team_client(db, served.url, "alpha")
    try:
        assert (await good.get("/clusters")).status_code == 200
        async with httpx.AsyncClient(base_url=served.url) as stranger:
            for _ in range(5):
                r = await stranger.get("/clusters", headers={
                    "Authorization": f"Bearer hgr_{secrets.token_urlsafe(32)}"})
                assert_problem(r, 401, "unauthorized")
            r = await stranger.get("/clusters", headers={
                "Authorization": f"Bearer hgr_{secrets.token_urlsafe(32)}"})
            body = assert_problem(r, 429, "too_many_failed_authentications")
            assert body["limit"] == "failed_authentications"
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            # No token at all costs no lookup: still a plain 401.
            assert_problem(await stranger.get("/clusters"), 401, "unauthorized")
        # The same address with a token this process accepted: served as usual.
        assert (await good.get("/clusters")).status_code == 200
    finally:
        await good.aclose()


async def test_event_streams_are_capped_per_team(served_with, db) -> None:
    served, app = await served_with(max_streams_per_team=2)
    alpha = await team_client(db, served.url, "alpha")
    beta = await team_client(db, served.url, "beta")
    try:
        mine = await make_cluster(db, alpha.team_id)
        theirs = await make_cluster(db, beta.team_id)
        url = f"/clusters/{mine}/events"
        async with alpha.stream("GET", url, headers=SSE) as first, \
                alpha.stream("GET", url, headers=SSE) as second:
            assert first.status_code == second.status_code == 200
            third = await alpha.get(url, headers=SSE)
            body = assert_problem(third, 429, "too_many_streams")
            assert body["limit"] == "event_streams" and third.headers["Retry-After"]
            # The JSON page is no stream, and other teams have slots of their own.
            assert (await alpha.get(url)).status_code == 200
            async with beta.stream("GET", f"/clusters/{theirs}/events", headers=SSE) as other:
                assert other.status_code == 200
        await eventually(lambda: app.state.streams.open(alpha.team_id) == 0)
        async with alpha.stream("GET", url, headers=SSE) as again:
            assert again.status_code == 200
    finally:
        await alpha.aclose()
        await beta.aclose()


async def test_mount_path_with_dot_dot_is_422(hangar) -> None:
    for path in ("/../etc", "/workspace/../../root", "/data/.."):
        r = await hangar.post("/clusters", json={**VALID, "volume_mount_path": path})
        body = assert_problem(r, 422, "invalid_request")
        assert [e["field"] for e in body["errors"]] == ["volume_mount_path"], body
    r = await hangar.post("/clusters", json={**VALID, "volume_mount_path": "/data/..x/v1.2"})
    assert r.status_code == 202, r.text


async def test_unknown_data_center_is_422_with_the_known_ones(hangar) -> None:
    r = await hangar.post("/clusters", json={**VALID, "data_center_ids": ["US-KS-2", "MARS-1"]})
    body = assert_problem(r, 422, "unknown_data_center")
    assert "MARS-1" in body["detail"] and "US-KS-2" in body["candidates"]
    assert "MARS-1" not in body["candidates"]
    r = await hangar.post("/clusters", json={**VALID, "data_center_ids": ["US-KS-2"]})
    assert r.status_code == 202, r.text
