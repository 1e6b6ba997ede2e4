"""Start-up of the client command line: `hangar clusters ls` against a running API (the
whole command: start, import, one request, print, exit), with `hangar --help` beside it.

Prints the median, min and max wall time of `--runs` runs of each, and what
`python -X importtime` says the slowest imports of `hangar clusters ls` are. The target is
a median of at most 0.3 s for `hangar clusters ls`.

    uv run python bench/cli_startup.py               # 5 runs each
    uv run python bench/cli_startup.py --runs 20 --json

Setup (bench/common.py's Stack): a fresh database, the simulator, one `hangar api`
process, a token, and 5 clusters (no worker: they stay pending) for `ls` to list.
PYTHONDONTWRITEBYTECODE as set in your environment: when it is set and the packages were
installed without compiled bytecode (`uv sync` does not compile by default), every run
compiles every module it imports; a `pip install` or `uv sync --compile-bytecode` does
not.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    Stack,
    base_parser,
    load_average,
    machine_speed_ms,
    median,
    report,
    require_services,
    rnd,
    run,
    settings_from,
)

HANGAR = str(Path(sys.executable).with_name("hangar"))


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    return took


def slowest_imports(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Top-level imports of `hangar clusters ls` by cumulative time (ms)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "app.cli", "clusters",
                           "ls"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            rows.append((m.group(2), int(m.group(1)) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


async def main() -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require_services(args)
    async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                     log_level=args.log_level, keep_logs=args.keep_logs,
                     settings=settings_from(args)) as stack:
        stack.spawn_simulator(start_delay=2.0)
        _, token = await asyncio.gather(stack.start_api(), stack.token("bench"))
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            for i in range(5):
                r = await http.post("/clusters", json={"name": f"c{i}", "gpu_type": "4090"})
                r.raise_for_status()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANGAR_")}
        env.update(HANGAR_URL=stack.api_url, HANGAR_TOKEN=token)
        timed([HANGAR, "clusters", "ls"], env)  # warm the disk cache
        ls, help_ = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine
            ls.append(timed([HANGAR, "clusters", "ls"], env))
            help_.append(timed([HANGAR, "--help"], env))
        imports = await asyncio.to_thread(slowest_imports, env)

    figures = {
        "runs": args.runs,
        "clusters_ls_median_s": rnd(median(ls)), "clusters_ls_min_s": rnd(min(ls)),
        "clusters_ls_max_s": rnd(max(ls)),
        "help_median_s": rnd(median(help_)), "help_min_s": rnd(min(help_)),
        "help_max_s": rnd(max(help_)),
        "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "slowest_imports_ms": {name: rnd(ms, 1) for name, ms in imports},
        "load_average": load_average(), "machine_speed_ms": machine_speed_ms(),
    }
    lines = [
        f"hangar clusters ls: median {median(ls):.3f} s (min {min(ls):.3f}, max {max(ls):.3f}) "
        f"over {args.runs} runs; target <= 0.3 s",
        f"hangar --help:      median {median(help_):.3f} s (min {min(help_):.3f}, "
        f"max {max(help_):.3f})",
        "slowest imports of `clusters ls` (cumulative ms): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in imports),
        f"PYTHONDONTWRITEBYTECODE={'set' if figures['dont_write_bytecode'] else 'unset'}; "
        f"load average {figures['load_average']}; machine speed "
        f"{figures['machine_speed_ms']} ms",
    ]
    report("CLI start-up", lines, figures, args.json)
    return 0 if median(ls) <= 0.3 else 1


if __name__ == "__main__":
    sys.exit(run(main()))
