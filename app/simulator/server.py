"""Running the simulator: the `Simulator` class (in-process) and `serve()` (blocking)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn

from app.gctune import tune_gc
from app.simulator.api import create_app
from app.simulator.catalog import DEFAULT_STOCK, Catalog
from app.simulator.clusters import ClusterManager, SimCluster
from app.simulator.faults import Faults
from app.simulator.middleware import SimMiddleware
from app.simulator.pods import PodManager, PodStatus, SimPod
from app.simulator.ratelimit import RateLimiter
from app.simulator.records import RequestLog, RequestRecord
from app.simulator.volumes import NetworkVolumes, SimVolume

log = logging.getLogger(__name__)


class _InLoopServer(uvicorn.Server):
    """uvicorn serving inside someone else's event loop: it must not take over SIGINT/SIGTERM
    (that would turn a test run's Ctrl-C into a quiet server shutdown)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _raise_fd_limit() -> None:
    # Every RUNNING pod holds a listening socket, and benchmarks run 1,000 pods.
    with contextlib.suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Simulator:
    """A RunPod REST v2 simulator: real HTTP (uvicorn) and real SSH pods (asyncssh).

    Use `await sim.start()` (returns the base URL ending in `/v2`) and `await sim.stop()`,
    or `async with Simulator(...) as sim:`. Faults are set through `sim.faults`, the
    request record is `sim.requests` / `sim.count(...)`, pods are `sim.alive_pods()` /
    `sim.all_pods()` (Instant Cluster members included), Instant Clusters
    `sim.alive_clusters()` / `sim.all_clusters()`, network volumes are seeded with
    `sim.add_network_volume(...)`.

    Args:
        api_key: the bearer key that is accepted.
        forbidden_keys: keys that are valid but lack access (every request gets 403).
        admin_key: if set, `/_sim/` requests need `Authorization: Bearer <admin_key>`.
        provision_delay: seconds in PROVISIONING before STARTING.
        start_delay: seconds in STARTING before RUNNING (also used by start/restart).
        work_dir: where pod directories go (`<work_dir>/pods/<id>`); a temporary directory
            removed on `stop()` when None.
        default_stock: free GPUs per (GPU type, data center, cloud) offering.
        seed: seed for probabilistic faults.
        ssh_host: address pod SSH servers bind to; public_host: address reported to
            clients (defaults to ssh_host).
        rate_limits / enforce_rate_limits: quotas reported in `RateLimit-Policy`
            ({"minute": q, "hour": q, "day": q}); enforced (429) only if asked.
    """

    def __init__(
        self,
        api_key: str = "sim-key",
        *,
        forbidden_keys: Iterable[str] = (),
        admin_key: str | None = None,
        provision_delay: float = 0.5,
        start_delay: float = 0.5,
        work_dir: str | Path | None = None,
        default_stock: int = DEFAULT_STOCK,
        catalog: Catalog | None = None,
        seed: int | None = None,
        ssh_host: str = "127.0.0.1",
        public_host: str | None = None,
        rate_limits: Mapping[str, int] | None = None,
        enforce_rate_limits: bool = False,
    ) -> None:
        self.api_key = api_key
        self.forbidden_keys = frozenset(forbidden_keys)
        self.admin_key = admin_key
        self.faults = Faults(seed)
        self.catalog = catalog or Catalog(default_stock=default_stock)
        self.rate_limiter = RateLimiter(rate_limits, enforce=enforce_rate_limits)
        self.request_log = RequestLog()
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="hangar-sim-"))
        self.volumes = NetworkVolumes(self.catalog)
        self.pods = PodManager(
            catalog=self.catalog,
            faults=self.faults,
            work_dir=self.work_dir,
            provision_delay=provision_delay,
            start_delay=start_delay,
            ssh_host=ssh_host,
            public_host=public_host,
            volumes=self.volumes,
        )
        self.clusters = ClusterManager(self.pods)
        self._initial_delays = (provision_delay, start_delay)
        self.stopping = asyncio.Event()
        self.app = SimMiddleware(create_app(self), self)
        self.base_url: str | None = None
        self.admin_url: str | None = None
        self._server: _InLoopServer | None = None
        self._task: asyncio.Task | None = None

    # --- running ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0 = a free port) as a task of the running event loop.

        Returns the base URL for clients, e.g. `http://127.0.0.1:41234/v2`.
        """
        if self._task is not None:
            raise RuntimeError("simulator already started")
        _raise_fd_limit()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted sockets. Without it a response written as headers + body
        # waits on the client's delayed ACK: ~40 ms per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the host application's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self.stopping.clear()
        self._server = _InLoopServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="sim-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error
                raise RuntimeError("simulator HTTP server exited during startup")
            await asyncio.sleep(0.01)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        origin = f"http://{shown}:{bound_port}"
        self.base_url = f"{origin}/v2"
        self.admin_url = f"{origin}/_sim"
        return self.base_url

    async def stop(self) -> None:
        """Stop HTTP, terminate every pod (SSH servers, processes, directories)."""
        self.stopping.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except (TimeoutError, Exception):
                self._server.force_exit = True
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
        self._server = self._task = None
        await self.pods.shutdown()
        if self._own_work_dir:
            await asyncio.to_thread(shutil.rmtree, self.work_dir, True)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def reset(self) -> None:
        """Back to the state after construction: no faults, pods, clusters, network volumes,
        requests or account keys; default stock and the constructor's delays."""
        self.faults.clear()
        self.configure(provision_delay=self._initial_delays[0], start_delay=self._initial_delays[1])
        await self.pods.reset()
        await self.clusters.reset()
        self.volumes.clear()
        self.request_log.clear()
        self.catalog.reset_stock()
        self.pods.account_ssh_keys = []

    # --- configuration -----------------------------------------------------------------------

    def configure(
        self, *, provision_delay: float | None = None, start_delay: float | None = None
    ) -> None:
        """Change the default lifecycle delays for pods created from now on."""
        if provision_delay is not None:
            self.pods.provision_delay = float(provision_delay)
        if start_delay is not None:
            self.pods.start_delay = float(start_delay)

    def config(self) -> dict[str, Any]:
        return {
            "provision_delay": self.pods.provision_delay,
            "start_delay": self.pods.start_delay,
            "work_dir": str(self.work_dir),
            "base_url": self.base_url,
        }

    def set_stock(
        self,
        count: int,
        *,
        gpu_id: str | None = None,
        data_center: str | None = None,
        cloud: str | None = None,
    ) -> int:
        """Set free GPUs for matching offerings (see `Catalog.set_stock`)."""
        return self.catalog.set_stock(count, gpu_id=gpu_id, data_center=data_center, cloud=cloud)

    def add_network_volume(
        self,
        name: str,
        size: int,
        data_center_id: str,
        *,
        volume_id: str | None = None,
        type: str | None = None,  # noqa: A002 - the spec's field name
    ) -> SimVolume:
        """Seed a network volume (ValueError for what RunPod's create would refuse)."""
        return self.volumes.add(name, size, data_center_id, volume_id=volume_id, type=type)

    def register_ssh_keys(self, keys: Iterable[str]) -> None:
        """Account SSH keys (as `PUT /v2/account/ssh-keys`) injected by `startSsh`."""
        self.pods.account_ssh_keys = list(keys)

    # --- observation ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every `/v2` request received so far (admin requests excluded)."""
        return self.request_log.all()

    def count(self, endpoint: str | None = None, *, status: int | None = None) -> int:
        """Requests to `endpoint` (e.g. "create_pod"), optionally only those answered `status`."""
        return self.request_log.count(endpoint, status=status)

    def counts(self) -> dict[str, int]:
        """Requests per endpoint name."""
        return self.request_log.counts()

    def clear_requests(self) -> None:
        self.request_log.clear()

    def pod(self, pod_id: str) -> SimPod | None:
        """Any pod ever created, terminated ones included."""
        return self.pods.get_any(pod_id)

    def alive_pods(self) -> list[SimPod]:
        """Pods not terminated (orphan check), newest first."""
        return self.pods.alive()

    def all_pods(self) -> list[SimPod]:
        """Every pod ever created, newest first."""
        return self.pods.all()

    def pods_named(self, name: str, *, alive_only: bool = False) -> list[SimPod]:
        """Pods with exactly this name (duplicate check)."""
        return [p for p in self.pods.named(name) if p.alive or not alive_only]

    def cluster(self, cluster_id: str) -> SimCluster | None:
        """Any Instant Cluster ever created, deleted ones included."""
        return self.clusters.get_any(cluster_id)

    def alive_clusters(self) -> list[SimCluster]:
        """Instant Clusters not deleted (orphan check), newest first."""
        return self.clusters.alive()

    def all_clusters(self) -> list[SimCluster]:
        """Every Instant Cluster ever created, newest first."""
        return self.clusters.all()

    def clusters_named(self, name: str, *, alive_only: bool = False) -> list[SimCluster]:
        """Instant Clusters with exactly this name (duplicate check)."""
        return [c for c in self.clusters.named(name) if c.alive or not alive_only]

    async def wait_for_status(
        self, pod_id: str, status: str | PodStatus, within: float = 5.0
    ) -> SimPod:
        """Wait until a pod reaches `status`; TimeoutError after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            pod = self.pods.get_any(pod_id)
            if pod is None:
                raise KeyError(pod_id)
            await self.pods.refresh(pod)
            if pod.status == status:
                return pod
            if time.monotonic() >= deadline:
                raise TimeoutError(f"pod {pod_id} is {pod.status}, not {status}")
            await asyncio.sleep(0.01)


async def _serve_forever(host: str, port: int, **kwargs: Any) -> None:
    # Standalone: asyncssh logs every connection at INFO, too chatty for a dev console.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    sim = Simulator(**kwargs)
    url = await sim.start(host, port)
    tune_gc()  # start-up is over: app/gctune.py
    print(f"RunPod v2 simulator serving {url} (admin API {sim.admin_url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    api_key: str = "sim-key",
    *,
    provision_delay: float = 0.5,
    start_delay: float = 0.5,
    work_dir: str | Path | None = None,
    **kwargs: Any,
) -> None:
    """Run a simulator until SIGINT/SIGTERM, printing its base URL (the `hangar simulator`
    command). Extra keyword arguments go to `Simulator`."""
    asyncio.run(
        _serve_forever(
            host,
            port,
            api_key=api_key,
            provision_delay=provision_delay,
            start_delay=start_delay,
            work_dir=work_dir,
            **kwargs,
        )
    )
