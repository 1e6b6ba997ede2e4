"""API benchmark: throughput and p50/p99 latency of `GET /clusters/{id}` and `GET /clusters`
(a page of 50) at 64 concurrent connections, side by side with a bare FastAPI endpoint that
returns a constant JSON (bench/bare_app.py) served by uvicorn with the options of `hangar api`
in its own process: the framework's ceiling on this machine.

Also: `GET /clusters` for a team with `--history-small` (100) and one with `--history-large`
(10,000) finished clusters in its history (seeded straight into the database,
bench/history.py), unfiltered and filtered to the live statuses (the dashboard's view); the
304 revalidation of `GET /clusters/{id}` (`If-None-Match` with its ETag, a finished cluster
so the tag holds still); and the dashboard's first load in headless Chromium (requests and
bytes, and how many left the origin: none may), when /usr/bin/chromium exists.

Setup: the simulator, one worker and the API on loopback against a fresh database; the
script creates `--clusters` clusters of 2 nodes and waits until they are ready, then stops
the worker (and the simulator) so only the API and the load generator use the CPU. Rounds
alternate bare / one cluster / list so all three see the same machine; the figures are
medians over the rounds.

Load generator: wrk (Debian package `wrk`) when it is installed, else a raw-asyncio HTTP/1.1
keep-alive client in a separate process (`--loadgen asyncio`).

    uv run python bench/api.py [--duration 10 --rounds 3 --connections 64]
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    CpuMeter,
    Proc,
    RssSampler,
    Stack,
    base_parser,
    free_port,
    load_average,
    machine_speed_ms,
    median,
    mib,
    percentile,
    plain_pg,
    report,
    require_services,
    rnd,
    run,
    settings_from,
    wait_http,
)
from bench.history import seed_history  # noqa: E402


def parse_args(argv: list[str] | None = None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="rounds of (bare, one, list)")
    p.add_argument("--clusters", type=int, default=60, help="clusters in the database")
    p.add_argument("--seed-nodes", type=int, default=2, help="nodes per seeded cluster")
    p.add_argument("--page", type=int, default=50, help="GET /clusters?limit= (<= --clusters)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "asyncio"), default="auto")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--raw", action="store_true",
                   help="also measure bench/bare_app.py's one-query cluster read (reference)")
    p.add_argument("--history-small", type=int, default=100,
                   help="finished clusters in the small history team")
    p.add_argument("--history-large", type=int, default=10_000,
                   help="finished clusters in the large history team")
    p.add_argument("--history-live", type=int, default=5,
                   help="ready clusters in each history team (the live filter's page)")
    p.add_argument("--only", default="", metavar="NAME,...",
                   help="measure only these targets (bare, get_cluster, list_clusters, "
                   "list_history_small, list_history_large, list_large_live, get_cluster_304)")
    p.add_argument("--ui", choices=("auto", "yes", "no"), default="auto",
                   help="measure the dashboard's first load in Chromium (auto: if installed)")
    return p.parse_args(argv)


# --- load generators ------------------------------------------------------------------------

_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def wrk(url: str, headers: dict[str, str], connections: int, duration: float,
        threads: int) -> dict[str, Any]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run(argv + [url], capture_output=True, text=True,
                         timeout=duration + 60).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "Requests/sec" not in out or set(lat) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output for {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": _seconds(lat["50"]) * 1000, "p99_ms": _seconds(lat["99"]) * 1000,
            "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else None}


async def _asyncio_load(url: str, headers: dict[str, str], connections: int,
                        duration: float) -> dict[str, Any]:
    """HTTP/1.1 keep-alive GETs on `connections` sockets for `duration` seconds."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n").encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + duration

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                writer.write(request)
                header = await reader.readuntil(b"\r\n\r\n")
                status = int(header.split(b" ", 2)[1])
                m = re.search(rb"(?i)content-length:\s*(\d+)", header)
                await reader.readexactly(int(m.group(1)) if m else 0)
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed = time.monotonic() - t0
    return {"rps": len(latencies) / elapsed,
            "p50_ms": (percentile(latencies, 50) or 0) * 1000,
            "p99_ms": (percentile(latencies, 99) or 0) * 1000,
            "requests": len(latencies),
            "non_2xx": sum(n for s, n in statuses.items() if not 200 <= s < 400),
            "socket_errors": None}


def asyncio_loadgen(url: str, headers: dict[str, str], connections: int,
                    duration: float) -> dict[str, Any]:
    """Run the asyncio load generator in a separate process (so it has its own CPU)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--loadgen-child",
            json.dumps({"url": url, "headers": headers, "connections": connections,
                        "duration": duration})]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the run ----------------------------------------------------------------------------------


async def seed_clusters(stack: Stack, token: str, n: int, nodes: int) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        sem = asyncio.Semaphore(16)

        async def post(i: int) -> None:
            async with sem:
                r = await c.post("/clusters", json={"name": f"api-bench-{i}", "gpu_type": "4090",
                                                    "nodes": nodes, "setup": "echo ok"})
                r.raise_for_status()
                ids.append(r.json()["id"])

        await asyncio.gather(*(post(i) for i in range(n)))
    conn = await asyncpg.connect(plain_pg(stack.database_url))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM clusters WHERE status NOT IN ('ready', 'failed')")
            if waiting == 0:
                break
            stack.check_alive()
            await asyncio.sleep(0.25)
        else:
            raise TimeoutError("seed clusters not ready in 120 s")
    finally:
        await conn.close()
    return ids


async def main_async(args) -> int:
    require_services(args)
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        sys.exit("error: wrk is not installed (apt-get install -y wrk), or use --loadgen asyncio")
    loadgen = "wrk" if use_wrk else "asyncio (raw HTTP/1.1 keep-alive client, own process)"

    def measure(url: str, headers: dict[str, str]) -> dict[str, Any]:
        if use_wrk:
            return wrk(url, headers, args.connections, args.duration, args.threads)
        return asyncio_loadgen(url, headers, args.connections, args.duration)

    async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                     log_level=args.log_level, keep_logs=args.keep_logs,
                     settings=settings_from(args)) as stack:
        _, token = await asyncio.gather(stack.start(start_delay=0.0, workers=1),
                                        stack.token("bench"))
        ids = await seed_clusters(stack, token, args.clusters, args.seed_nodes)
        small, large = await asyncio.gather(stack.token("history-small"),
                                            stack.token("history-large"))
        await seed_history(plain_pg(stack.database_url), "history-small", args.history_small,
                           args.history_live)
        finished = await seed_history(plain_pg(stack.database_url), "history-large",
                                      args.history_large, args.history_live)
        # Only the API and the load generator from here on.
        for p in (*stack.workers, stack.sim):
            if p is not None:
                await asyncio.to_thread(p.stop)
        port = free_port()
        bare = Proc("bare", [sys.executable, "-m", "bench.bare_app", "--port", str(port)],
                    dict(stack.env(), BARE_DATABASE_URL=stack.database_url),
                    stack.run_dir / "bare.log")
        stack.procs.append(bare.start())
        await wait_http(f"http://127.0.0.1:{port}/bare", [bare], timeout=30)
        auth = {"Authorization": f"Bearer {token}"}
        auth_small = {"Authorization": f"Bearer {small}"}
        auth_large = {"Authorization": f"Bearer {large}"}
        live = "".join(f"&status={s}" for s in LIVE)
        async with httpx.AsyncClient(timeout=10) as c:
            etag = (await c.get(f"{stack.api_url}/clusters/{finished[0]}",
                                headers=auth_large)).headers["etag"]
        targets = {
            "bare": (f"http://127.0.0.1:{port}/bare", {}),
            "get_cluster": (f"{stack.api_url}/clusters/{ids[0]}", auth),
            "list_clusters": (f"{stack.api_url}/clusters?limit={args.page}", auth),
            "list_history_small": (f"{stack.api_url}/clusters?limit={args.page}", auth_small),
            "list_history_large": (f"{stack.api_url}/clusters?limit={args.page}", auth_large),
            "list_large_live": (f"{stack.api_url}/clusters?limit={args.page}{live}", auth_large),
            "get_cluster_304": (f"{stack.api_url}/clusters/{finished[0]}",
                                {**auth_large, "If-None-Match": etag}),
        }
        if args.raw:  # a reference read path, not Hangar's API (see bench/bare_app.py)
            targets["raw_cluster_read"] = (f"http://127.0.0.1:{port}/raw/clusters/{ids[0]}", {})
        if args.only:
            targets = {k: v for k, v in targets.items() if k in args.only.split(",")}
        async with httpx.AsyncClient(timeout=10) as c:  # warm up, and check the answers
            for name, (url, headers) in targets.items():
                for _ in range(20):
                    r = await c.get(url, headers=headers)
                    if name == "get_cluster_304":
                        assert r.status_code == 304, r.status_code
                    else:
                        r.raise_for_status()
                if name in ("list_clusters", "list_history_small", "list_history_large"):
                    assert len(r.json()["items"]) == args.page, "the list page must be full"
                if name == "list_large_live":
                    assert len(r.json()["items"]) == args.history_live
        load_before = load_average()
        speed_ms = machine_speed_ms()
        results: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
        with RssSampler([p for p in (stack.api, bare) if p is not None]):
            for _ in range(args.rounds):
                for name, (url, headers) in targets.items():
                    server = bare if name in ("bare", "raw_cluster_read") else stack.api
                    meter = CpuMeter([server], stack.database_name).start()
                    result = await asyncio.to_thread(measure, url, headers)
                    cpu = meter.stop()
                    result["server_cpu_pct"] = 100 * cpu[server.name] / cpu["wall_s"]
                    result["postgres_cpu_pct"] = 100 * cpu["postgres"] / cpu["wall_s"]
                    result["machine_busy_pct"] = cpu["machine_busy_pct"]
                    results[name].append(result)
        load_after = load_average()
        rss = {"api": mib(stack.api.peak_rss_kib) if stack.api else None,
               "bare": mib(bare.peak_rss_kib)}
        ui = None
        if args.ui == "yes" or (args.ui == "auto" and HAVE_CHROMIUM):
            ui = await measure_ui(stack.api_url, token)

    summary: dict[str, Any] = {}
    for name, runs in results.items():
        summary[name] = {
            "rps": rnd(median(r["rps"] for r in runs), 1),
            "p50_ms": rnd(median(r["p50_ms"] for r in runs), 2),
            "p99_ms": rnd(median(r["p99_ms"] for r in runs), 2),
            "runs_rps": [rnd(r["rps"], 1) for r in runs],
            "server_cpu_pct": rnd(median(r["server_cpu_pct"] for r in runs), 0),
            "postgres_cpu_pct": rnd(median(r["postgres_cpu_pct"] for r in runs), 0),
            "machine_busy_pct": rnd(median(r["machine_busy_pct"] for r in runs), 0),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "requests": sum(r["requests"] for r in runs),
        }
    bare_rps = summary["bare"]["rps"] or 0
    ratios = {k: rnd(v["rps"] / bare_rps, 3) if bare_rps else None
              for k, v in summary.items() if k != "bare"}
    figures = {
        "loadgen": loadgen, "connections": args.connections, "duration_s": args.duration,
        "rounds": args.rounds, "page": args.page, "load_average_before": load_before,
        "load_average_after": load_after, "machine_speed_ms": speed_ms, "endpoints": summary, "ratio_to_bare": ratios,
        "rss_mib": rss, "ui_first_load": ui,
    }
    lines = [f"load generator: {loadgen}; {args.connections} connections, {args.duration:.0f}s x "
             f"{args.rounds} rounds per endpoint (medians); load average before {load_before}, "
             f"after {load_after}; machine speed {speed_ms} ms (a fixed Python loop)"]
    for name, s in summary.items():
        ratio = f", {ratios[name]:.2f} x bare" if name in ratios and ratios[name] else ""
        lines.append(f"{name:18s} {s['rps']:>8.1f} req/s  p50 {s['p50_ms']:.2f} ms  p99 "
                     f"{s['p99_ms']:.2f} ms  (runs {s['runs_rps']}; non-2xx {s['non_2xx']}; "
                     f"server CPU {s['server_cpu_pct']:.0f}%, postgres {s['postgres_cpu_pct']:.0f}%"
                     f", machine busy {s['machine_busy_pct']:.0f}%)"
                     f"{ratio}")
    if ui is not None:
        for key, label in (("sign_in", "sign-in page"), ("signed_in", "clusters page, signed in")):
            u = ui[key]
            lines.append(f"/ui first load, {label}: {u['requests']} requests, "
                         f"{u['bytes'] / 1024:.1f} KiB ({u['body_bytes'] / 1024:.1f} KiB of "
                         f"bodies), {u['elsewhere']} to other origins")
    report("api", lines, figures, args.json)
    bad = any(s["non_2xx"] for s in summary.values())
    return 1 if bad else 0


LIVE = ("pending", "provisioning", "bootstrapping", "ready", "terminating")
CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = shutil.which(CHROMIUM) is not None


async def measure_ui(api_url: str, token: str) -> dict[str, Any]:
    """The dashboard's first load in a fresh headless Chromium profile (empty cache): every
    request, the bytes of its response (headers and body), and how many went elsewhere than
    the API's origin. Once at the sign-in page, once signed in (the token put in the tab's
    session storage first) until the clusters table shows."""
    from playwright.async_api import async_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    out: dict[str, Any] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            for key, signed_in in (("sign_in", False), ("signed_in", True)):
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                if signed_in:
                    await context.add_init_script(
                        f"sessionStorage.setItem('hangar.token', {json.dumps(token)})")
                page = await context.new_page()
                done: list[Any] = []
                page.on("requestfinished", lambda r, done=done: done.append(r))
                await page.goto(f"{api_url}/ui")
                await page.wait_for_selector("table.clusters tr.row" if signed_in
                                             else "input[name=token]")
                await page.wait_for_load_state("networkidle")
                sizes = [await r.sizes() for r in done]
                out[key] = {
                    "requests": len(done),
                    "bytes": sum(s["responseBodySize"] + s["responseHeadersSize"]
                                 for s in sizes),
                    "body_bytes": sum(s["responseBodySize"] for s in sizes),
                    "elsewhere": sum(not r.url.startswith(api_url + "/") for r in done),
                }
                await context.close()
        finally:
            await browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--loadgen-child":
        spec = json.loads(sys.argv[2])
        print(json.dumps(asyncio.run(_asyncio_load(**spec))))
        return 0
    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
