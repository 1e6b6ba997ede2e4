"""The API's token cache (app/api/auth.py): a revoked token is refused by a running API
process within a bounded time (announced on Redis by `hangar keys revoke`), the cache's
TTL bounds a revocation Redis never delivered, 0 turns the cache off, and `last_used_at`
is written at most once a minute. Real processes, Postgres and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import httpx
import redis.asyncio as aioredis
from sqlalchemy import select, update

from app.db.models import ApiToken
from app.embedded import free_port
from app.services.teams import create_token
from app.settings import Settings
from tests.support.stack import eventually, settings_env, team_client


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


@contextlib.asynccontextmanager
async def api_process(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """`hangar api` in its own process; yields its URL and pid once it is subscribed to
    Redis (its EventHub's client, named after the pid, holds both channels)."""
    port = free_port()
    env = dict(settings_env(settings), HANGAR_LOG_JSON="false")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "api", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    redis = aioredis.from_url(settings.redis_url)
    try:
        async def subscribed() -> bool:
            clients = await redis.client_list()
            return any(c.get("name", "").startswith(f"hangar-events-{proc.pid}-")
                       and int(c.get("sub", 0)) >= 2 for c in clients)

        deadline = time.monotonic() + 60
        while not await subscribed():
            assert proc.returncode is None, "hangar api exited"
            assert time.monotonic() < deadline, "hangar api did not subscribe to Redis"
            await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        await redis.aclose()
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)


async def test_cli_revocation_reaches_a_running_api_process(db, settings) -> None:
    # A TTL no test waits for: only the announcement can explain a prompt refusal.
    settings = settings.model_copy(update={"auth_cache_s": 300.0})
    async with db() as session:
        _, token = await create_token(session, "alpha")
        _, other = await create_token(session, "alpha")
    async with api_process(settings) as (url, _), httpx.AsyncClient(base_url=url) as client:
        for t in (token, other):
            assert (await client.get("/clusters", headers={"Authorization": f"Bearer {t}"})
                    ).status_code == 200  # checked once, trusted from the cache now
        rc, out = await _cli(settings_env(settings), "keys", "revoke", token[:10])
        assert rc == 0, out
        assert "revoked 1 token(s); announced to" in out and "0 API process" not in out
        revoked = time.monotonic()
        while (await client.get("/clusters", headers={"Authorization": f"Bearer {token}"})
               ).status_code != 401:
            assert time.monotonic() - revoked < 2.0, "revocation not applied within 2 s"
            await asyncio.sleep(0.05)
        assert (await client.get("/clusters", headers={"Authorization": f"Bearer {other}"})
                ).status_code == 200  # only that token


async def test_cli_revocation_without_redis_says_how_long_it_may_take(db, settings) -> None:
    async with db() as session:
        _, token = await create_token(session, "alpha")
    env = dict(settings_env(settings), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
               HANGAR_AUTH_CACHE_SECONDS="7")
    rc, out = await _cli(env, "keys", "revoke", token)
    assert rc == 0, out  # revoked in the database whatever Redis does
    assert "revoked 1 token(s); could not announce it on Redis" in out
    assert "for up to 7 s (HANGAR_AUTH_CACHE_SECONDS)" in out
    async with db() as session:
        assert (await session.scalar(select(ApiToken))).revoked_at is not None
    rc, out = await _cli(env, "keys", "revoke", token)
    assert rc == 1 and "revoked 0 token(s)" in out


async def _revoke_unannounced(db, token: str) -> None:
    """Revoke in the database only: as if Redis lost the announcement."""
    async with db() as session, session.begin():
        await session.execute(update(ApiToken).where(ApiToken.prefix == token[:10])
                              .values(revoked_at=ApiToken.created_at))


async def test_the_ttl_bounds_a_revocation_nobody_announced(db, served_with) -> None:
    served, app = await served_with(auth_cache_s=0.5)
    async with await team_client(db, served.url, "alpha") as client:
        token = client.token
        assert (await client.get("/clusters")).status_code == 200
        await _revoke_unannounced(db, token)
        revoked = time.monotonic()
        assert (await client.get("/clusters")).status_code == 200  # still trusted (cached)
        while (await client.get("/clusters")).status_code != 401:
            assert time.monotonic() - revoked < 0.5 + 0.5, "trusted beyond the TTL"
            await asyncio.sleep(0.05)
    assert len(app.state.tokens) == 0  # refused tokens are not cached


async def test_token_cache_off_with_zero(db, served_with) -> None:
    served, app = await served_with(auth_cache_s=0)
    async with await team_client(db, served.url, "alpha") as client:
        token = client.token
        assert (await client.get("/clusters")).status_code == 200
        await _revoke_unannounced(db, token)
        assert (await client.get("/clusters")).status_code == 401
    assert len(app.state.tokens) == 0


async def test_resubscribing_clears_the_token_cache(db, served_with, settings) -> None:
    """Revocations published while the subscription was down are lost: a new
    subscription starts with an empty cache."""
    served, app = await served_with(auth_cache_s=300.0)
    hub = app.state.hub
    async with await team_client(db, served.url, "alpha") as client:
        token = client.token
        assert (await client.get("/clusters")).status_code == 200
        assert len(app.state.tokens) == 1
        epoch = hub.epoch
        redis = aioredis.from_url(settings.redis_url)
        try:
            mine = [c for c in await redis.client_list() if c.get("name") == hub.client_name]
            await redis.client_kill_filter(_id=mine[0]["id"])
        finally:
            await redis.aclose()
        await eventually(lambda: hub.connected and hub.epoch != epoch)
        assert len(app.state.tokens) == 0
        await _revoke_unannounced(db, token)
        assert (await client.get("/clusters")).status_code == 401


async def test_last_used_is_written_at_most_once_a_minute(db, served_with) -> None:
    served, _ = await served_with(auth_cache_s=0)  # every request looks the token up
    async with await team_client(db, served.url, "alpha") as client:
        assert (await client.get("/clusters")).status_code == 200
        async with db() as session:
            first = (await session.scalar(select(ApiToken))).last_used_at
        assert first is not None
        for _ in range(3):
            assert (await client.get("/clusters")).status_code == 200
        async with db() as session:
            assert (await session.scalar(select(ApiToken))).last_used_at == first
