"""bench/sse.py in a small mode, so the script cannot rot: every subscriber gets every
event once, in order, and its stream ends after the terminal event."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bench.common import parse_json_line

ROOT = Path(__file__).resolve().parents[2]


async def test_sse_bench_small_mode_loses_nothing(database_server: str, redis_url: str) -> None:
    env = dict(os.environ, DATABASE_URL=database_server, REDIS_URL=redis_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "sse.py"), "--subscribers", "20",
        "--seconds", "2", "--rate", "10", "--json", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 180)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text
    figures = parse_json_line(text)
    assert figures["connected"] == 20, text
    assert figures["events_appended"] == 20
    assert figures["lost"] == 0 and figures["duplicates"] == 0, text
    assert figures["out_of_order"] == 0 and figures["client_errors"] == 0, text
    assert figures["streams_closed_by_server"] == 20, text
    assert figures["deliveries"] == 20 * 23  # 20 notices + the 3 events of the delete
    assert figures["latency_ms"]["p50"] is not None
