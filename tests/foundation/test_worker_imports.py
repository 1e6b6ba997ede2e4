"""A worker process never loads the HTTP layer: nothing under `app.api`, no FastAPI."""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from tests.support.stack import settings_env


async def test_hangar_worker_does_not_import_the_api(settings) -> None:
    env = dict(settings_env(settings), PYTHONPROFILEIMPORTTIME="1")  # every import, on stderr
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    health = settings.redis_names.queue + ":health-check"  # written once the worker polls
    r = aioredis.from_url(settings.redis_url)
    try:
        for _ in range(300):
            if await r.exists(health) or proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert await r.exists(health), "the worker did not start"
    finally:
        await r.aclose()
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.decode().splitlines()
                if line.startswith("import time:")}
    assert "workers.jobs" in imported and "app.services.state" in imported
    assert not {m for m in imported if m.split(".")[0] in ("fastapi", "starlette", "uvicorn")}
    assert not {m for m in imported if m == "app.api" or m.startswith("app.api.")}
