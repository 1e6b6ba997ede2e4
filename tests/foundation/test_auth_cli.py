"""`hangar keys create` prints a token that authenticates; wrong, missing or revoked → 401."""

import asyncio
import os
import sys

import httpx


async def _cli(database_url: str, *args: str, redis_url: str | None = None) -> tuple[int, str]:
    env = dict(os.environ, DATABASE_URL=database_url, HANGAR_LOG_JSON="false")
    if redis_url:  # where `keys revoke` announces revocations to the API processes
        env["REDIS_URL"] = redis_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_keys_create_token_authenticates(api, database_url, redis_url) -> None:
    rc, out = await _cli(database_url, "keys", "create", "--team", "t")
    assert rc == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("hgr_")

    async with httpx.AsyncClient(base_url=api.url) as client:
        ok = await client.get("/clusters", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"items": [], "next": None}

        for headers in ({}, {"Authorization": "Bearer hgr_wrong"}, {"Authorization": "Basic x"}):
            r = await client.get("/clusters", headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == 401 and r.json()["detail"]
            assert "Bearer" in r.headers["www-authenticate"]

        rc, out = await _cli(database_url, "keys", "revoke", token[:10], redis_url=redis_url)
        assert rc == 0, out
        r = await client.get("/clusters", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
