"""Provisioning benchmark: N clusters x M nodes through the RunPod simulator.

Starts the simulator (`--start-delay`: seconds from create to RUNNING; its provisioning delay
is set to `--provision-delay`, 0 by default, so the start delay is the whole pod wait), the
worker(s) and the API as processes on loopback against a fresh database, posts the clusters
with a one-line setup, waits until every cluster is ready, DELETEs them all and waits for
`terminated`. Prints:

- POST -> ready per cluster and the control-plane overhead (POST -> ready minus the pod start
  delay minus the setup's own run time), with a breakdown by phase from the events;
- throughput (clusters ready per second from the first POST to the last ready);
- RunPod requests by endpoint from the simulator's record, per node;
- orphan pods (alive at the simulator after teardown) and duplicate pods per node;
- peak RSS and CPU seconds of the worker(s), the API and the simulator.

Examples (the figures in the benchmark report come from these):
    # latency: 1-node and 64-node clusters one at a time, interleaved
    uv run python bench/provision.py --sizes 1,64 --clusters 5 --sequential --start-delay 1
    # throughput: 1,000 single-node clusters at once, pods running immediately
    uv run python bench/provision.py --sizes 1 --clusters 1000 --start-delay 0 [--workers 2]
    # one 16-node cluster whose pods run after 2 s: POST -> ready and requests by endpoint
    uv run python bench/provision.py --sizes 16 --clusters 1 --start-delay 2
    # a 64-node Instant Cluster next to 64 independent pods, one at a time, interleaved
    uv run python bench/provision.py --sizes 64 --network public,cluster --clusters 3 \
        --sequential --start-delay 1

With `--network` naming more than one network, each size runs once per network (an Instant
Cluster needs 2 nodes or more: smaller sizes run as pods only), and the figures of a size are
keyed `<size>` for `public` and `<size>-<network>` otherwise. For Instant Clusters it also
prints RunPod requests per Instant Cluster (one create, one delete, and the reads of its
members: one `get_cluster` per poll tick while they start, counted as the most in any
second).

Diagnosis: BENCH_PROFILE=<dir> samples every process with py-spy (if installed) into
collapsed stacks; BENCH_LOG_STATEMENTS=1 logs every SQL statement of the run's database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.dispatch import POLL_TICK_S  # noqa: E402
from bench.common import (  # noqa: E402
    CpuMeter,
    RssSampler,
    Stack,
    base_parser,
    duplicate_pods,
    load_average,
    machine_speed_ms,
    median,
    mib,
    node_of,
    percentile,
    plain_pg,
    report,
    require_services,
    rnd,
    run,
    settings_from,
    sim_pods,
)

DEFAULT_SETUP = 'echo "node $HANGAR_NODE_RANK of $HANGAR_NUM_NODES, head $HANGAR_HEAD_ADDR"'
TERMINAL = ("ready", "failed", "terminated")


def parse_args(argv: list[str] | None = None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1", help="nodes per cluster, comma separated (e.g. 1,64)")
    p.add_argument("--clusters", type=int, default=10, help="clusters per size")
    p.add_argument("--sequential", action="store_true",
                   help="one cluster at a time (latency); default: all at once (throughput)")
    p.add_argument("--start-delay", type=float, default=1.0, help="simulator pod start delay (s)")
    p.add_argument("--provision-delay", type=float, default=0.0,
                   help="simulator PROVISIONING time before the start delay (s)")
    p.add_argument("--setup", default=DEFAULT_SETUP, help="the clusters' setup script")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent POSTs/DELETEs")
    p.add_argument("--timeout", type=float, default=600, help="give up waiting after this (s)")
    p.add_argument("--gpu-type", default="4090")
    p.add_argument("--network", default="public",
                   help="comma separated: public, private, cluster (e.g. public,cluster)")
    args = p.parse_args(argv)
    args.networks = [n.strip() for n in args.network.split(",") if n.strip()]
    unknown = set(args.networks) - {"public", "private", "cluster"}
    if unknown or not args.networks:
        p.error(f"--network: unknown {sorted(unknown)}; use public, private, cluster")
    return args


def runs_of(sizes: list[int], networks: list[str]) -> list[tuple[int, str]]:
    """(size, network) pairs the run posts: an Instant Cluster needs at least 2 nodes."""
    return [(size, network) for size in sizes for network in networks
            if network != "cluster" or size >= 2]


def instant_figures(bench: Bench, ics: list[dict[str, Any]], counts: Counter,
                    reads_peak: int) -> dict[str, Any]:
    """RunPod's side of the run's Instant Clusters: how many were created per Hangar cluster,
    requests per Instant Cluster, reads per poll tick, and any left alive."""
    posted = [c for c, i in bench.posted.items() if i["network"] == "cluster"]
    if not posted:
        return {}
    per_hangar = Counter(ic["name"].split("-ic-", 1)[0] for ic in ics)
    endpoints = ("create_cluster", "delete_cluster", "get_cluster", "list_cluster_pods",
                 "list_clusters")
    return {
        "clusters": len(posted),
        "created": len(ics),
        "duplicates": sum(n - 1 for n in per_hangar.values()),
        "alive_after_teardown": sum(1 for ic in ics if ic["alive"]),
        "requests_per_instant_cluster": {
            ep: round(counts.get(ep, 0) / len(posted), 2) for ep in endpoints},
        "get_cluster_per_s_max": reads_peak,
    }


def key_of(size: int, network: str) -> str:
    return str(size) if network == "public" else f"{size}-{network}"


def setup_run_time(setup: str, env: dict[str, str]) -> float:
    """The setup's own run time: median of 5 local `bash -c` runs (what a simulated pod runs)."""
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(["bash", "-c", setup], env=env, capture_output=True, timeout=60)
        times.append(time.perf_counter() - t0)
    return median(times) or 0.0


def ts(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


class Bench:
    def __init__(self, args, stack: Stack, token: str) -> None:
        self.args = args
        self.stack = stack
        self.client = httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
            limits=httpx.Limits(max_connections=args.concurrency),
        )
        self.sim = httpx.AsyncClient(base_url=stack.sim_origin, timeout=60)
        self.posted: dict[str, dict[str, Any]] = {}  # cluster id -> {size, t_post}
        self.db: asyncpg.Connection | None = None

    async def close(self) -> None:
        await self.client.aclose()
        await self.sim.aclose()
        if self.db is not None:
            await self.db.close()

    async def counts(self) -> Counter:
        """Requests per endpoint at the simulator (without fetching the whole record)."""
        r = await self.sim.get("/_sim/requests", params={"endpoint": "-"})
        r.raise_for_status()
        return Counter(r.json()["counts"])

    async def list_pods_peak(self, window_s: float = 1.0) -> int:
        """The most `GET /pods` requests the simulator received within any `window_s`
        seconds (pages included): what polling costs at its busiest, however many nodes."""
        r = await self.sim.get("/_sim/requests", params={"endpoint": "list_pods"})
        r.raise_for_status()
        times = sorted(q["time"] for q in r.json()["requests"])
        peak, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= window_s:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    async def creates_per_node(self) -> dict[str, int]:
        """min/max `POST /pods` requests per node of independent pods (any answer), from the
        simulator's record (Instant Clusters' nodes are created by one create each)."""
        r = await self.sim.get("/_sim/requests", params={"endpoint": "create_pod"})
        r.raise_for_status()
        per = Counter((q["pod_name"] or "?").rsplit("-a", 1)[0] for q in r.json()["requests"])
        nodes = await self.db.fetchval(  # type: ignore[union-attr]
            "SELECT count(*) FROM nodes n JOIN clusters c ON c.id = n.cluster_id "
            "WHERE c.network <> 'cluster'")
        return {"min": min(per.values(), default=0) if len(per) == nodes else 0,
                "max": max(per.values(), default=0)}

    async def transactions(self) -> int:
        """Committed + rolled back transactions in the run's database so far (all clients)."""
        assert self.db is not None
        return int(await self.db.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"))

    async def post(self, size: int, i: int, network: str = "public") -> str:
        body = {"name": f"bench-{size}-{i}", "gpu_type": self.args.gpu_type, "nodes": size,
                "setup": self.args.setup, "network": network}
        t_post = time.time()
        r = await self.client.post("/clusters", json=body)
        if r.status_code != 202:
            raise RuntimeError(f"POST /clusters -> {r.status_code}: {r.text[:500]}")
        cid = r.json()["id"]
        self.posted[cid] = {"size": size, "network": network, "key": key_of(size, network),
                            "t_post": t_post}
        return cid

    async def cluster_reads_peak(self, window_s: float = 1.0) -> int:
        """The most `GET /clusters/{id}` one Instant Cluster got within any `window_s`
        seconds: the readiness poll's cost per cluster at its busiest (one poll per tick
        of POLL_TICK_S; a late one may overlap the next)."""
        r = await self.sim.get("/_sim/requests", params={"endpoint": "get_cluster"})
        r.raise_for_status()
        by: dict[str, list[float]] = defaultdict(list)
        for q in r.json()["requests"]:
            by[q["cluster_id"] or q["path"]].append(q["time"])
        peak = 0
        for times in by.values():
            times.sort()
            first = 0
            for last, t in enumerate(times):
                while t - times[first] >= window_s:
                    first += 1
                peak = max(peak, last - first + 1)
        return peak

    async def instant_clusters(self) -> list[dict[str, Any]]:
        """Every Instant Cluster the simulator created (deleted ones too)."""
        r = await self.sim.get("/_sim/clusters")
        r.raise_for_status()
        return r.json()["clusters"]

    async def statuses(self, ids: list[str] | None = None) -> dict[str, str]:
        assert self.db is not None
        if ids is None:
            rows = await self.db.fetch("SELECT id::text, status FROM clusters")
        else:
            rows = await self.db.fetch(
                "SELECT id::text, status FROM clusters WHERE id = ANY($1::uuid[])", ids)
        return {r["id"]: r["status"] for r in rows}

    async def wait_status(self, ids: list[str], done: tuple[str, ...], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = await self.statuses(ids)
            if all(st.get(i) in done for i in ids):
                return st
            if time.monotonic() > deadline:
                left = Counter(s for s in st.values() if s not in done)
                raise TimeoutError(f"not {'/'.join(done)} within {timeout:.0f}s: {dict(left)}")
            self.stack.check_alive()
            await asyncio.sleep(0.05 if len(ids) < 10 else 0.25)

    async def wait_torn_down(self, timeout: float) -> None:
        assert self.db is not None
        deadline = time.monotonic() + timeout
        while True:
            live = await self.db.fetchval(
                "SELECT count(*) FROM nodes WHERE status <> 'terminated'")
            open_clusters = await self.db.fetchval(
                "SELECT count(*) FROM clusters WHERE status NOT IN ('terminated', 'failed')")
            if live == 0 and open_clusters == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"teardown: {live} nodes, {open_clusters} clusters left")
            self.stack.check_alive()
            await asyncio.sleep(0.25)

    async def provision(self) -> dict[str, Any]:
        a = self.args
        sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
        runs = runs_of(sizes, a.networks)
        sem = asyncio.Semaphore(a.concurrency)

        async def post_one(size: int, i: int, network: str) -> str:
            async with sem:
                return await self.post(size, i, network)

        t0 = time.time()
        if a.sequential:
            # Interleave the sizes and networks so they see the same machine load.
            for i in range(a.clusters):
                for size, network in runs:
                    cid = await self.post(size, i, network)
                    await self.wait_status([cid], TERMINAL, a.timeout)
        else:
            ids = await asyncio.gather(*(post_one(size, i, network) for i in range(a.clusters)
                                         for size, network in runs))
            posted_s = time.time() - t0
            await self.wait_status(list(ids), TERMINAL, a.timeout)
            return {"post_all_s": posted_s}
        return {}

    async def teardown(self) -> float:
        sem = asyncio.Semaphore(self.args.concurrency)

        async def delete(cid: str) -> None:
            async with sem:
                r = await self.client.delete(f"/clusters/{cid}")
                if r.status_code not in (202, 404):
                    raise RuntimeError(f"DELETE -> {r.status_code}: {r.text[:300]}")

        t0 = time.time()
        await asyncio.gather(*(delete(c) for c in self.posted))
        await self.wait_torn_down(self.args.timeout)
        return time.time() - t0

    async def cluster_rows(self) -> dict[str, dict[str, Any]]:
        assert self.db is not None
        rows = await self.db.fetch(
            "SELECT id::text, status, reason, message, node_count, "
            "extract(epoch FROM ready_at) AS ready FROM clusters")
        return {r["id"]: dict(r) for r in rows}

    async def phases(self) -> dict[str, dict[str, list[float]]]:
        """Per-cluster phase durations (s) from the events and the simulator's pod record."""
        assert self.db is not None
        events = await self.db.fetch(
            "SELECT cluster_id::text AS cid, type, data->>'at' AS at, data->>'node' AS node "
            "FROM cluster_events WHERE type IN ('node.creating', 'node.starting', "
            "'node.bootstrapping', 'node.ready', 'cluster.ready') ORDER BY cluster_id, seq")
        by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for e in events:
            by[e["cid"]][e["type"]].append(ts(e["at"]) or 0.0)
        running: dict[str, list[float]] = defaultdict(list)  # cluster hex -> pod RUNNING times
        for p in await sim_pods(self.stack.sim_origin):
            if p.get("startedAt"):
                hexid = p["name"].split("-")[1]
                running[hexid].append(ts(p["startedAt"]) or 0.0)
        out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for cid, info in self.posted.items():
            ev = by.get(cid)
            if not ev or not ev.get("cluster.ready"):
                continue
            t_post = info["t_post"]
            ready = ev["cluster.ready"][0]
            started = running.get(cid.replace("-", ""), [])
            o = out[info["key"]]
            # POST -> first node creating (API, queue, worker pickup); first creating -> last
            # node starting (creates); last pod RUNNING -> last node seen running by the poll;
            # last node bootstrapping -> cluster ready (SSH: pin, start, output, exit code).
            o["post_to_first_create"].append(min(ev["node.creating"]) - t_post)
            o["creates"].append(max(ev["node.starting"]) - min(ev["node.creating"]))
            if started:
                o["poll_lag"].append(max(ev["node.bootstrapping"]) - max(started))
            o["bootstrap"].append(ready - max(ev["node.bootstrapping"]))
        return out


async def main_async(args) -> int:
    require_services(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    settings = settings_from(args)
    async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                     log_level=args.log_level, keep_logs=args.keep_logs,
                     settings=settings) as stack:
        _, token = await asyncio.gather(
            stack.start(start_delay=args.start_delay, workers=args.workers,
                        provision_delay=args.provision_delay),
            stack.token("bench"))
        setup_s = await asyncio.to_thread(
            setup_run_time, args.setup,
            {"HANGAR_NODE_RANK": "0", "HANGAR_NUM_NODES": "1", "HANGAR_HEAD_ADDR": "127.0.0.1",
             "PATH": "/usr/bin:/bin"})
        bench = Bench(args, stack, token)
        bench.db = await asyncpg.connect(plain_pg(stack.database_url))
        load_before = load_average()
        speed_ms = machine_speed_ms()
        procs = [*stack.workers, stack.api, stack.sim]
        try:
            with RssSampler([p for p in procs if p is not None]):
                meter = CpuMeter(procs, stack.database_name).start()
                xacts0 = await bench.transactions()
                before = await bench.counts()
                t_start = time.time()
                jobs0 = await stack.job_counts()
                extra = await bench.provision()
                provision_counts = await bench.counts() - before
                jobs = await stack.job_counts()
                jobs = {k: v - jobs0.get(k, 0) for k, v in jobs.items()}
                cpu_prov = meter.stop()
                await asyncio.sleep(1.1)  # backends report their statistics at most every 1 s
                xacts = await bench.transactions() - xacts0
                rss_ready = {p.name: mib(p.rss_kib()) for p in procs if p is not None}
                rows = await bench.cluster_rows()
                phases = await bench.phases()
                teardown_s = await bench.teardown()
                all_counts = await bench.counts() - before
            load_after = load_average()
            alive = await sim_pods(stack.sim_origin, alive=True)
            creates = await bench.creates_per_node()
            list_peak = await bench.list_pods_peak()
            every_pod = await sim_pods(stack.sim_origin)
            ics = await bench.instant_clusters()
            reads_peak = await bench.cluster_reads_peak()
        finally:
            await bench.close()
        peak = {p.name: mib(p.peak_rss_kib) for p in procs if p is not None}

    # --- figures -------------------------------------------------------------------------
    ready = {cid: r for cid, r in rows.items() if r["status"] == "ready"}
    failed = {cid: r for cid, r in rows.items() if r["status"] != "ready"}
    per_size: dict[str, Any] = {}
    for size, network in runs_of(sizes, args.networks):
        key = key_of(size, network)
        lat = [float(rows[c]["ready"]) - info["t_post"] for c, info in bench.posted.items()
               if info["key"] == key and c in ready]
        over = [x - args.start_delay - args.provision_delay - setup_s for x in lat]
        per_size[key] = {
            "nodes": size, "network": network,
            "clusters": sum(1 for i in bench.posted.values() if i["key"] == key),
            "ready": len(lat),
            "post_to_ready_p50_s": rnd(percentile(lat, 50)),
            "post_to_ready_p90_s": rnd(percentile(lat, 90)),
            "post_to_ready_max_s": rnd(max(lat) if lat else None),
            "overhead_p50_s": rnd(percentile(over, 50)),
            "overhead_p90_s": rnd(percentile(over, 90)),
            "phases_p50_s": {k: rnd(percentile(v, 50)) for k, v in phases[key].items()},
        }
    first = next(iter(per_size))  # the smallest size, on the first network
    smallest = per_size[first]["post_to_ready_p50_s"]
    for f in per_size.values():  # e.g. "a 64-node cluster ready within 2 s of a 1-node one"
        f["p50_gap_to_smallest_s"] = rnd(f["post_to_ready_p50_s"] - smallest) if (
            smallest is not None and f["post_to_ready_p50_s"] is not None) else None
    instant = instant_figures(bench, ics, all_counts, reads_peak)
    nodes = sum(r["node_count"] for r in rows.values())
    last_ready = max((float(r["ready"]) for r in ready.values()), default=None)
    wall = (last_ready - t_start) if last_ready else None
    per_node = {k: round(v / nodes, 3) for k, v in sorted(all_counts.items())} if nodes else {}
    dups = duplicate_pods(every_pod)
    pods_per_node = Counter(node_of(p) for p in every_pod)
    ssh = {"connections": sum(p.get("sshConnections", 0) for p in every_pod),
           "commands": sum(p.get("sshCommands", 0) for p in every_pod)}
    figures: dict[str, Any] = {
        "config": {"sizes": sizes, "clusters_per_size": args.clusters,
                   "sequential": args.sequential, "start_delay_s": args.start_delay,
                   "provision_delay_s": args.provision_delay, "workers": args.workers,
                   "setup": args.setup, "setup_run_s": rnd(setup_s, 4)},
        "load_average_before": load_before, "load_average_after": load_after,
        "machine_speed_ms": speed_ms,
        "clusters": len(rows), "nodes": nodes, "ready": len(ready),
        "failed": {cid: f"{r['reason']}: {r['message']}" for cid, r in failed.items()},
        "per_size": per_size,
        "ready_wall_s": rnd(wall), "clusters_per_s": rnd(len(ready) / wall if wall else None, 2),
        "teardown_s": rnd(teardown_s),
        "requests_provisioning": dict(sorted(provision_counts.items())),
        "requests_total": dict(sorted(all_counts.items())),
        "requests_per_node": per_node,
        "creates_per_node": creates,
        "list_pods_peak_per_s": list_peak,
        "pods_created": len(every_pod), "nodes_with_pods": len(pods_per_node),
        "ssh_per_node": {k: rnd(v / nodes if nodes else None, 2) for k, v in ssh.items()},
        "jobs_per_node_provisioning": {k: rnd(v / nodes if nodes else None, 2)
                                       for k, v in jobs.items() if v},
        "orphan_pods": len(alive), "duplicate_pods": len(dups),
        "db_transactions_per_node_provisioning": rnd(xacts / nodes if nodes else None, 1),
        "cpu_ms_per_node_provisioning": {
            k: round(v * 1000 / nodes, 1) for k, v in cpu_prov.items()
            if nodes and k not in ("machine_busy_pct", "steal_pct", "wall_s")},
        "peak_rss_mib": peak, "rss_at_ready_mib": rss_ready, "cpu_provisioning_s": cpu_prov,
        "instant_clusters": instant,
        **extra,
    }
    lines = [
        f"machine load average before {load_before}, after {load_after}; speed {speed_ms} ms "
        "(a fixed Python loop: lower is faster; the figures scale with it)",
        f"{len(rows)} clusters ({nodes} nodes), sizes {sizes}, "
        f"{'sequential' if args.sequential else 'all at once'}, start delay "
        f"{args.start_delay}s (+ provisioning {args.provision_delay}s), {args.workers} worker(s), "
        f"setup {args.setup!r} runs in {setup_s * 1000:.1f} ms",
        f"ready {len(ready)}, failed {len(failed)}"
        + "".join(f"\n  failed {c}: {r['reason']}: {r['message']}" for c, r in failed.items()),
    ]
    label = {k: f"{f['nodes']}-node {f['network']}" for k, f in per_size.items()}
    for key, f in per_size.items():
        lines.append(
            f"{label[key]}: POST->ready p50 {f['post_to_ready_p50_s']}s p90 "
            f"{f['post_to_ready_p90_s']}s max {f['post_to_ready_max_s']}s; control-plane "
            f"overhead p50 {f['overhead_p50_s']}s p90 {f['overhead_p90_s']}s; p50 "
            f"{f['p50_gap_to_smallest_s']}s after the {label[first]} one")
        lines.append("  phases p50 (s): " + ", ".join(
            f"{k} {v}" for k, v in f["phases_p50_s"].items()))
    if wall:
        lines.append(f"all ready {wall:.2f}s after the first POST: "
                     f"{figures['clusters_per_s']} clusters/s; teardown {teardown_s:.2f}s")
    lines.append("RunPod requests while provisioning: " + ", ".join(
        f"{k} {v}" for k, v in sorted(provision_counts.items())))
    lines.append("RunPod requests in total: " + ", ".join(
        f"{k} {v}" for k, v in sorted(all_counts.items())))
    lines.append("per node: " + ", ".join(f"{k} {v}" for k, v in per_node.items()))
    lines.append(f"list_pods at its busiest: {list_peak} in one second (the poll tick is "
                 f"{POLL_TICK_S} s)")
    lines.append("SSH per node (simulator's sshd): " + ", ".join(
        f"{k} {v}" for k, v in figures["ssh_per_node"].items()))
    lines.append("worker jobs per node while provisioning: " + ", ".join(
        f"{k} {v}" for k, v in figures["jobs_per_node_provisioning"].items()))
    lines.append(f"pods created {len(every_pod)} for {nodes} nodes; orphans {len(alive)}; "
                 f"nodes with duplicate pods {len(dups)}")
    if instant:
        lines.append(
            f"Instant Clusters: {instant['created']} created for {instant['clusters']} "
            f"clusters ({instant['duplicates']} duplicates), {instant['alive_after_teardown']} "
            "left after teardown; RunPod requests per Instant Cluster: " + ", ".join(
                f"{k} {v}" for k, v in instant["requests_per_instant_cluster"].items())
            + f"; get_cluster of one Instant Cluster at its busiest: "
            f"{instant['get_cluster_per_s_max']} in one second (the poll tick is "
            f"{POLL_TICK_S} s; each read also lists the members: GET /clusters/{{id}}/pods)")
    lines.append("peak RSS MiB: " + ", ".join(f"{k} {v}" for k, v in peak.items()))
    lines.append("CPU s while provisioning: " + ", ".join(f"{k} {v}" for k, v in
                                                        cpu_prov.items()))
    lines.append("CPU ms per node while provisioning: " + ", ".join(
        f"{k} {v}" for k, v in figures["cpu_ms_per_node_provisioning"].items())
        + f"; database transactions per node {figures['db_transactions_per_node_provisioning']}")
    targets: dict[str, bool] = {}
    if args.sequential and "1" in per_size and per_size["1"]["overhead_p50_s"] is not None:
        targets["1-node overhead p50 <= 1 s"] = per_size["1"]["overhead_p50_s"] <= 1.0
    if (args.sequential and "1" in per_size and "64" in per_size
            and per_size["64"]["p50_gap_to_smallest_s"] is not None):
        targets["64-node ready within 2 s of 1-node"] = per_size["64"]["p50_gap_to_smallest_s"] <= 2
    if sizes == [1] and len(rows) >= 1000 and not args.sequential and wall:
        targets[f"{len(rows)} clusters ready <= 60 s ({args.workers} worker(s))"] = wall <= 60
    if instant:
        per = instant["requests_per_instant_cluster"]
        targets["one create and one delete per Instant Cluster"] = (
            per["create_cluster"] == 1 and per["delete_cluster"] == 1)
        targets["one read per Instant Cluster per poll tick"] = (
            instant["get_cluster_per_s_max"] <= round(1 / POLL_TICK_S))
    figures["targets"] = targets
    lines += [f"target {k}: {'met' if v else 'NOT met'}" for k, v in targets.items()]
    report("provision", lines, figures, args.json)
    ok = not failed and not alive and not dups and not (
        instant and (instant["duplicates"] or instant["alive_after_teardown"]))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
