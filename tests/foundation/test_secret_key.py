"""HANGAR_SECRET_KEY: `hangar api` and `hangar worker` refuse to start without it, saying
what to set; only `hangar dev` runs on a development key, and says so."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

import httpx

from app.embedded import free_port
from tests.support.stack import settings_env


def env_without_key(settings, tmp_path) -> dict[str, str]:
    env = settings_env(settings)
    env.pop("HANGAR_SECRET_KEY", None)
    env.pop("HANGAR_SECRET_KEY_OLD", None)
    return env


async def test_api_and_worker_refuse_to_start_without_it(settings, tmp_path) -> None:
    env = env_without_key(settings, tmp_path)
    for args in (["api", "--port", str(free_port())], ["worker"],
                 ["keys", "rotate-secrets"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", *args, env=env, cwd=tmp_path,  # no .env here
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2, (args, out, err)
        assert "HANGAR_SECRET_KEY is not set" in err.decode(), (args, err)
        assert "Fernet" in err.decode() and "hangar dev" in err.decode()
    # An empty value is no key either.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", env={**env, "HANGAR_SECRET_KEY": ""},
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and "HANGAR_SECRET_KEY is not set" in err.decode()


async def test_dev_runs_on_a_development_key_and_says_so(settings, tmp_path) -> None:
    port, sim_port = free_port(), free_port()
    env = dict(env_without_key(settings, tmp_path),
               HANGAR_REDIS_NAMESPACE=f"dev-{uuid.uuid4().hex[:8]}", HANGAR_LOG_JSON="false")
    env.pop("RUNPOD_API_KEY", None)  # the simulator, as `hangar dev` is used
    env.pop("RUNPOD_API_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "dev", "--port", str(port),
        "--simulator-port", str(sim_port), env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        # `hangar dev` says it is ready once its API answers (and only then stops its
        # children on SIGTERM): wait for that line.
        assert proc.stdout is not None
        while b"Hangar API at" not in (line := await asyncio.wait_for(
                proc.stdout.readline(), 120)):
            assert line, "hangar dev exited before it was ready"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "running on the development key" in err.decode(), err.decode()[-3000:]
