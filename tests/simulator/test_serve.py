"""`serve()` as the `hangar simulator` command runs it: its own process, blocking."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx


async def test_serve_prints_url_and_stops_on_sigint(tmp_path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.simulator",
        "--port",
        "0",
        "--api-key",
        "k1",
        "--work-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        base = line.split("serving ", 1)[1].split()[0]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v2")
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": "Bearer k1"}) as c:
            assert (await c.get("/pods")).json()["pods"] == []
            admin = base.removesuffix("/v2") + "/_sim/health"
            assert (await c.get(admin)).json()["ok"] is True
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
