"""`hangar keys create` prints a token that authenticates; wrong, missing or revoked → 401."""

import asyncio
import sys

import httpx

from tests.support.stack import settings_env


async def _cli(settings, *args: str) -> tuple[int, str]:
    # REDIS_URL and the namespace: where `keys revoke` announces revocations to the API.
    env = settings_env(settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_keys_create_token_authenticates(served, app_settings) -> None:
    rc, out = await _cli(app_settings, "keys", "create", "--team", "t")
    assert rc == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("hgr_")

    async with httpx.AsyncClient(base_url=served.url) as client:
        ok = await client.get("/clusters", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"items": [], "next": None}

        for headers in ({}, {"Authorization": "Bearer hgr_wrong"}, {"Authorization": "Basic x"}):
            r = await client.get("/clusters", headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == 401 and r.json()["detail"]
            assert "Bearer" in r.headers["www-authenticate"]

        rc, out = await _cli(app_settings, "keys", "revoke", token[:10])
        assert rc == 0, out
        r = await client.get("/clusters", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
