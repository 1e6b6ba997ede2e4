"""Webhook delivery benchmark: commit -> delivery latency, deliveries per second and worker
CPU per delivery, then the same with one more endpoint that never answers.

    uv run python bench/webhooks.py                 # 100 clusters x 20 events, 20 events/s
    uv run python bench/webhooks.py --clusters 5 --events 6 --json

Setup (bench/common.py's Stack, all on loopback, all stopped at the end): a fresh database
migrated with `hangar migrate`, one `hangar worker` and one `hangar api` process
(HANGAR_WEBHOOK_ALLOW_PRIVATE=true: the receivers are on loopback), a token of team
`bench`, and a receiver process (this script with `--receiver-process`: a bare asyncio
HTTP/1.1 server, so it is not the bottleneck) serving 5 healthy endpoints that answer 204
at once and one dead endpoint that accepts connections and never answers.

After an unmeasured warm-up, `--rounds` rounds of two phases, each on clusters of its own (rows inserted directly, as bench/sse.py does;
their node never gets a pod): the webhooks are created through the API, then events are
appended from this process with `locked_cluster` and the Dispatcher, the path workers use,
round-robin over the clusters at `--rate` events per second (0: as fast as possible), one
per transaction; each event's commit time is taken right after its commit.

1. `healthy`: 5 endpoints, every event to each.
2. `with_dead`: the same 5 plus the dead one (its attempts time out after
   HANGAR_WEBHOOK_TIMEOUT, 10 s, and are retried along the schedule); deleted after it.

Figures: p50/p99/max commit -> receipt at the healthy endpoints, deliveries per second
(healthy deliveries / first commit to last receipt), the worker's CPU per healthy
delivery, lost/duplicated/out-of-order deliveries (must be 0), and the ratio of the
healthy endpoints' p99 with the dead endpoint to without it (target <= 1.2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

WEBHOOKS_REDIS_DB = 10  # not the other scripts' index: Stack flushes it
HEALTHY = 5


# --- the receiver process (stdlib only) -------------------------------------------------------


async def _receiver(args: argparse.Namespace) -> None:
    """Healthy endpoints /h0../h4 and a control API on one port, the dead endpoint on
    another. Records (path, webhook-id, receipt time) of every delivery."""
    records: list[tuple[str, str, float]] = []
    dead_connections = 0

    async def healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.time()
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                if method == "POST":
                    records.append((path, headers.get("webhook-id", ""), now))
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                else:
                    if path == "/_count":
                        body = json.dumps({"count": len(records), "dead": dead_connections})
                    else:
                        body = json.dumps({"records": records})
                    data = body.encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n"
                                 + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass  # cancelled: the receiver is stopping
        finally:
            writer.close()

    async def dead(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dead_connections
        dead_connections += 1
        with contextlib.suppress(Exception, asyncio.CancelledError):
            while await reader.read(65536):  # read everything, answer nothing
                pass
        writer.close()

    servers = [await asyncio.start_server(healthy, "127.0.0.1", 0, backlog=1024),
               await asyncio.start_server(dead, "127.0.0.1", 0, backlog=1024)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps({"healthy_port": ports[0], "dead_port": ports[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed


# --- the orchestrating process ----------------------------------------------------------------


async def _insert_cluster(sessionmaker, dispatcher, team_id: uuid.UUID, name: str,
                          commit_at: dict[tuple[str, int], float]) -> uuid.UUID:
    """A cluster row with its first event, announced as `create_cluster` announces it."""
    from app.db.models import Cluster, Node
    from app.services.state import ClusterTx, utcnow

    async with sessionmaker() as session, session.begin():
        cluster = Cluster(
            id=uuid.uuid4(), team_id=team_id, name=name, status="pending",
            gpu_type="bench", gpu_type_id="bench", gpu_count=1, node_count=1,
            cloud_type="secure", allocation="on-demand", image="bench",
            container_disk_gb=1, volume_gb=0, volume_mount_path="/workspace",
            ports=["22/tcp"], env={}, data_center_ids=[], setup="", placements=[[]],
            ssh_public_key="bench", ssh_private_key_enc=b"bench", last_event_seq=0,
            created_at=utcnow(),
        )
        cluster.nodes = [Node(id=uuid.uuid4(), index=0, status="pending", gpu_count=1)]
        session.add(cluster)
        ClusterTx(session=session, cluster=cluster).event("cluster.pending",
                                                          {"status": "pending"})
    commit_at[(str(cluster.id), 1)] = time.time()
    await dispatcher.published(cluster.id, 1)
    return cluster.id


async def _phase(name: str, args: argparse.Namespace, stack, api, sessionmaker, dispatcher,
                 team_id: uuid.UUID, hooks: list[str], receiver_url: str,
                 commit_at: dict[tuple[str, int], float]) -> dict[str, Any]:
    import httpx

    from app.services.state import locked_cluster
    from bench.common import CpuMeter, percentile, rnd

    worker = stack.workers[0]
    clusters: list[uuid.UUID] = []
    total_events = args.clusters * args.events
    expected = len(hooks) * total_events
    async with httpx.AsyncClient(base_url=receiver_url, timeout=30) as rc:
        before = (await rc.get("/_count")).json()["count"]
        meter = CpuMeter([worker, api], stack.database_name).start()
        started = time.monotonic()
        # Round-robin over the clusters: each is created (its first event), then gets one
        # event per round, one per transaction, at a steady rate.
        for i in range(total_events):
            if args.rate > 0:
                delay = started + i / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if i < args.clusters:
                clusters.append(await _insert_cluster(sessionmaker, dispatcher, team_id,
                                                      f"wh-{name}-{i}", commit_at))
                continue
            async with locked_cluster(sessionmaker, clusters[i % args.clusters],
                                      dispatcher) as tx:
                tx.notice("bench", i=i)
        appended_s = time.monotonic() - started
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            if (await rc.get("/_count")).json()["count"] - before >= expected:
                break
            stack.check_alive()
            await asyncio.sleep(0.1)
        cpu = meter.stop()
        records = (await rc.get("/_dump")).json()["records"]

    wanted = {f"/h{i}" for i in range(len(hooks))}
    mine = {str(c) for c in clusters}
    received: dict[tuple[str, str], list[int]] = {}
    lat: list[float] = []
    last_receipt = 0.0
    for path, msg_id, at in records:
        cid, _, seq = msg_id.partition(":")
        if path not in wanted or cid not in mine:
            continue
        received.setdefault((path, cid), []).append(int(seq))
        lat.append((at - commit_at[(cid, int(seq))]) * 1000)
        last_receipt = max(last_receipt, at)
    if args.dump:
        dump = json.dumps({"records": [r for r in records if r[1].partition(":")[0] in mine],
                           "commit_at": {f"{c}:{s}": t for (c, s), t in commit_at.items()
                                         if c in mine}})
        await asyncio.to_thread(Path(f"{args.dump}.{name}.json").write_text, dump)
    lost = duplicates = out_of_order = 0
    for path in wanted:
        for cid in mine:
            seqs = received.get((path, cid), [])
            lost += len(set(range(1, args.events + 1)) - set(seqs))
            duplicates += len(seqs) - len(set(seqs))
            out_of_order += sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b <= a)
    first_commit = min(commit_at[(c, 1)] for c in mine)
    span = max(last_receipt - first_commit, 1e-9)
    delivered = len(lat)
    return {
        "clusters": args.clusters, "events": total_events, "endpoints": len(hooks),
        "healthy_deliveries": delivered, "lost": lost, "duplicates": duplicates,
        "out_of_order": out_of_order,
        "append_rate_achieved": rnd(total_events / max(appended_s, 1e-9), 1),
        "latency_ms": {"p50": rnd(percentile(lat, 50), 1), "p90": rnd(percentile(lat, 90), 1),
                       "p99": rnd(percentile(lat, 99), 1),
                       "max": rnd(max(lat) if lat else None, 1)},
        "deliveries_per_s": rnd(delivered / span, 1),
        "worker_cpu_s": cpu.get("worker1"),
        "worker_cpu_ms_per_delivery": rnd(1000 * (cpu.get("worker1") or 0) / max(delivered, 1),
                                          3),
        "cpu_s": cpu,
    }


async def main_async(args: argparse.Namespace) -> int:
    import httpx
    from arq import create_pool
    from arq.connections import RedisSettings
    from sqlalchemy import select

    from app.db.models import Team
    from app.db.session import make_engine, make_sessionmaker
    from app.redis_names import RedisNames
    from app.services.dispatch import Dispatcher
    from bench.common import Stack, load_average, machine_speed_ms, report, require_services

    require_services(args)
    settings = {"HANGAR_WEBHOOK_ALLOW_PRIVATE": "true",
                "HANGAR_WEBHOOK_TIMEOUT": str(args.timeout)}
    commit_at: dict[tuple[str, int], float] = {}
    speed = machine_speed_ms()
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--receiver-process", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        ports = json.loads(await asyncio.wait_for(receiver.stdout.readline(), 30))
        receiver_url = f"http://127.0.0.1:{ports['healthy_port']}"
        async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                         log_level=args.log_level, keep_logs=args.keep_logs,
                         settings=settings) as stack:
            stack.start_worker()
            _, token = await asyncio.gather(stack.start_api(), stack.token("bench"))
            api = stack.api
            engine = make_engine(stack.database_url, pool_size=2, max_overflow=2)
            redis = await create_pool(RedisSettings.from_dsn(stack.redis_url))
            try:
                sessionmaker = make_sessionmaker(engine)
                async with sessionmaker() as session:
                    team_id = await session.scalar(select(Team.id).where(Team.name == "bench"))

                class TimingDispatcher(Dispatcher):
                    async def after_commit(self, tx) -> None:
                        commit_at[(str(tx.cluster.id), tx.last_seq)] = time.time()
                        await super().after_commit(tx)

                dispatcher = TimingDispatcher(redis, RedisNames(stack.redis_namespace))
                async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, headers={
                        "Authorization": f"Bearer {token}"}) as client:

                    async def hook(url: str) -> str:
                        r = await client.post("/webhooks", json={"url": url})
                        r.raise_for_status()
                        return r.json()["id"]

                    hooks = [await hook(f"{receiver_url}/h{i}") for i in range(HEALTHY)]
                    # Warm-up (not measured): the worker's runs, connections, caches.
                    warm = argparse.Namespace(**{**vars(args), "clusters": 10, "events": 5,
                                                 "dump": None})
                    await _phase("warmup", warm, stack, api, sessionmaker, dispatcher,
                                 team_id, hooks, receiver_url, commit_at)
                    load_before = load_average()
                    rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
                    dead_items: list[dict[str, Any]] = []
                    for r in range(args.rounds):
                        healthy = await _phase(f"healthy{r}", args, stack, api,
                                               sessionmaker, dispatcher, team_id, hooks,
                                               receiver_url, commit_at)
                        dead_id = await hook(f"http://127.0.0.1:{ports['dead_port']}/dead")
                        dead_before = (await client.get(f"{receiver_url}/_count")).json()["dead"]
                        with_dead = await _phase(f"with_dead{r}", args, stack, api,
                                                 sessionmaker, dispatcher, team_id, hooks,
                                                 receiver_url, commit_at)
                        # The healthy endpoints may be done before the dead one's first
                        # attempt connected: give it that attempt (not measured).
                        until = time.monotonic() + args.timeout + 10
                        while time.monotonic() < until:
                            if (await client.get(f"{receiver_url}/_count")).json()[
                                    "dead"] > dead_before:
                                break
                            await asyncio.sleep(0.1)
                        dead_items += (await client.get(f"/webhooks/{dead_id}/deliveries",
                                                        params={"limit": 200})).json()["items"]
                        await client.delete(f"/webhooks/{dead_id}")  # the next round: healthy
                        rounds.append((healthy, with_dead))
                    load_after = load_average()
                    dead_count = (await client.get(f"{receiver_url}/_count")).json()["dead"]
            finally:
                await redis.aclose()
                await engine.dispose()
    finally:
        if receiver.returncode is None:
            receiver.stdin.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(receiver.wait(), 5)
            if receiver.returncode is None:
                receiver.kill()
                await receiver.wait()

    from bench.common import median, rnd

    p99_a = median(h["latency_ms"]["p99"] for h, _ in rounds)
    p99_b = median(d["latency_ms"]["p99"] for _, d in rounds)
    ratio = round(p99_b / p99_a, 2) if p99_a and p99_b else None
    healthy, with_dead = rounds[-1]
    figures: dict[str, Any] = {
        "config": {"clusters": args.clusters, "events_per_cluster": args.events,
                   "rate_per_s": args.rate, "healthy_endpoints": HEALTHY,
                   "timeout_s": args.timeout, "rounds": args.rounds},
        "machine_speed_ms": speed, "load_average_before": load_before,
        "load_average_after": load_after,
        "healthy": healthy, "with_dead": with_dead,
        "rounds": [{"healthy": h, "with_dead": d} for h, d in rounds],
        "p99_ms_median": {"healthy": rnd(p99_a, 1), "with_dead": rnd(p99_b, 1)},
        "p99_ratio_with_dead": ratio,
        "dead_endpoint": {"connections": dead_count,
                          "attempts_recorded": len(dead_items),
                          "errors": sorted({i["error"] for i in dead_items if i["error"]})},
    }
    lines = [f"machine speed {speed} ms (lower is faster); load average before "
             f"{load_before}, after {load_after}"]
    for r, pair in enumerate(rounds):
        for name, f in zip(("healthy", "with_dead"), pair, strict=True):
            lat = f["latency_ms"]
            lines.append(
                f"round {r + 1} {name}: {f['clusters']} clusters x {args.events} events to "
                f"{f['endpoints']} healthy endpoints{' + 1 dead' if name == 'with_dead' else ''}"
                f": {f['healthy_deliveries']} deliveries; commit->delivery p50 {lat['p50']} ms, "
                f"p90 {lat['p90']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
                f"{f['deliveries_per_s']} deliveries/s (events appended at "
                f"{f['append_rate_achieved']}/s); worker CPU {f['worker_cpu_ms_per_delivery']} "
                f"ms per delivery; lost {f['lost']}, duplicates {f['duplicates']}, out of order "
                f"{f['out_of_order']}")
    lines.append(f"healthy p99 with the dead endpoint / without (medians over rounds): {ratio} "
                 f"(target <= 1.2); dead endpoint: {dead_count} connections, "
                 f"{len(dead_items)} attempts recorded {figures['dead_endpoint']['errors']}")
    report("webhooks", lines, figures, args.json)
    ok = all(f["lost"] == 0 and f["out_of_order"] == 0 for pair in rounds for f in pair)
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench.common import base_parser

    p = base_parser(__doc__.split("\n\n")[0])
    p.set_defaults(redis_db=WEBHOOKS_REDIS_DB, log_level="WARNING")
    p.add_argument("--clusters", type=int, default=100, help="clusters per phase")
    p.add_argument("--events", type=int, default=20, help="events per cluster")
    p.add_argument("--rate", type=float, default=20.0,
                   help="events appended per second (0: as fast as possible)")
    p.add_argument("--timeout", type=float, default=10.0, help="HANGAR_WEBHOOK_TIMEOUT")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat (healthy, with_dead); p99s are medians over the rounds")
    p.add_argument("--drain-timeout", type=float, default=120.0,
                   help="how long deliveries may take after the last event")
    p.add_argument("--dump", metavar="PREFIX",
                   help="write each phase's receipts and commit times to PREFIX.<phase>.json")
    args = p.parse_args(argv)
    if args.clusters < 1 or args.events < 2 or args.rate < 0 or args.rounds < 1:
        p.error("--clusters >= 1, --events >= 2, --rate >= 0, --rounds >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--receiver-process" in argv:
        asyncio.run(_receiver(argparse.Namespace()))
        return 0
    from bench.common import run

    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
