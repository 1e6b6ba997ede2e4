"""Chaos run: clusters provisioned and torn down while everything around them misbehaves.

50 clusters x 2 nodes (by default) through the RunPod simulator while:
- 20% of RunPod requests are answered 429 (with Retry-After) or 5xx (simulator fault rules
  with a probability: 10% 429, then 1/9 of the rest 503);
- 5% of successful creates lose their response (the pod exists, the client sees the
  connection drop);
- the worker is SIGKILLed and restarted every `--kill-every` seconds;
- the run's Redis database is flushed once (`--flush-at` seconds in): queued jobs are lost;
- one SSE client per cluster follows `GET /clusters/{id}/events` and drops its connection at
  random, resuming with `Last-Event-ID`.
- with `--embedded` (a Postgres and a Redis of the script's own, which it can stop), Redis
  and/or Postgres stop for `--outage-s` seconds (10) at `--redis-outage` / `--postgres-outage`
  seconds in: the processes stay up and the work resumes once they are back.
Pods start 20 s after their create (`--start-delay`), so the kills and the flush land while
nodes are being created, polled and bootstrapped, however fast the machine is.
Then every cluster is DELETEd and the script waits until all are `terminated`/torn down, and
for the orphan sweep. Prints clusters ready, failed (with reasons), orphaned pods at the
simulator, duplicate pods per node, events missing or duplicated at the SSE clients versus
the database, and the wall time, and the time from the first POST until every cluster is ready or failed
(`settle_s`): an outage's cost is its settle time minus that of a run without it.

Worker settings used (so killed work is retaken within the run): HANGAR_LEASE_SECONDS=10
(arq job timeout 5 s), HANGAR_BOOTSTRAP_STEP=3, HANGAR_RECONCILE_INTERVAL=2,
HANGAR_RECONCILE_GRACE=3, HANGAR_ORPHAN_GRACE=10, HANGAR_RUNPOD_BACKOFF_BASE=0.2,
HANGAR_RUNPOD_READ_TIMEOUT=5, HANGAR_RUNPOD_CALL_DEADLINE=2 (calls fit in the short jobs).

    uv run python bench/chaos.py [--clusters 50 --nodes 2 --kill-every 10]
    uv run python bench/chaos.py --embedded --redis-outage 15 --postgres-outage 35
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.outages import database_unavailable, redis_unavailable  # noqa: E402
from bench.common import (  # noqa: E402
    Stack,
    base_parser,
    duplicate_pods,
    flush_redis,
    load_average,
    machine_speed_ms,
    plain_pg,
    report,
    require_services,
    rnd,
    run,
    settings_from,
    sim_pods,
)

CHAOS_SETTINGS = {
    "HANGAR_LEASE_SECONDS": "10",
    "HANGAR_BOOTSTRAP_STEP": "3",
    "HANGAR_RECONCILE_INTERVAL": "2",
    "HANGAR_RECONCILE_GRACE": "3",
    "HANGAR_ORPHAN_GRACE": "10",
    "HANGAR_RUNPOD_BACKOFF_BASE": "0.2",
    "HANGAR_RUNPOD_READ_TIMEOUT": "5",
    "HANGAR_RUNPOD_CALL_DEADLINE": "2",
    "HANGAR_PROVISION_TIMEOUT": "180",
    "HANGAR_POLL_INTERVAL_MAX": "2",
}
SETUP = 'for i in 1 2 3; do echo "node $HANGAR_NODE_RANK line $i"; sleep 0.2; done'


def parse_args(argv: list[str] | None = None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=50)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--start-delay", type=float, default=20.0,
                   help="simulator pod start delay (s); the default keeps nodes in flight "
                        "across two worker kills and the Redis flush on any machine")
    p.add_argument("--error-rate", type=float, default=0.20, help="429/5xx share of requests")
    p.add_argument("--lost-create-rate", type=float, default=0.05)
    p.add_argument("--kill-every", type=float, default=10.0, help="SIGKILL the worker (s)")
    p.add_argument("--max-kills", type=int, default=-1, help="stop killing after this many "
                   "(-1: until everything is torn down)")
    p.add_argument("--flush-at", type=float, default=12.0,
                   help="flush the run's Redis db this many seconds in (<0: never)")
    p.add_argument("--sse-drop", type=float, nargs=2, default=(0.5, 5.0), metavar=("MIN", "MAX"),
                   help="an SSE client drops its connection after a random time in this range")
    p.add_argument("--embedded", action="store_true",
                   help="run against a Postgres and a Redis of the script's own (stoppable), "
                        "not DATABASE_URL / REDIS_URL")
    p.add_argument("--redis-outage", type=float, default=-1, metavar="AT",
                   help="stop Redis this many seconds in, for --outage-s (needs --embedded)")
    p.add_argument("--postgres-outage", type=float, default=-1, metavar="AT",
                   help="stop Postgres this many seconds in, for --outage-s (needs --embedded)")
    p.add_argument("--outage-s", type=float, default=10.0, help="length of each outage (s)")
    p.add_argument("--timeout", type=float, default=300, help="bound for each phase (s)")
    p.add_argument("--seed", type=int, default=None)
    return p.parse_args(argv)


# --- SSE clients ------------------------------------------------------------------------------


@dataclass
class SseClient:
    cluster_id: str
    ids: list[int] = field(default_factory=list)  # every event id received, in order
    types: dict[int, str] = field(default_factory=dict)
    connects: int = 0
    errors: Counter = field(default_factory=Counter)
    finished: bool = False

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0

    async def follow(self, client: httpx.AsyncClient, rng: random.Random,
                     drop: tuple[float, float], deadline: float) -> None:
        """Follow the stream to its end, dropping the connection at random and resuming."""
        quiet_ends = 0
        while time.monotonic() < deadline and not self.finished:
            headers = {"Accept": "text/event-stream"}
            if self.ids:
                headers["Last-Event-ID"] = str(self.last_id)
            self.connects += 1
            before = len(self.ids)
            try:
                async with asyncio.timeout(rng.uniform(*drop)):
                    ended = await self._read(client, headers)
            except TimeoutError:
                continue  # our own random drop: resume from the last id
            except (httpx.HTTPError, ValueError) as exc:
                self.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
                continue
            if ended:
                # The server closes the stream after the cluster's last event. A second clean
                # end with nothing new confirms it (rather than a connection that just broke).
                quiet_ends = quiet_ends + 1 if len(self.ids) == before else 1
                if quiet_ends >= 2 or self._terminal():
                    self.finished = True
            await asyncio.sleep(0.05)

    def _terminal(self) -> bool:
        return bool(self.ids) and self.types.get(self.last_id) in (
            "cluster.terminated", "cluster.torn_down")

    async def _read(self, client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
        """One connection. True when the server ended the stream."""
        async with client.stream("GET", f"/clusters/{self.cluster_id}/events",
                                 headers=headers) as resp:
            if resp.status_code == 204:
                # A finished stream with nothing after Last-Event-ID: the server's "stop
                # reconnecting" (DESIGN.md, the events route).
                self.finished = True
                return True
            if resp.status_code != 200:
                self.errors[f"http_{resp.status_code}"] += 1
                await asyncio.sleep(0.5)
                return False
            event: dict[str, str] = {}
            async for line in resp.aiter_lines():
                if line == "":
                    self._dispatch(event)
                    event = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data" and "data" in event:
                    event["data"] += "\n" + value
                else:
                    event[name] = value
            self._dispatch(event)
        return True

    def _dispatch(self, event: dict[str, str]) -> None:
        if "id" not in event or "data" not in event:
            return
        seq = int(event["id"])
        json.loads(event["data"])  # must be JSON
        self.ids.append(seq)
        self.types[seq] = event.get("event", "message")


# --- the run ----------------------------------------------------------------------------------


async def add_faults(sim: httpx.AsyncClient, error_rate: float, lost_rate: float) -> None:
    """Rules fire in order: 429 for half the error rate, then 5xx for the rest of it."""
    half = error_rate / 2
    rules: list[dict[str, Any]] = [
        {"kind": "rate_limit", "probability": half, "retry_after": 1},
        {"kind": "server_error", "status": 503, "probability": half / (1 - half)},
        {"kind": "lost_create", "probability": lost_rate, "mode": "drop"},
    ]
    for rule in rules:
        if rule["probability"] > 0:
            (await sim.post("/_sim/faults", json=rule)).raise_for_status()


class Outage:
    """One server stopped at `at` s into the run for `length` s."""

    def __init__(self, name: str, server: Any, at: float, length: float) -> None:
        self.name, self.server, self.at, self.length = name, server, at, length
        self.down_at: float | None = None  # seconds into the run
        self.up_at: float | None = None

    async def step(self, elapsed: float) -> None:
        if self.down_at is None and elapsed >= self.at:
            await asyncio.to_thread(self.server.stop)
            self.down_at = elapsed
        elif self.down_at is not None and self.up_at is None and \
                elapsed >= self.down_at + self.length:
            await asyncio.to_thread(self.server.start)
            self.up_at = elapsed

    def figures(self) -> dict[str, Any]:
        return {"server": self.name, "down_at_s": rnd(self.down_at, 1),
                "up_at_s": rnd(self.up_at, 1)}


async def chaos_loop(stack: Stack, args, stop: asyncio.Event, log: dict[str, Any],
                     outages: list[Outage] = ()) -> None:
    """SIGKILL + restart the worker every `kill_every` s; flush Redis once at `flush_at` s;
    stop and start the servers of `outages`."""
    t0 = time.monotonic()
    next_kill = t0 + args.kill_every
    flushed = args.flush_at < 0
    while not stop.is_set():
        now = time.monotonic()
        for outage in outages:
            await outage.step(now - t0)
        if not flushed and now - t0 >= args.flush_at:
            try:
                await flush_redis(stack.redis_url, stack.redis_namespace)
            except Exception as exc:  # Redis is down (an outage): flush once it is back
                if not redis_unavailable(exc):
                    raise
            else:
                log["redis_flushes"] += 1
                flushed = True
        can_kill = args.max_kills < 0 or log["worker_kills"] < args.max_kills
        if args.kill_every > 0 and now >= next_kill and can_kill:
            for w in stack.workers:
                await asyncio.to_thread(stack.restart_worker, w)
                log["worker_kills"] += 1
            next_kill = now + args.kill_every
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def wait_until(check, timeout: float, stack: Stack, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        for p in stack.procs:  # the worker is restarted by the chaos loop; others must live
            if p not in stack.workers and p.popen is not None and p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited: {p.tail()}")
        await asyncio.sleep(0.5)


class Rows:
    """The script's own reads of the run's database, riding out an outage (None meanwhile)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: asyncpg.Connection | None = None

    async def fetchval(self, sql: str) -> Any:
        try:
            if self.conn is None or self.conn.is_closed():
                self.conn = await asyncpg.connect(self.url)
            return await self.conn.fetchval(sql)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            self.conn = None
            return None

    async def fetch(self, sql: str) -> list[Any]:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.url)
        return await self.conn.fetch(sql)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def main_async(args) -> int:
    servers: list[Any] = []
    root: Path | None = None
    try:
        if args.embedded:
            root, servers = start_embedded(args)
        elif args.redis_outage >= 0 or args.postgres_outage >= 0:
            sys.exit("error: outages need --embedded (the script stops servers of its own)")
        return await run_chaos(args, servers)
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
        if root is not None and not args.keep_logs:
            shutil.rmtree(root, ignore_errors=True)


def start_embedded(args) -> tuple[Path, list[Any]]:
    """A Postgres and a Redis (append-only, as docker-compose runs it) under a temporary
    directory (returned; removed at the end unless --keep-logs); the run's URLs point at
    them."""
    import tempfile

    from app.embedded import StoppablePostgres, StoppableRedis

    root = Path(tempfile.mkdtemp(prefix="hangar-chaos-servers-"))
    postgres, redis = StoppablePostgres(root), StoppableRedis(root)
    args.database_url, args.redis_url = postgres.start(), redis.start()
    args.redis_db = 0
    return root, [postgres, redis]


async def run_chaos(args, servers: list[Any]) -> int:
    require_services(args)
    rng = random.Random(args.seed)
    settings = settings_from(args, CHAOS_SETTINGS)
    log: dict[str, Any] = {"worker_kills": 0, "redis_flushes": 0}
    async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                     log_level=args.log_level, keep_logs=args.keep_logs,
                     settings=settings) as stack:
        _, token = await asyncio.gather(stack.start(start_delay=args.start_delay, workers=1),
                                        stack.token("chaos"))
        db = Rows(plain_pg(stack.database_url))
        postgres = next((x for x in servers if type(x).__name__ == "StoppablePostgres"), None)
        redis = next((x for x in servers if type(x).__name__ == "StoppableRedis"), None)
        outages = [Outage(name, server, at, args.outage_s) for name, server, at in (
            ("redis", redis, args.redis_outage), ("postgres", postgres, args.postgres_outage))
            if at >= 0 and server is not None]
        api = httpx.AsyncClient(base_url=stack.api_url, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
        sse_http = httpx.AsyncClient(base_url=stack.api_url, headers=api.headers,
                                     timeout=httpx.Timeout(30, read=60),
                                     limits=httpx.Limits(max_connections=args.clusters + 10))
        sim = httpx.AsyncClient(base_url=stack.sim_origin, timeout=60)
        stop = asyncio.Event()
        chaos_task: asyncio.Task | None = None
        sse_tasks: list[asyncio.Task] = []
        load_before = load_average()
        try:
            await add_faults(sim, args.error_rate, args.lost_create_rate)
            t0 = time.time()
            chaos_task = asyncio.create_task(chaos_loop(stack, args, stop, log, outages))
            ids: list[str] = []
            post_retries = 0
            for i in range(args.clusters):  # a POST can meet a fault through the catalog read
                for _attempt in range(300):  # or an outage (503): retried for a while
                    r = await api.post("/clusters", json={
                        "name": f"chaos-{i}", "gpu_type": "4090", "nodes": args.nodes,
                        "setup": SETUP}, headers={"Idempotency-Key": f"chaos-{i}"})
                    if r.status_code == 202 or r.status_code == 200:
                        ids.append(r.json()["id"])
                        break
                    post_retries += 1  # e.g. 503 while the catalog read meets a fault
                    await asyncio.sleep(0.5)
                else:
                    raise RuntimeError(f"POST /clusters kept failing: {r.status_code} {r.text}")
            clients = [SseClient(cid) for cid in ids]
            sse_deadline = time.monotonic() + 3 * args.timeout
            sse_tasks = [asyncio.create_task(c.follow(sse_http, rng, tuple(args.sse_drop),
                                                      sse_deadline)) for c in clients]

            async def settled() -> bool:
                n = await db.fetchval("SELECT count(*) FROM clusters WHERE status NOT IN "
                                      "('ready', 'failed', 'terminated')")
                return n == 0 and all(o.up_at is not None or o.down_at is None
                                      for o in outages)

            await wait_until(settled, args.timeout, stack, "every cluster ready or failed")
            t_settled = time.time()
            ready_ids = {r["cluster_id"] for r in await db.fetch(
                "SELECT DISTINCT cluster_id::text FROM cluster_events WHERE type = 'cluster.ready'")}
            for cid in ids:
                for _attempt in range(20):
                    r = await api.delete(f"/clusters/{cid}")
                    if r.status_code in (202, 404):
                        break
                    await asyncio.sleep(0.5)

            async def torn_down() -> bool:
                live = await db.fetchval("SELECT count(*) FROM nodes WHERE status <> 'terminated'")
                open_ = await db.fetchval("SELECT count(*) FROM clusters WHERE status NOT IN "
                                          "('terminated', 'failed')")
                return live == 0 and open_ == 0 and all(
                    o.up_at is not None or o.down_at is None for o in outages)

            await wait_until(torn_down, args.timeout, stack, "every cluster torn down")
            t_torn = time.time()
            stop.set()
            await chaos_task
            alive_after_teardown = len(await sim_pods(stack.sim_origin, alive=True))

            async def swept() -> bool:
                return not await sim_pods(stack.sim_origin, alive=True)

            # Pods of lost attempts nobody adopted are the orphan sweep's (every 30 s, once
            # older than HANGAR_ORPHAN_GRACE): give it one round.
            with contextlib.suppress(TimeoutError):
                await wait_until(swept, 45, stack, "orphan sweep")
            t_end = time.time()
            await asyncio.wait(sse_tasks, timeout=60)
            alive = await sim_pods(stack.sim_origin, alive=True)
            every_pod = await sim_pods(stack.sim_origin)
            faults = (await sim.get("/_sim/faults")).json()["faults"]
            counts = (await sim.get("/_sim/requests", params={"endpoint": "-"})).json()
            rows = await db.fetch("SELECT id::text, status, reason, message, last_event_seq "
                                  "FROM clusters")
            db_events = await db.fetch("SELECT cluster_id::text AS cid, seq FROM cluster_events")
        finally:
            stop.set()
            if chaos_task is not None and not chaos_task.done():
                chaos_task.cancel()
                with contextlib.suppress(BaseException):
                    await chaos_task
            for t in sse_tasks:
                t.cancel()
            await asyncio.gather(*sse_tasks, return_exceptions=True)
            for c in (api, sse_http, sim):
                await c.aclose()
            await db.close()
            for outage in outages:  # the run ended early: leave nothing stopped
                if outage.down_at is not None and outage.up_at is None:
                    await asyncio.to_thread(outage.server.start)
    load_after = load_average()
    speed = machine_speed_ms()

    # --- figures ---------------------------------------------------------------------------
    in_db: dict[str, set[int]] = {}
    for e in db_events:
        in_db.setdefault(e["cid"], set()).add(e["seq"])
    missing = duplicated = unfinished = 0
    for c in clients:
        got = Counter(c.ids)
        missing += len(in_db.get(c.cluster_id, set()) - set(got))
        duplicated += sum(n - 1 for n in got.values() if n > 1)
        unfinished += not c.finished
    failed = {r["id"]: f"{r['reason']}: {r['message']}" for r in rows
              if r["id"] not in ready_ids}
    fired = {f"{f['kind']}" + (f":{f.get('status')}" if f["kind"] == "server_error" else ""):
             f["fired"] for f in faults}
    dups = duplicate_pods(every_pod)
    figures = {
        "config": {"clusters": args.clusters, "nodes": args.nodes, "error_rate": args.error_rate,
                   "lost_create_rate": args.lost_create_rate, "kill_every_s": args.kill_every,
                   "flush_at_s": args.flush_at, "max_kills": args.max_kills,
                   "start_delay_s": args.start_delay,
                   "settings": settings, "sse_drop_s": list(args.sse_drop)},
        "load_average_before": load_before, "load_average_after": load_after,
        "clusters": len(rows), "ready": len(ready_ids), "failed": failed,
        "worker_kills": log["worker_kills"], "redis_flushes": log["redis_flushes"],
        "faults_fired": fired, "post_retries": post_retries,
        "requests": counts["counts"], "requests_total": counts["total"],
        "pods_created": len(every_pod), "alive_after_teardown": alive_after_teardown,
        "orphan_pods": len(alive), "orphan_pod_names": [p["name"] for p in alive][:20],
        "duplicate_pods": len(dups), "duplicate_pod_nodes": dups,
        "sse_clients": len(clients), "sse_connects": sum(c.connects for c in clients),
        "sse_unfinished": unfinished,
        "sse_errors": dict(sum((c.errors for c in clients), Counter())),
        "events_in_db": sum(len(v) for v in in_db.values()),
        "events_received": sum(len(c.ids) for c in clients),
        "events_missing": missing, "events_duplicated": duplicated,
        "settle_s": rnd(t_settled - t0, 1), "teardown_s": rnd(t_torn - t_settled, 1),
        "wall_s": rnd(t_end - t0, 1),
        "outages": [o.figures() for o in outages], "embedded": args.embedded,
        "machine_speed_ms": speed,
    }
    down = "; ".join(f"{o.name} down {o.down_at:.1f}-{o.up_at:.1f} s" for o in outages
                     if o.down_at is not None and o.up_at is not None) or "none"
    lines = [
        f"machine speed {speed} ms (lower is faster); load average before {load_before}, "
        f"after {load_after}",
        f"outages: {down}",
        f"{len(rows)} clusters x {args.nodes} nodes; worker SIGKILLed {log['worker_kills']} "
        f"times, Redis db flushed {log['redis_flushes']} time(s); faults fired {fired}",
        f"ready {len(ready_ids)}, failed {len(failed)}"
        + "".join(f"\n  failed {cid}: {why}" for cid, why in failed.items()),
        f"pods created {len(every_pod)}; alive right after teardown {alive_after_teardown}; "
        f"orphaned pods {len(alive)}; nodes with duplicate pods {len(dups)}",
        f"SSE: {len(clients)} clients, {figures['sse_connects']} connections, "
        f"{figures['events_received']} events received of {figures['events_in_db']} in the "
        f"database; missing {missing}, duplicated {duplicated}, unfinished streams {unfinished}",
        f"RunPod requests {counts['total']}: {counts['counts']}",
        f"wall time {figures['wall_s']}s (settled {figures['settle_s']}s, teardown "
        f"{figures['teardown_s']}s)",
    ]
    report("chaos", lines, figures, args.json)
    ok = not alive and not dups and not missing and not duplicated and not unfinished
    ok = ok and all(o.up_at is not None for o in outages if o.down_at is not None)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
