"""SSE fan-out benchmark: N subscribers on one API process follow one cluster while a
separate appender commits events at a steady rate.

Prints delivery latency (commit -> receipt by the client, p50/p99/max), events lost and
duplicated (both must be 0; the exit status says so), the API process's CPU and resident
memory, and the machine's load average (the figures are only as quiet as the machine).

    uv run python bench/sse.py                    # 1,000 subscribers, 20 events/s, 10 s
    uv run python bench/sse.py --subscribers 20 --seconds 2 --json

Setup (bench/common.py's Stack, all on loopback, all stopped at the end): a fresh database
on the DATABASE_URL server migrated with `hangar migrate`, one `hangar api` process, a
token from `hangar keys create --team bench`, and one cluster row inserted directly (its
node never gets a pod, so a delete finishes it at once). The subscribers are raw HTTP/1.1 clients in
`--client-procs` processes (so the clients are not the bottleneck); the events are
appended from this process with `locked_cluster` and the Dispatcher, the path workers
use, and each event's commit time is taken right after its commit. At the end the
cluster is deleted: every stream must end by itself after the terminal event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

SSE_REDIS_DB = 12  # not the other scripts' index: Stack flushes it, and they may be running


# --- the client processes ----------------------------------------------------------------


async def _follow(host: str, port: int, path: str, token: str, deadline: float,
                  connected: asyncio.Event, out: dict[str, Any]) -> None:
    """One SSE subscriber: raw HTTP/1.1, chunked body, records (seq, receipt time)."""
    seqs: list[int] = out["seqs"]
    times: list[float] = out["times"]
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        status = await reader.readuntil(b"\r\n")
        if b" 200 " not in status:
            raise RuntimeError(status.decode().strip())
        headers = (await reader.readuntil(b"\r\n\r\n")).lower()
        chunked = b"transfer-encoding: chunked" in headers
        buf = b""
        while time.time() < deadline:  # bounded in time; the server ends the stream
            if chunked:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    out["closed"] = True
                    return
                data = (await reader.readexactly(size + 2))[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    out["closed"] = True
                    return
            now = time.time()
            buf += data
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    if line.startswith(b"id: "):
                        seqs.append(int(line[4:]))
                        times.append(now)
                    elif line == b": connected":
                        connected.set()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _client_process(args: argparse.Namespace) -> None:
    """Holds `count` subscribers; prints {"connected": n} once all are registered, then
    {"results": [...]} once every stream has ended (or the deadline passed)."""
    token = os.environ["BENCH_TOKEN"]
    deadline = time.time() + args.timeout
    path = f"/clusters/{args.cluster}/events"
    results = [{"seqs": [], "times": [], "closed": False, "error": None}
               for _ in range(args.count)]
    flags = [asyncio.Event() for _ in range(args.count)]
    gate = asyncio.Semaphore(100)  # connect in waves, not one SYN flood

    async def one(i: int) -> None:
        try:
            async with gate:
                task = asyncio.create_task(
                    _follow(args.host, args.port, path, token, deadline, flags[i], results[i]))
                waiter = asyncio.create_task(flags[i].wait())  # registered at the server
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED,
                                   timeout=max(deadline - time.time(), 0.01))
                waiter.cancel()
            await asyncio.wait_for(task, max(deadline - time.time(), 0.01))
        except Exception as exc:
            results[i]["error"] = f"{type(exc).__name__}: {exc}"

    tasks = [asyncio.create_task(one(i)) for i in range(args.count)]
    for _ in range(int(args.timeout * 10)):
        if all(f.is_set() or r["error"] for f, r in zip(flags, results, strict=True)):
            break
        await asyncio.sleep(0.1)
    print(json.dumps({"connected": sum(f.is_set() for f in flags)}), flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps({"results": results}), flush=True)


def _client_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--client-process", action="store_true")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--timeout", type=float, required=True)
    asyncio.run(_client_process(p.parse_args(argv)))
    return 0


# --- the orchestrating process -----------------------------------------------------------


def _raise_open_files(wanted: int) -> int:
    """Each subscriber is a socket in the API and in a client process (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _peak_rss_kib(pid: int) -> int | None:
    """VmHWM: the most the process has ever had resident."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


async def _insert_cluster(sessionmaker, team: str) -> uuid.UUID:
    """One cluster row and its first event, as `create_cluster` writes them; its one node
    never gets a pod, so the delete at the end terminates the cluster at once."""
    from sqlalchemy import select

    from app.db.models import Cluster, Node, Team
    from app.services.state import ClusterTx, utcnow

    async with sessionmaker() as session, session.begin():
        team_id = await session.scalar(select(Team.id).where(Team.name == team))
        cluster = Cluster(
            id=uuid.uuid4(), team_id=team_id, name="sse-bench", status="pending",
            gpu_type="bench", gpu_type_id="bench", gpu_count=1, node_count=1,
            cloud_type="secure", allocation="on-demand", image="bench",
            container_disk_gb=1, volume_gb=0, volume_mount_path="/workspace",
            ports=["22/tcp"], env={}, data_center_ids=[], setup="", placements=[[]],
            ssh_public_key="bench", ssh_private_key_enc=b"bench", last_event_seq=0,
            created_at=utcnow(),
        )
        cluster.nodes = [Node(id=uuid.uuid4(), index=0, status="pending", gpu_count=1)]
        session.add(cluster)
        ClusterTx(session=session, cluster=cluster).event("cluster.pending", {"status": "pending"})
    return cluster.id


async def _stop_clients(clients: list[asyncio.subprocess.Process]) -> None:
    for proc in clients:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def main_async(args: argparse.Namespace) -> int:
    from arq import create_pool
    from arq.connections import RedisSettings

    from app.db.session import make_engine, make_sessionmaker
    from app.redis_names import RedisNames
    from app.services.dispatch import Dispatcher
    from app.services.state import locked_cluster
    from bench.common import (
        RssSampler,
        Stack,
        load_average,
        mib,
        percentile,
        report,
        require_services,
        rnd,
    )

    require_services(args)
    open_files = _raise_open_files(args.subscribers + 1024)
    settings = {"HANGAR_SSE_HEARTBEAT": str(args.heartbeat)}
    clients: list[asyncio.subprocess.Process] = []
    commit_at: dict[int, float] = {}
    async with Stack(args.database_url, args.redis_url, redis_db=args.redis_db,
                     log_level=args.log_level, keep_logs=args.keep_logs,
                     settings=settings) as stack:
        _, token = await asyncio.gather(stack.start_api(), stack.token("bench"))
        api = stack.api
        assert api is not None
        engine = make_engine(stack.database_url, pool_size=2, max_overflow=2)
        redis = await create_pool(RedisSettings.from_dsn(stack.redis_url))
        try:
            sessionmaker = make_sessionmaker(engine)
            cluster_id = await _insert_cluster(sessionmaker, "bench")
            rss_idle = api.rss_kib()

            # Subscribers, spread over client processes so one Python loop is not the limit.
            procs = args.client_procs or max(1, min(4, math.ceil(args.subscribers / 250)))
            sizes = [args.subscribers // procs + (i < args.subscribers % procs)
                     for i in range(procs)]
            budget = args.connect_timeout + args.seconds + args.drain_timeout + 10
            port = stack.api_url.rsplit(":", 1)[1]
            for n in sizes:
                clients.append(await asyncio.create_subprocess_exec(
                    sys.executable, str(SCRIPT), "--client-process",
                    "--count", str(n), "--port", port, "--cluster", str(cluster_id),
                    "--timeout", str(budget), env=dict(stack.env(), BENCH_TOKEN=token),
                    cwd=ROOT, limit=1 << 28, stdout=asyncio.subprocess.PIPE,
                ))
            connected = 0
            for proc in clients:
                line = await asyncio.wait_for(proc.stdout.readline(), args.connect_timeout)
                connected += json.loads(line or b'{"connected": 0}')["connected"]
            rss_connected = api.rss_kib()

            class TimingDispatcher(Dispatcher):
                committed = 1  # the newest event id so far (the insert's cluster.pending)

                async def after_commit(self, tx) -> None:
                    now = time.time()  # the commit has just returned
                    for seq in range(self.committed + 1, tx.last_seq + 1):
                        commit_at[seq] = now
                    self.committed = max(self.committed, tx.last_seq)
                    await super().after_commit(tx)

            dispatcher = TimingDispatcher(redis, RedisNames(stack.redis_namespace))
            total = max(1, round(args.rate * args.seconds))
            load_before = load_average()
            cpu_before = api.cpu()
            started = time.monotonic()
            with RssSampler([api]):
                for i in range(total):  # a steady rate: event i is due at i / rate
                    delay = started + i / args.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
                        tx.notice("bench", i=i)
                appended_s = time.monotonic() - started
                async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
                    tx.request_delete("deleted", "benchmark over")  # terminated at once
                    final_seq = tx.last_seq
                results: list[dict[str, Any]] = []
                for proc in clients:
                    line = await asyncio.wait_for(proc.stdout.readline(),
                                                  args.drain_timeout + 10)
                    results += json.loads(line or b'{"results": []}')["results"]
                    await asyncio.wait_for(proc.wait(), 10)
            drained_s = time.monotonic() - started
            api_cpu = api.cpu() - cpu_before
            load_after = load_average()
            rss_end, rss_hwm = api.rss_kib(), _peak_rss_kib(api.pid)
        finally:
            await _stop_clients(clients)
            await redis.aclose()
            await engine.dispose()

    # --- figures -------------------------------------------------------------------------
    expected = set(range(1, final_seq + 1))
    latencies: list[float] = []
    lost = duplicates = out_of_order = closed = errors = 0
    for r in results:
        seqs = r["seqs"]
        lost += len(expected - set(seqs))
        duplicates += len(seqs) - len(set(seqs))
        out_of_order += sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b <= a)
        closed += bool(r["closed"])
        errors += bool(r["error"])
        latencies += [(t - commit_at[s]) * 1000
                      for s, t in zip(seqs, r["times"], strict=True) if s in commit_at]
    lost += (args.subscribers - len(results)) * len(expected)  # a client process that died
    first_error = next((r["error"] for r in results if r["error"]), None)
    if args.dump:
        await asyncio.to_thread(Path(args.dump).write_text,
                                json.dumps({"commit_at": commit_at, "results": results}))

    figures: dict[str, Any] = {
        "config": {"subscribers": args.subscribers, "rate_per_s": args.rate,
                   "seconds": args.seconds, "heartbeat_s": args.heartbeat,
                   "client_processes": len(clients), "open_files_limit": open_files},
        "load_average_before": load_before, "load_average_after": load_after,
        "connected": connected,
        "events_appended": total,
        "append_rate_achieved": rnd(total / appended_s, 1),
        "deliveries": len(latencies),
        "latency_ms": {"p50": rnd(percentile(latencies, 50), 1),
                       "p99": rnd(percentile(latencies, 99), 1),
                       "max": rnd(max(latencies) if latencies else None, 1)},
        "lost": lost,
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "streams_closed_by_server": closed,
        "client_errors": errors,
        "first_client_error": first_error,
        "api_cpu_s": rnd(api_cpu, 1),
        "api_cpu_share_of_one_core": rnd(api_cpu / drained_s, 2),
        "api_rss_mib": {"idle": mib(rss_idle), "connected": mib(rss_connected),
                        "peak_during": mib(api.peak_rss_kib), "end": mib(rss_end),
                        "peak_ever": mib(rss_hwm)},
    }
    lat, rss = figures["latency_ms"], figures["api_rss_mib"]
    lines = [
        f"machine load average before {load_before}, after {load_after}",
        f"{connected}/{args.subscribers} subscribers connected to one API process "
        f"({len(clients)} client processes, open-file limit {open_files})",
        f"{total} events at {args.rate}/s for {args.seconds} s (achieved "
        f"{figures['append_rate_achieved']}/s), one per transaction; {len(latencies)} deliveries",
        f"latency commit -> client: p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
        f"max {lat['max']} ms",
        f"lost {lost}, duplicates {duplicates}, out of order {out_of_order}",
        f"streams ended by the server after the terminal event: {closed}; client errors "
        f"{errors}" + (f" (first: {first_error})" if first_error else ""),
        f"API CPU {figures['api_cpu_s']} s over {drained_s:.1f} s "
        f"({figures['api_cpu_share_of_one_core']} of one core)",
        f"API RSS MiB: idle {rss['idle']}, {connected} connected {rss['connected']}, "
        f"peak while streaming {rss['peak_during']}, end {rss['end']}",
    ]
    report("sse", lines, figures, args.json)
    return 0 if lost == 0 and duplicates == 0 and connected == args.subscribers else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench.common import base_parser

    p = base_parser(__doc__.split("\n\n")[0])
    p.set_defaults(redis_db=SSE_REDIS_DB, log_level="WARNING")
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=20.0, help="events appended per second")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to append")
    p.add_argument("--heartbeat", type=float, default=15.0, help="HANGAR_SSE_HEARTBEAT")
    p.add_argument("--client-procs", type=int, default=0,
                   help="client processes (default: one per 250 subscribers, at most 4)")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="how long the streams may take to end after the last event")
    p.add_argument("--dump", metavar="PATH", help="write every receipt time as JSON")
    args = p.parse_args(argv)
    if args.subscribers < 1 or args.rate <= 0 or args.seconds <= 0:
        p.error("--subscribers, --rate and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--client-process" in argv:  # the subscribers' processes: stdlib only, quick to start
        return _client_main(argv)
    from bench.common import run

    return run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
