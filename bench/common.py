"""Shared helpers for the benchmark scripts: a fresh database, a Redis db index of our own,
the Hangar processes (simulator, workers, API) started on loopback and always stopped,
an API token, readiness waits, RSS from /proc, percentiles and the text/JSON report.

Every process a script starts goes through `Stack`, which stops all of them (SIGTERM, then
SIGKILL) when the script ends, on error or on Ctrl-C, and asks the kernel to SIGTERM them
if the script itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from app.redis_names import RedisNames, forget_all

ROOT = Path(__file__).resolve().parent.parent
SIM_KEY = "sim-key"
DEFAULT_REDIS_DB = 11  # the benchmark scripts' own index: flushed at start and end


# --- command line and environment ------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    """Options every script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                   help="Postgres server to create a fresh database on (default: $DATABASE_URL)")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                   help="Redis server (default: $REDIS_URL); only --redis-db is used and flushed")
    p.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB,
                   help=f"Redis database index of this run, flushed (default {DEFAULT_REDIS_DB})")
    p.add_argument("--log-level", default="INFO", help="HANGAR_LOG_LEVEL of the processes")
    p.add_argument("--keep-logs", action="store_true", help="keep the run directory (logs)")
    p.add_argument("--set", action="append", default=[], metavar="HANGAR_X=VALUE",
                   help="a setting for the Hangar processes (repeatable)")
    return p


def settings_from(args: argparse.Namespace, base: Mapping[str, str] | None = None) -> dict:
    """The script's own settings, overridden by --set KEY=VALUE."""
    out = dict(base or {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"error: --set expects KEY=VALUE, not {item!r}")
        out[key] = value
    return out


def require_services(args: argparse.Namespace) -> None:
    missing = [name for name, value in (("DATABASE_URL", args.database_url),
                                        ("REDIS_URL", args.redis_url)) if not value]
    if missing:
        sys.exit(f"error: {' and '.join(missing)} must be set (or pass --database-url / "
                 "--redis-url): the benchmarks run against a real Postgres and Redis")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_db_url(url: str, index: int) -> str:
    """The same server with our own database index."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{index}"))


def plain_pg(url: str) -> str:
    """A `postgresql://` URL asyncpg accepts (drops a `+asyncpg` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str, prefix: str = "hangar_bench") -> tuple[str, str]:
    """A new empty database on the server: (its URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(plain_pg(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        if os.environ.get("BENCH_LOG_STATEMENTS"):  # diagnosis: every statement in the PG log
            await conn.execute(f'ALTER DATABASE "{name}" SET log_statement = \'all\'')
    finally:
        await conn.close()
    return make_url(plain_pg(server_url)).set(database=name).render_as_string(
        hide_password=False), name


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_pg(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def flush_redis(url: str, namespace: str) -> None:
    """Forget every job and key of the stack's Redis namespace (its FLUSHDB: other runs
    sharing the server, and their namespaces, are left alone)."""
    await forget_all(url, RedisNames(namespace))


# --- processes ----------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process from /proc (KiB), None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int, children: bool = False) -> float | None:
    """User + system CPU time of a process so far (seconds); with `children`, that of its
    children it has waited for instead (the simulator's `bash -c` per SSH exec)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def cpu_of_processes(matches: Callable[[bytes], bool]) -> float:
    """CPU seconds so far of the machine's processes whose command line (NUL-separated, as
    in /proc/<pid>/cmdline) `matches`."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if matches(cmdline):
            total += cpu_seconds(int(name)) or 0.0
    return total


def redis_cpu() -> float:
    """CPU seconds of the machine's redis-server processes so far (the run's Redis is one)."""
    return cpu_of_processes(lambda cmd: cmd.split(b"\0")[0].endswith(b"redis-server")
                            or cmd.startswith(b"redis-server"))


def own_cpu() -> float:
    """CPU seconds of this script (the load generator: POSTs, status reads), all threads."""
    t = os.times()
    return t.user + t.system


def machine_cpu() -> tuple[float, float, float]:
    """(busy, total, stolen) CPU seconds of the whole machine since boot, from /proc/stat.
    Stolen: time the hypervisor ran someone else while this machine wanted a core."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    fields = fields[:8]  # guest time is already in user time
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields) - idle - steal) / tick, sum(fields) / tick, steal / tick


def postgres_cpu(database: str) -> float:
    """CPU seconds of the Postgres backends connected to `database` (their process titles
    name it), so far. Backends that have exited are not counted."""
    needle = f" {database} ".encode()
    return cpu_of_processes(lambda cmd: cmd.startswith(b"postgres:") and needle in cmd)


class CpuMeter:
    """CPU used between `start()` and `stop()`: each process, Postgres backends of the run's
    database, and the machine as a whole (busy share of both cores, everyone's work)."""

    def __init__(self, procs: Iterable[Proc], database: str) -> None:
        self.procs = [p for p in procs if p is not None]
        self.database = database

    def start(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.p0 = {p.name: p.cpu() for p in self.procs}
        self.c0 = {p.name: p.children_cpu() for p in self.procs}
        self.pg0 = postgres_cpu(self.database)
        self.r0, self.b0 = redis_cpu(), own_cpu()
        self.m0 = machine_cpu()
        return self

    def stop(self) -> dict[str, Any]:
        """Seconds per process; `<name>_children` is what its reaped children used, `other`
        is the rest of the machine's busy time (kernel work not charged to a process, py-spy,
        anything else running)."""
        busy, total, steal = machine_cpu()
        out: dict[str, Any] = {p.name: round(p.cpu() - self.p0[p.name], 2) for p in self.procs}
        for p in self.procs:
            kids = p.children_cpu() - self.c0[p.name]
            if kids >= 0.01:
                out[f"{p.name}_children"] = round(kids, 2)
        out["postgres"] = round(postgres_cpu(self.database) - self.pg0, 2)
        out["redis"] = round(redis_cpu() - self.r0, 2)
        out["bench_client"] = round(own_cpu() - self.b0, 2)
        out["other"] = round(max(busy - self.m0[0] - sum(out.values()), 0.0), 2)
        span = max(total - self.m0[1], 1e-9)
        out["machine_busy_pct"] = round(100 * (busy - self.m0[0]) / span, 1)
        out["steal_pct"] = round(100 * (steal - self.m0[2]) / span, 1)
        out["wall_s"] = round(time.monotonic() - self.t0, 2)
        return out


@dataclass
class Proc:
    """One child process with its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None
    peak_rss_kib: int = 0
    cpu_before: float = 0.0  # CPU of earlier incarnations (restarts)
    metrics_port: int | None = None  # workers: HANGAR_WORKER_METRICS_PORT

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, start_new_session=True,
        )
        log.close()  # the child has its own descriptor
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def sample(self) -> None:
        if self.alive():
            self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(self.pid) or 0)

    def rss_kib(self) -> int | None:
        return rss_kib(self.pid) if self.alive() else None

    def cpu(self) -> float:
        now = cpu_seconds(self.pid) if self.alive() else None
        return self.cpu_before + (now or 0.0)

    def children_cpu(self) -> float:
        return (cpu_seconds(self.pid, children=True) or 0.0) if self.alive() else 0.0

    def kill(self) -> None:
        """SIGKILL (chaos): no cleanup at all."""
        if self.alive():
            self.cpu_before += cpu_seconds(self.pid) or 0.0
            self.popen.kill()  # type: ignore[union-attr]
            self.popen.wait(10)  # type: ignore[union-attr]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.cpu_before += cpu_seconds(self.pid) or 0.0
        with contextlib.suppress(ProcessLookupError):
            self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            self.popen.wait(5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RssSampler:
    """Samples the RSS of processes in a thread (peak per process)."""

    def __init__(self, procs: Iterable[Proc], interval: float = 0.25) -> None:
        self.procs = list(procs)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for p in list(self.procs):
                p.sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Stack:
    """Hangar on loopback: a fresh database, a Redis db index, the simulator, N workers, the
    API. Use `async with Stack(...) as stack:`; everything is stopped and dropped on exit."""

    database_server: str
    redis_server: str
    redis_db: int = DEFAULT_REDIS_DB
    log_level: str = "INFO"
    keep_logs: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)  # extra HANGAR_* settings
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hangar-bench-")))
    procs: list[Proc] = field(default_factory=list)
    profilers: list[subprocess.Popen] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    api: Proc | None = None
    sim: Proc | None = None
    database_url: str = ""
    database_name: str = ""
    redis_url: str = ""
    # HANGAR_REDIS_NAMESPACE of the stack: its own queue, job ids and channels.
    redis_namespace: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    sim_url: str = ""
    api_url: str = ""

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Stack:
        self._prev_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.database_url, self.database_name = await create_database(self.database_server)
            self.redis_url = redis_db_url(self.redis_server, self.redis_db)
            await flush_redis(self.redis_url, self.redis_namespace)
            await asyncio.to_thread(self._run_cli, ["migrate"])
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every process (API first, simulator last), drop the database, flush Redis."""
        order = [p for p in self.procs if p is self.api]
        order += [p for p in self.procs if p in self.workers]
        order += [p for p in self.procs if p not in order]
        for spy in self.profilers:  # py-spy writes its output on SIGINT
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
        for spy in self.profilers:
            try:
                await asyncio.to_thread(spy.wait, 30)
            except subprocess.TimeoutExpired:
                spy.kill()
        for p in order:
            await asyncio.to_thread(p.stop)
        with contextlib.suppress(Exception):
            if self.database_name:
                await drop_database(self.database_server, self.database_name)
        with contextlib.suppress(Exception):
            if self.redis_url:
                await flush_redis(self.redis_url, self.redis_namespace)
        if not self.keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        with contextlib.suppress(Exception):
            signal.signal(signal.SIGTERM, self._prev_sigterm)

    # --- environment ---------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HANGAR_", "RUNPOD_", "DATABASE_URL", "REDIS_URL"))}
        env.update({
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "HANGAR_REDIS_NAMESPACE": self.redis_namespace,
            "RUNPOD_API_KEY": SIM_KEY,
            "RUNPOD_API_URL": self.sim_url or "http://127.0.0.1:9/v2",
            "HANGAR_SECRET_KEY": _secret_key(),
            "HANGAR_LOG_LEVEL": self.log_level,
            "HANGAR_DATA_DIR": str(self.run_dir / "data"),
            # The benchmark's team asks for far more than the defaults allow.
            "HANGAR_MAX_LIVE_NODES": "100000",
            "HANGAR_MAX_LIVE_CLUSTERS": "100000",
            "HANGAR_MAX_HOURLY_SPEND": "100000000",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.settings)
        return env

    def _run_cli(self, args: list[str], timeout: float = 120) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "app.cli", *args], env=self.env(), cwd=ROOT,
            capture_output=True, text=True, timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"hangar {' '.join(args)} failed ({out.returncode}):\n"
                               f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return out.stdout

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Proc:
        proc = Proc(name, [sys.executable, "-m", "app.cli", *args], {**self.env(), **(env or {})},
                    self.run_dir / f"{name}.log")
        self.procs.append(proc.start())
        self._profile(proc)
        return proc

    def _profile(self, proc: Proc) -> None:
        """With BENCH_PROFILE=<dir> (and py-spy installed), sample the process with py-spy into
        <dir>/<name>-<pid>.txt (collapsed stacks) until it or the script ends."""
        out_dir = os.environ.get("BENCH_PROFILE")
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not out_dir or not Path(spy).exists():
            return
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        argv = [spy, "record", "--pid", str(proc.pid), "--rate", "100", "--nonblocking", *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else []),
                "--format", "raw", "-o", str(Path(out_dir) / f"{proc.name}-{proc.pid}.txt")]
        self.profilers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL,
                                               preexec_fn=_die_with_parent))

    # --- services ------------------------------------------------------------------------

    def spawn_simulator(self, start_delay: float) -> str:
        """Start the simulator process (not waiting for it); returns its origin URL."""
        port = free_port()
        self.sim = self._spawn("simulator", ["simulator", "--port", str(port),
                                             "--start-delay", str(start_delay)])
        origin = f"http://127.0.0.1:{port}"
        self.sim_url = f"{origin}/v2"
        return origin

    async def start_simulator(self, start_delay: float, provision_delay: float = 0.0) -> str:
        origin = self.sim_origin if self.sim is not None else self.spawn_simulator(start_delay)
        assert self.sim is not None
        await wait_http(f"{origin}/_sim/health", [self.sim], timeout=30)
        async with httpx.AsyncClient(base_url=origin, timeout=10) as c:
            r = await c.patch("/_sim/config", json={"provision_delay": provision_delay,
                                                    "start_delay": start_delay})
            r.raise_for_status()
        return origin

    @property
    def sim_origin(self) -> str:
        return self.sim_url.removesuffix("/v2")

    def start_worker(self) -> Proc:
        """A worker process serving its metrics (job counts) on a port of its own."""
        port = free_port()
        proc = self._spawn(f"worker{len(self.workers) + 1}", ["worker"],
                           {"HANGAR_WORKER_METRICS_PORT": str(port)})
        proc.metrics_port = port
        self.workers.append(proc)
        return proc

    async def job_counts(self) -> dict[str, int]:
        """Jobs run so far by job name, summed over the live workers (from their metrics;
        a restarted worker starts counting again)."""
        counts: dict[str, int] = {}
        async with httpx.AsyncClient(timeout=10) as c:
            for w in self.workers:
                if not w.alive() or w.metrics_port is None:
                    continue
                try:
                    text = (await c.get(f"http://127.0.0.1:{w.metrics_port}/metrics")).text
                except httpx.HTTPError:
                    continue
                for line in text.splitlines():
                    if line.startswith("hangar_job_duration_seconds_count{"):
                        labels, _, value = line.rpartition(" ")
                        job = labels.split('job="', 1)[1].split('"', 1)[0]
                        counts[job] = counts.get(job, 0) + int(float(value))
        return dict(sorted(counts.items()))

    def restart_worker(self, proc: Proc) -> None:
        """SIGKILL a worker and start it again (same log file)."""
        proc.kill()
        proc.env = {**self.env(), **({"HANGAR_WORKER_METRICS_PORT": str(proc.metrics_port)}
                                     if proc.metrics_port else {})}
        proc.start()
        self._profile(proc)

    async def start_api(self) -> str:
        if self.api is None:
            port = free_port()
            self.api = self._spawn("api", ["api", "--port", str(port)])
            self.api_url = f"http://127.0.0.1:{port}"
        await wait_http(f"{self.api_url}/readyz", [self.api], timeout=60)
        return self.api_url

    async def start(self, *, start_delay: float, workers: int = 1,
                    provision_delay: float = 0.0) -> None:
        """Simulator, workers and the API, started together; returns once the simulator
        (configured) and the API answer."""
        self.spawn_simulator(start_delay)
        for _ in range(workers):
            self.start_worker()
        port = free_port()
        self.api = self._spawn("api", ["api", "--port", str(port)])
        self.api_url = f"http://127.0.0.1:{port}"
        await asyncio.gather(self.start_simulator(start_delay, provision_delay),
                             self.start_api())

    async def token(self, team: str = "bench") -> str:
        out = await asyncio.to_thread(self._run_cli, ["keys", "create", "--team", team])
        return out.strip().splitlines()[-1].strip()

    def check_alive(self) -> None:
        """Raise if a process that should be running has exited."""
        for p in self.procs:
            if p.popen is not None and p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode}; "
                                   f"last log lines:\n{p.tail()}")


def _secret_key() -> str:
    key = os.environ.get("BENCH_SECRET_KEY")
    if not key:
        key = Fernet.generate_key().decode()
        os.environ["BENCH_SECRET_KEY"] = key  # one key per script run, for every process
    return key


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


async def wait_http(url: str, procs: list[Proc], timeout: float) -> None:
    """Wait until `url` answers 200; fail early if one of `procs` exits."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited during startup:\n{p.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout:.0f}s")


# --- the simulator's record -----------------------------------------------------------------


async def sim_requests(origin: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=origin, timeout=60) as c:
        r = await c.get("/_sim/requests")
        r.raise_for_status()
        return r.json()


async def sim_pods(origin: str, alive: bool | None = None) -> list[dict[str, Any]]:
    params = {} if alive is None else {"alive": str(alive).lower()}
    async with httpx.AsyncClient(base_url=origin, timeout=60) as c:
        r = await c.get("/_sim/pods", params=params)
        r.raise_for_status()
        return r.json()["pods"]


def duplicate_pods(pods: Iterable[Mapping[str, Any]], prefix: str = "hangar") -> dict[str, int]:
    """Nodes (`<prefix>-<cluster hex>-n<index>`) for which the simulator created more than
    one pod, whatever their attempt suffix or status. Returns node -> pod count (> 1)."""
    per_node: dict[str, int] = {}
    for p in pods:
        name = p.get("name") or ""
        if not name.startswith(prefix + "-"):
            continue
        node = name.rsplit("-a", 1)[0]
        per_node[node] = per_node.get(node, 0) + 1
    return {k: v for k, v in per_node.items() if v > 1}


# --- figures ----------------------------------------------------------------------------------


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    data = sorted(values)
    if not data:
        return None
    k = max(0, min(len(data) - 1, int(round(p / 100 * len(data) + 0.5)) - 1))
    return data[k]


def median(values: Iterable[float]) -> float | None:
    data = list(values)
    return statistics.median(data) if data else None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_speed_ms() -> float:
    """Milliseconds this machine takes for a fixed piece of pure-Python work (best of 5),
    printed beside the figures so that runs on different machines can be compared: the
    figures scale with it, the targets do not."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        d: dict[int, int] = {}
        for i in range(300_000):
            d[i & 1023] = d.get(i & 1023, 0) + (i * 7) % 13
        json.dumps(d)
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def rnd(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def report(title: str, lines: list[str], figures: dict[str, Any], as_json: bool) -> None:
    """Print the figures as text, and as one JSON line (prefixed `JSON `) with --json."""
    print(f"== {title} ==")
    for line in lines:
        print(line)
    if as_json:
        print("JSON " + json.dumps(figures, sort_keys=True, default=str), flush=True)


def parse_json_line(stdout: str) -> dict[str, Any]:
    """The figures a script printed with --json (for the tests)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("JSON "):
            return json.loads(line[5:])
    raise ValueError("no JSON line in the output")


def run(main_coro) -> int:
    """asyncio.run with Ctrl-C turned into a clean exit code (cleanup runs in `finally`s)."""
    try:
        return asyncio.run(main_coro) or 0
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
