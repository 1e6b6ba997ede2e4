"""Teams and tokens: another team's cluster is a 404 on every route; revoked tokens are
refused; tokens are stored hashed and their use is recorded."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from app.db.models import ApiToken
from app.services.teams import revoke_token
from tests.support.stack import VALID, assert_problem


async def test_another_teams_cluster_is_404_on_every_route(client_for) -> None:
    alpha, beta = await client_for("alpha"), await client_for("beta")
    created = await alpha.post("/clusters", json={**VALID, "name": "alpha-one"})
    assert created.status_code == 202, created.text
    cid = created.json()["id"]
    mine = await beta.post("/clusters", json={**VALID, "name": "beta-one"})
    assert mine.status_code == 202

    for method, path, headers in (
        ("GET", f"/clusters/{cid}", {}),
        ("DELETE", f"/clusters/{cid}", {}),
        ("GET", f"/clusters/{cid}/events", {}),
        ("GET", f"/clusters/{cid}/events", {"Accept": "text/event-stream"}),
    ):
        r = await beta.request(method, path, headers=headers)
        problem = assert_problem(r, 404, "not_found")
        assert cid not in problem["detail"]

    # Team A still sees its cluster untouched (B's DELETE did nothing).
    own = await alpha.get(f"/clusters/{cid}")
    assert own.status_code == 200 and own.json()["status"] == "pending"

    # Lists hold only the caller's clusters, whatever the filter.
    assert [c["name"] for c in (await beta.get("/clusters")).json()["items"]] == ["beta-one"]
    assert (await beta.get("/clusters", params={"name": "alpha-one"})).json()["items"] == []
    assert [c["name"] for c in (await alpha.get("/clusters")).json()["items"]] == ["alpha-one"]

    # A random id is the same 404 as another team's: nothing tells them apart.
    r = await beta.get("/clusters/00000000-0000-4000-8000-000000000000")
    assert r.json()["detail"] == (await beta.get(f"/clusters/{cid}")).json()["detail"]


async def test_revoked_token_is_rejected(client_for, db) -> None:
    alpha = await client_for("alpha")
    other = await client_for("alpha")  # a second token of the same team
    assert (await alpha.get("/clusters")).status_code == 200
    async with db() as session:
        assert await revoke_token(session, alpha.token[:10]) == 1
    r = await alpha.get("/clusters")
    assert_problem(r, 401, "unauthorized")
    assert "Bearer" in r.headers["www-authenticate"]
    assert alpha.token not in r.text
    assert (await other.get("/clusters")).status_code == 200  # only that token


async def test_tokens_are_stored_hashed_and_use_is_recorded(client_for, db) -> None:
    alpha = await client_for("alpha")
    async with db() as session:
        token = await session.scalar(select(ApiToken))
        assert token.last_used_at is None
    assert (await alpha.get("/clusters")).status_code == 200
    async with db() as session:
        token = await session.scalar(select(ApiToken))
    assert token.token_hash == hashlib.sha256(alpha.token.encode()).hexdigest()
    assert token.prefix == alpha.token[:10] and alpha.token not in repr(token.__dict__)
    assert token.last_used_at is not None


async def test_missing_or_malformed_credentials_are_401(served) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=served.url) as anon:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dTpw"},
                        {"Authorization": "Bearer hgr_" + "x" * 43}):
            for method, path in (("GET", "/clusters"), ("POST", "/clusters"),
                                 ("GET", "/gpu-types"),
                                 ("GET", "/clusters/00000000-0000-4000-8000-000000000000")):
                r = await anon.request(method, path, headers=headers, json=VALID)
                assert_problem(r, 401, "unauthorized")
