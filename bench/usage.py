"""Usage benchmark: `GET /usage` over one month for a team with a long history.

Setup: the API on loopback against a fresh database holding `--clusters` clusters of
`--nodes-per` nodes each for one team, spread over `--months` months back from now (each
node ran a few hours at a catalog-like rate; one in a hundred still runs), plus a second
team of the same size (its rows must not slow the first team's query down). Then
`--requests` sequential requests per grouping (day, cluster page, gpu_type, and `GET
/team`) for the current month, reporting p50/p99 wall time and the plan Postgres uses.

    uv run python bench/usage.py [--clusters 10000 --nodes-per 10 --months 12]
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services import spend  # noqa: E402
from bench.common import (  # noqa: E402
    Stack,
    base_parser,
    load_average,
    machine_speed_ms,
    percentile,
    plain_pg,
    report,
    require_services,
    rnd,
    run,
    settings_from,
)

GPUS = [("NVIDIA GeForce RTX 4090", 0.69), ("NVIDIA H100 80GB HBM3", 2.99),
        ("NVIDIA L4", 0.43), ("NVIDIA A100 80GB PCIe", 1.64)]


def parse_args(argv: list[str] | None = None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=10_000)
    p.add_argument("--nodes-per", type=int, default=10)
    p.add_argument("--months", type=int, default=12, help="history spread over this many")
    p.add_argument("--requests", type=int, default=30, help="per grouping")
    return p.parse_args(argv)


async def seed(conn: asyncpg.Connection, team_id: uuid.UUID, clusters: int, nodes_per: int,
               months: int, now: datetime) -> None:
    """Clusters and nodes of a team as the pipeline leaves them, written with COPY."""
    rng = random.Random(str(team_id))
    span = timedelta(days=30 * months)
    c_rows, n_rows = [], []
    for i in range(clusters):
        cid = uuid.uuid4()
        created = now - span * rng.random()
        gpu, rate = rng.choice(GPUS)
        running = rng.random() < 0.01
        ended = None if running else created + timedelta(hours=rng.uniform(0.5, 12))
        if ended is not None and ended > now:
            ended = now - timedelta(minutes=1)
        c_rows.append((cid, team_id, f"c{i}", "ready" if running else "terminated", gpu, gpu,
                       1, nodes_per, "secure", "on-demand", "img", 50, 0, "/workspace",
                       '["22/tcp"]', "{}", "[]", "", "[[]]", "ssh-ed25519 AAAA", b"x", 0,
                       created, created, ended))
        for n in range(nodes_per):
            started = created + timedelta(seconds=rng.uniform(10, 120))
            n_rows.append((uuid.uuid4(), cid, n, "ready" if running else "terminated", 1,
                           gpu, rate, started, None if running else ended, 1, 0, 0, 0, 0, 0))
    await conn.copy_records_to_table("clusters", records=c_rows, columns=[
        "id", "team_id", "name", "status", "gpu_type", "gpu_type_id", "gpu_count",
        "node_count", "cloud_type", "allocation", "image", "container_disk_gb", "volume_gb",
        "volume_mount_path", "ports", "env", "data_center_ids", "setup", "placements",
        "ssh_public_key", "ssh_private_key_enc", "last_event_seq", "created_at",
        "updated_at", "terminated_at"])
    await conn.copy_records_to_table("nodes", records=n_rows, columns=[
        "id", "cluster_id", "index", "status", "gpu_count", "gpu_type_id", "hourly_rate",
        "started_at", "terminated_at", "attempt", "candidate", "output_offset", "output_lines",
        "output_dropped", "terminate_attempts"])


async def main_async(args) -> int:
    require_services(args)
    speed = machine_speed_ms()
    async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                     log_level="WARNING", keep_logs=args.keep_logs,
                     settings=settings_from(args)) as stack:
        api_url, token = await asyncio.gather(stack.start_api(), stack.token("bench"))
        await stack.token("neighbour")
        now = datetime.now(UTC)
        conn = await asyncpg.connect(plain_pg(stack.database_url))
        try:
            teams = dict(await conn.fetch("SELECT name, id FROM teams"))
            started = time.monotonic()
            for name in ("bench", "neighbour"):
                await seed(conn, teams[name], args.clusters, args.nodes_per, args.months, now)
            await conn.execute("ANALYZE")
            seeded = time.monotonic() - started
            month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            # The window scan of app/services/spend.py, as the API runs it for this month.
            sql = (spend._SPANS.replace(":team", "$1").replace(":start", "$2")
                   .replace(":end", "$3").replace(":now", "$4"))
            plan = await conn.fetch(f"EXPLAIN SELECT count(*) FROM ({sql}) spans",
                                    teams["bench"], month, now, now)
        finally:
            await conn.close()
        headers = {"Authorization": f"Bearer {token}"}
        timings: dict[str, list[float]] = {}
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as client:
            queries = {"day": ("/usage", {"group_by": "day"}),
                       "cluster": ("/usage", {"group_by": "cluster"}),
                       "gpu_type": ("/usage", {"group_by": "gpu_type"}),
                       "team": ("/team", {})}
            for path, params in queries.values():
                (await client.get(path, params=params)).raise_for_status()  # warm
            for _ in range(args.requests):
                for name, (path, params) in queries.items():
                    t = time.perf_counter()
                    r = await client.get(path, params=params)
                    timings.setdefault(name, []).append(time.perf_counter() - t)
                    r.raise_for_status()
            total = (await client.get("/usage")).json()["total"]
    figures = {"speed_ms": speed, "seeded_s": rnd(seeded, 1), "load": load_average(),
               "clusters": args.clusters, "nodes": args.clusters * args.nodes_per,
               "month_cost": total["cost"]}
    lines = [f"machine speed {speed:.1f} ms (a fixed Python loop: lower is faster); load "
             f"{load_average()}; seeded {args.clusters} clusters x {args.nodes_per} nodes "
             f"over {args.months} months for each of 2 teams in {seeded:.1f} s"]
    for name, values in timings.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        figures[f"{name}_p50_ms"] = rnd(p50 * 1000, 1)
        figures[f"{name}_p99_ms"] = rnd(p99 * 1000, 1)
        lines.append(f"GET {name:9s} p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms "
                     f"({len(values)} requests)")
    lines.append(f"this month's cost: ${total['cost']:.2f}, {total['gpu_hours']:.1f} GPU-hours")
    lines.append("plan of the window scan:\n  " + "\n  ".join(r[0] for r in plan))
    report("usage", lines, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run(main_async(parse_args())))
