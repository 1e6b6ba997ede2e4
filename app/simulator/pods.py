"""Simulated pods: state, placement, lifecycle timing, actions and their spec JSON.

Lifecycle: create -> PROVISIONING -> (provision_delay) STARTING -> (start_delay) RUNNING.
Every pod keeps a schedule of (monotonic due time, status) transitions. A background task
per pod applies them when due, and every read applies any that are already due first, so a
`GET` always reports the status the wall clock says it should have. Entering RUNNING starts
the pod's real SSH server; leaving it (stop, restart, exit, terminate) stops the server and
kills every process the pod started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import secrets
import shutil
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

import asyncssh

from app.simulator.catalog import Catalog, GpuModel, matching_cuda
from app.simulator.faults import Faults, PodFaults
from app.simulator.problems import CAPACITY_DETAIL, ApiError
from app.simulator.processes import MARKER_ENV, ProcessTracker, Reaper, kill
from app.simulator.sshd import PodSshServer
from app.simulator.volumes import NetworkVolumes

log = logging.getLogger(__name__)


class PodStatus(StrEnum):
    PROVISIONING = "PROVISIONING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    ERROR = "ERROR"
    TERMINATED = "TERMINATED"


# V2-NOTES §4 (and the spec's podAction description).
ALLOWED_ACTIONS: dict[PodStatus, tuple[str, ...]] = {
    PodStatus.PROVISIONING: ("stop", "terminate"),
    PodStatus.STARTING: ("stop", "terminate"),
    PodStatus.RUNNING: ("stop", "restart", "terminate"),
    PodStatus.EXITED: ("start", "terminate"),
    PodStatus.ERROR: ("start", "terminate"),
    PodStatus.TERMINATED: (),
}

_UNBILLED = (PodStatus.EXITED, PodStatus.ERROR, PodStatus.TERMINATED)
_PORT_RE = re.compile(r"^(\d{1,5})/(tcp|http|udp)$")
_ID_ALPHABET = string.ascii_lowercase + string.digits
PROXY_HOST = "ssh.runpod.io"


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 UTC with a `Z`, millisecond precision (sortable, unlike whole seconds)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wall(mono: float) -> datetime:
    """The wall-clock time of a `time.monotonic()` instant."""
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - mono)


def new_pod_id() -> str:
    """A 14-character lowercase id like RunPod's (e.g. `gfj8b292vyg08g`)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


@dataclass(frozen=True)
class Container:
    """The container settings of a create body, shared by every pod it makes."""

    image: str
    args: str
    disk: int
    ports: list[str]
    env: dict[str, str]
    registry: str | None
    mounts: dict[str, Any]


@dataclass(frozen=True)
class Membership:
    """A pod's place in an Instant Cluster (see clusters.py)."""

    cluster_id: str
    rank: int
    ip: str  # address on the cluster's private overlay network
    env: dict[str, str]  # what RunPod sets in every member's environment (NODE_RANK, ...)


@dataclass(eq=False)
class SimPod:
    """One simulated pod. Read its fields freely; change it only through `PodManager`."""

    id: str
    name: str
    seq: int
    request: dict[str, Any]  # the create body as received
    image: str
    args: str
    disk: int
    ports: list[str]
    env: dict[str, str]
    registry: str | None
    mounts: dict[str, Any]
    gpu_id: str
    gpu_count: int
    cloud: str
    data_center_id: str
    cuda_version: str | None
    cost_rate: float  # USD/hour while billable: per-GPU price x count
    global_networking: bool
    workdir: Path
    tracker: ProcessTracker
    faults: PodFaults
    provision_delay: float
    start_delay: float
    created_at: datetime
    created_mono: float
    proxy_username: str
    status: PodStatus = PodStatus.PROVISIONING
    started_at: datetime | None = None
    started_mono: float | None = None
    terminated_at: datetime | None = None
    schedule: list[tuple[float, PodStatus]] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)
    ssh: PodSshServer | None = None
    ssh_port: int | None = None  # last port the SSH server used (kept for restarts)
    host_key: asyncssh.SSHKey | None = None
    replacement_host_key: asyncssh.SSHKey | None = None
    ssh_connections: int = 0
    ssh_commands: int = 0  # exec/shell requests served
    fake_ports: dict[int, int] = field(default_factory=dict)  # other tcp: private -> public
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    driver: asyncio.Task | None = None
    membership: Membership | None = None  # set for Instant Cluster members
    global_ip: str | None = None  # global networking address, reported once assigned
    assigned: bool = False  # has had a machine (left PROVISIONING) at least once

    @property
    def alive(self) -> bool:
        """Not terminated (it may still be EXITED or ERROR)."""
        return self.status is not PodStatus.TERMINATED

    @property
    def wants_ssh(self) -> bool:
        """Whether a RUNNING pod of this spec publishes 22/tcp (and so runs sshd)."""
        return "22/tcp" in self.ports and self.faults.never_ip is None

    def set_status(self, status: PodStatus, at: datetime | None = None) -> None:
        self.status = status
        self.history.append((iso(at or datetime.now(UTC)) or "", status.value))

    def snapshot(self) -> dict[str, Any]:
        """Admin view (includes terminated pods and simulator internals)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "alive": self.alive,
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "terminatedAt": iso(self.terminated_at),
            "gpu": {"id": self.gpu_id, "count": self.gpu_count},
            "cloud": self.cloud,
            "dataCenterId": self.data_center_id,
            "sshPort": self.ssh.port if self.ssh else None,
            "sshConnections": self.ssh_connections,
            "sshCommands": self.ssh_commands,
            "workdir": str(self.workdir),
            "neverIp": self.faults.never_ip,
            "faultRules": list(self.faults.rules),
            "history": [{"at": at, "status": st} for at, st in self.history],
            "clusterId": self.membership.cluster_id if self.membership else None,
            "rank": self.membership.rank if self.membership else None,
            "privateIp": self.private_ip,
        }

    @property
    def private_ip(self) -> str | None:
        """The overlay address of a cluster member, or the global networking address."""
        if self.membership is not None:
            return self.membership.ip
        return self.global_ip


class PodManager:
    """All pods of one simulator, their placement and lifecycle."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        faults: Faults,
        work_dir: Path,
        provision_delay: float,
        start_delay: float,
        ssh_host: str = "127.0.0.1",
        public_host: str | None = None,
        instance: str | None = None,
        volumes: NetworkVolumes | None = None,
    ) -> None:
        self.catalog = catalog
        self.faults = faults
        self.volumes = volumes or NetworkVolumes(catalog)
        self.work_dir = work_dir
        self.provision_delay = provision_delay
        self.start_delay = start_delay
        self.ssh_host = ssh_host
        self.public_host = public_host or ssh_host
        # Marks every process of this simulator instance (see processes.py).
        self.instance = instance or secrets.token_hex(6)
        self.account_ssh_keys: list[str] = []  # PUT /v2/account/ssh-keys, used by startSsh
        self._pods: dict[str, SimPod] = {}
        self._reaper = Reaper()  # one /proc scan for many pods' teardowns
        self._seq = itertools.count(1)

    # --- queries ---------------------------------------------------------------------

    def get(self, pod_id: str) -> SimPod | None:
        """A pod that is not terminated, or None."""
        pod = self._pods.get(pod_id)
        return pod if pod is not None and pod.alive else None

    def get_any(self, pod_id: str) -> SimPod | None:
        """Any pod ever created (terminated ones too)."""
        return self._pods.get(pod_id)

    def alive(self) -> list[SimPod]:
        """Pods not terminated, newest first (Instant Cluster members included)."""
        return [p for p in self.all() if p.alive]

    def all(self) -> list[SimPod]:
        """Every pod ever created, newest first."""
        return sorted(self._pods.values(), key=lambda p: p.seq, reverse=True)

    def named(self, name: str) -> list[SimPod]:
        """Every pod (terminated too) with exactly this name, newest first."""
        return [p for p in self.all() if p.name == name]

    # --- create ------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> SimPod:
        """Create a pod from a body that already passed the `CreatePodRequest` schema.

        Raises `ApiError` 400 for rule violations and no capacity, 404 for unknown
        referenced resources.
        """
        name = body["name"]
        gpu_req, cpu_req = body.get("gpu"), body.get("cpu")
        if (gpu_req is None) == (cpu_req is None):
            raise ApiError(400, "exactly one of gpu or cpu must be set")
        if cpu_req is not None:
            raise ApiError(400, f"cpu flavor {cpu_req.get('id')!r} is not available for pods")
        if body.get("templateId"):
            raise ApiError(404, f"template {body['templateId']!r} not found")
        container = self.container(body)
        gpu = self.gpu_type(gpu_req["id"], "gpu.id")
        count = int(gpu_req.get("count", 1))
        cloud = body.get("cloud", "SECURE")
        allowed_cuda = gpu_req.get("allowedCudaVersions") or []
        min_cuda = gpu_req.get("minCudaVersion")
        if allowed_cuda and min_cuda:
            raise ApiError(
                400, "gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive"
            )
        max_count = self.check_gpu_count(gpu, count, cloud, "gpu.count")
        dc_ids = self.data_center_ids(body)
        dc_ids = self.volumes.restrict_placement(container.mounts, dc_ids)
        global_networking = bool(body.get("globalNetworking"))
        if global_networking and dc_ids:
            eligible = [d for d in dc_ids if self.catalog.data_center(d).global_network]  # type: ignore[union-attr]
            if not eligible:
                # UNCONFIRMED text; the spec says only "enforced upstream".
                raise ApiError(
                    400,
                    "globalNetworking requires a data center with global networking; "
                    f"none of {', '.join(dc_ids)} has it (see GET /v2/catalog/datacenters)",
                )

        dc_id, cuda = self.place(
            name,
            gpu.id,
            count,
            cloud,
            dc_ids,
            allowed_cuda,
            min_cuda,
            global_networking,
            bool(max_count),
        )
        return self.spawn(
            name=name,
            request=body,
            container=container,
            gpu=gpu,
            count=count,
            cloud=cloud,
            dc_id=dc_id,
            cuda=cuda,
            global_networking=global_networking,
        )

    # --- create, in parts (pods and cluster members share them) ---------------------

    def container(self, body: dict[str, Any]) -> Container:
        """The container settings of a create body (`BaseContainerConfig` + mounts + flags).

        Raises `ApiError` 400 for a rule violation, 404 for an unknown network volume.
        """
        mounts = dict(body.get("mounts") or {})
        if "persistent" in mounts and "network" in mounts:
            raise ApiError(400, "mounts.persistent and mounts.network are mutually exclusive")
        if mounts.get("network"):
            self.volumes.restrict_placement(mounts, [])  # unknown volume: 404
        ports = list(body.get("ports") or [])
        for spec in ports:
            m = _PORT_RE.match(spec)
            if not m or not 1 <= int(m.group(1)) <= 65535:
                raise ApiError(400, f"invalid port {spec!r}: expected <port>/<tcp|http>")
        env = dict(body.get("env") or {})
        if body.get("startSsh") and self.account_ssh_keys and "PUBLIC_KEY" not in env:
            env["PUBLIC_KEY"] = "\n".join(self.account_ssh_keys)
        if body.get("startJupyter") and "JUPYTER_PASSWORD" not in env:
            env["JUPYTER_PASSWORD"] = secrets.token_urlsafe(12)
        return Container(
            image=body.get("image", ""),
            args=body.get("args", ""),
            disk=int(body.get("disk", 50)),
            ports=ports,
            env=env,
            registry=body.get("registry"),
            mounts=mounts,
        )

    def gpu_type(self, gpu_id: str, field_name: str) -> GpuModel:
        """The catalog GPU type, or `ApiError` 400 naming the field that carried the id."""
        gpu = self.catalog.gpu(gpu_id)
        if gpu is None:
            raise ApiError(
                400,
                f"{field_name} {gpu_id!r} is not a known GPU type id; "
                "see GET /v2/catalog/gpus for valid ids",
            )
        return gpu

    @staticmethod
    def check_gpu_count(gpu: GpuModel, count: int, cloud: str, field_name: str) -> int:
        """The type's maxCount in that cloud; `ApiError` 400 when `count` exceeds it."""
        max_count = gpu.max_count(cloud)
        if max_count and count > max_count:
            raise ApiError(
                400, f"{field_name} {count} exceeds maxCount {max_count} for {gpu.id} ({cloud})"
            )
        return max_count

    def data_center_ids(self, body: dict[str, Any]) -> list[str]:
        """`dataCenterIds`, all known (`ApiError` 400 otherwise)."""
        dc_ids = list(body.get("dataCenterIds") or [])
        unknown = [d for d in dc_ids if self.catalog.data_center(d) is None]
        if unknown:
            raise ApiError(400, f"unknown data center id(s): {', '.join(unknown)}")
        return dc_ids

    def spawn(
        self,
        *,
        name: str,
        request: dict[str, Any],
        container: Container,
        gpu: GpuModel,
        count: int,
        cloud: str,
        dc_id: str,
        cuda: str | None,
        global_networking: bool = False,
        membership: Membership | None = None,
    ) -> SimPod:
        """Create the pod of an already placed request: takes its GPUs, starts its clock."""
        pod_id = new_pod_id()
        while pod_id in self._pods:
            pod_id = new_pod_id()
        pod_faults = self.faults.pod_faults(name)
        now_mono = time.monotonic()
        workdir = self.work_dir / "pods" / pod_id
        workdir.mkdir(parents=True, exist_ok=True)
        seq = next(self._seq)
        pod = SimPod(
            id=pod_id,
            name=name,
            seq=seq,
            request=request,
            image=container.image,
            args=container.args,
            disk=container.disk,
            ports=list(container.ports),
            env=dict(container.env),
            registry=container.registry,
            mounts=container.mounts,
            gpu_id=gpu.id,
            gpu_count=count,
            cloud=cloud,
            data_center_id=dc_id,
            cuda_version=cuda,
            cost_rate=round(gpu.price(cloud) * count * pod_faults.price_factor, 4),
            global_networking=global_networking,
            workdir=workdir,
            tracker=ProcessTracker(f"{self.instance}:{pod_id}"),
            faults=pod_faults,
            provision_delay=_pick(pod_faults.provision_delay, self.provision_delay),
            start_delay=_pick(pod_faults.start_delay, self.start_delay),
            created_at=datetime.now(UTC),
            created_mono=now_mono,
            proxy_username=f"{pod_id}-{secrets.token_hex(4)}",
            membership=membership,
            global_ip=f"10.65.{seq // 250 % 250}.{seq % 250 + 2}" if global_networking else None,
        )
        for spec in pod.ports:
            port, proto = spec.split("/")
            if proto == "tcp" and port != "22":
                # Published but nothing listens: only 22/tcp is backed by a real server.
                pod.fake_ports[int(port)] = 10000 + secrets.randbelow(50000)
        pod.set_status(PodStatus.PROVISIONING, pod.created_at)
        ready_at = now_mono + pod.provision_delay
        schedule = [(ready_at, PodStatus.STARTING), (ready_at + pod.start_delay, PodStatus.RUNNING)]
        if pod_faults.exit_after is not None:
            schedule.append((now_mono + pod_faults.exit_after, PodStatus(pod_faults.exit_status)))
        schedule.sort(key=lambda item: item[0])
        self.catalog.allocate(gpu.id, dc_id, cloud, count)
        self._pods[pod_id] = pod
        self._set_schedule(pod, schedule)
        return pod

    def place(
        self,
        name: str,
        gpu_id: str,
        count: int,
        cloud: str,
        dc_ids: list[str],
        allowed_cuda: list[str],
        min_cuda: str | None,
        global_networking: bool,
        cloud_offered: bool,
        *,
        pods: int = 1,
        product: str = "POD",
    ) -> tuple[str, str | None]:
        """Choose a data center with free stock, honouring `dataCenterIds` strictly.

        With `dataCenterIds` the first listed one with stock wins (they are preferences but
        observed enforced); without, the one with the most free GPUs. `pods` pods of
        `count` GPUs must all fit in the one data center (a cluster is all or nothing).
        """
        gpu = self.catalog.gpu(gpu_id)
        assert gpu is not None
        versions = matching_cuda(gpu.cuda_versions, allowed_cuda, min_cuda)
        rules = self.faults.capacity_rules(gpu_id, cloud, name, product=product)
        candidates = dc_ids or [dc.id for dc in self.catalog.data_centers()]
        blocking = set()
        usable: list[tuple[int, int, str]] = []
        for order, dc_id in enumerate(candidates):
            dc = self.catalog.data_center(dc_id)
            if dc is None or not self.catalog.offered(gpu_id, dc_id, cloud):
                continue
            if global_networking and not dc.global_network:
                continue
            hit = [r for r in rules if r.covers_offering(gpu_id, dc_id, cloud)]
            if hit:
                blocking.update(hit)
                continue
            free = self.catalog.free(gpu_id, dc_id, cloud)
            if free >= count * pods:
                usable.append((free, order, dc_id))
        # An unmatched CUDA constraint is a capacity error too [S CreateGpuConfig].
        if not usable or not versions or not cloud_offered:
            self.faults.consume(blocking)
            raise ApiError(400, CAPACITY_DETAIL)
        if dc_ids:
            chosen = min(usable, key=lambda u: u[1])[2]
        else:
            chosen = max(usable, key=lambda u: (u[0], -u[1]))[2]
        return chosen, max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))

    # --- lifecycle -----------------------------------------------------------------------

    def _set_schedule(self, pod: SimPod, schedule: list[tuple[float, PodStatus]]) -> None:
        """Replace the pending transitions and (re)start the pod's driver task."""
        pod.schedule = schedule
        current = asyncio.current_task()
        if pod.driver is not None and pod.driver is not current and not pod.driver.done():
            pod.driver.cancel()
        pod.driver = asyncio.create_task(self._drive(pod), name=f"sim-pod-{pod.id}")

    async def _drive(self, pod: SimPod) -> None:
        try:
            while pod.schedule and pod.alive:
                delay = pod.schedule[0][0] - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.refresh(pod)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not take the simulator down
            log.exception("pod %s lifecycle failed", pod.id)

    async def refresh(self, pod: SimPod) -> SimPod:
        """Apply every transition that is due by now (cheap when none is)."""
        if pod.schedule and pod.schedule[0][0] <= time.monotonic():
            async with pod.lock:
                await self._advance(pod)
        return pod

    async def refresh_all(self, pods: list[SimPod]) -> None:
        for pod in pods:
            await self.refresh(pod)

    async def _advance(self, pod: SimPod) -> None:
        now = time.monotonic()
        while pod.schedule and pod.schedule[0][0] <= now and pod.alive:
            at, target = pod.schedule.pop(0)
            await self._enter(pod, target, at)

    async def _enter(self, pod: SimPod, status: PodStatus, at: float) -> None:
        if status in (PodStatus.STARTING, PodStatus.RUNNING):
            pod.assigned = True  # a machine: rank, overlay and global addresses are known
        if status is PodStatus.RUNNING:
            if pod.wants_ssh:
                try:
                    await self._start_ssh(pod)
                except Exception:
                    log.exception("pod %s: SSH server failed to start", pod.id)
                    await self._stop_runtime(pod)
                    pod.schedule.clear()
                    pod.set_status(PodStatus.ERROR)
                    return
            pod.started_at, pod.started_mono = _wall(at), at
            pod.set_status(PodStatus.RUNNING, pod.started_at)
        elif status in (PodStatus.EXITED, PodStatus.ERROR):
            # The container died: later transitions (e.g. RUNNING) never happen.
            pod.schedule.clear()
            await self._stop_runtime(pod)
            pod.set_status(status, _wall(at))
        else:
            pod.set_status(status, _wall(at))

    async def _start_ssh(self, pod: SimPod) -> None:
        if pod.host_key is None:
            pod.host_key = asyncssh.generate_private_key("ssh-ed25519")
        server = PodSshServer(
            host=self.ssh_host,
            authorized_keys=pod.env.get("PUBLIC_KEY"),
            host_key_for_connection=lambda: self._host_key_for_connection(pod),
            workdir=pod.workdir,
            env=lambda username: self._process_env(pod, username),
            tracker=pod.tracker,
            on_command=partial(self._count_command, pod),
        )
        pod.ssh_port = await server.start(pod.ssh_port or 0)
        pod.ssh = server

    @staticmethod
    def _count_command(pod: SimPod) -> None:
        pod.ssh_commands += 1

    def _host_key_for_connection(self, pod: SimPod) -> asyncssh.SSHKey:
        pod.ssh_connections += 1
        assert pod.host_key is not None
        if pod.ssh_connections > 1 and self.faults.host_key_changed(pod.id, pod.name):
            if pod.replacement_host_key is None:
                pod.replacement_host_key = asyncssh.generate_private_key("ssh-ed25519")
            return pod.replacement_host_key
        return pod.host_key

    def _process_env(self, pod: SimPod, username: str) -> dict[str, str]:
        """Environment of every command run over SSH in this pod."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "RUNPOD_POD_ID": pod.id,
            "RUNPOD_POD_HOSTNAME": pod.proxy_username,
            "RUNPOD_PUBLIC_IP": self.public_host,
            "RUNPOD_TCP_PORT_22": str(pod.ssh_port or ""),
            "RUNPOD_GPU_COUNT": str(pod.gpu_count),
            "RUNPOD_DC_ID": pod.data_center_id,
        }
        if pod.membership is not None:
            env.update(pod.membership.env)
        env.update(pod.env)
        # Not overridable: the pod directory is the home, and the marker is how the
        # simulator finds the pod's processes to kill them.
        env.update(
            {
                "HOME": str(pod.workdir),
                "PWD": str(pod.workdir),
                "USER": username,
                "LOGNAME": username,
                **pod.tracker.env,
            }
        )
        return env

    async def _stop_runtime(self, pod: SimPod) -> None:
        """Stop the SSH server and kill every process the pod started."""
        if pod.ssh is not None:
            server, pod.ssh = pod.ssh, None
            await server.close()
        if pod.tracker.spawned:
            await self._reaper.kill(pod.tracker)

    # --- actions ----------------------------------------------------------------------------

    async def action(self, pod: SimPod, action: str) -> SimPod | None:
        """Apply stop/start/restart/terminate; returns the pod (None after terminate).

        Raises `ApiError` 404 when the pod is gone, 409 when the action is not allowed in
        its current status.
        """
        async with pod.lock:
            await self._advance(pod)
            if not pod.alive:
                raise ApiError(404, "pod not found")
            if action not in ALLOWED_ACTIONS[pod.status]:
                allowed = ", ".join(ALLOWED_ACTIONS[pod.status]) or "none"
                raise ApiError(
                    409,
                    f"action {action!r} is not valid for a pod in status {pod.status.value} "
                    f"(allowed: {allowed})",
                )
            if action == "terminate":
                await self._terminate_locked(pod)
                return None
            now = time.monotonic()
            if action == "stop":
                await self._stop_runtime(pod)
                pod.schedule.clear()
                pod.set_status(PodStatus.EXITED)
            else:  # start / restart: a stopped pod keeps its machine, so no PROVISIONING
                await self._stop_runtime(pod)
                pod.set_status(PodStatus.STARTING)
                self._set_schedule(pod, [(now + pod.start_delay, PodStatus.RUNNING)])
            return pod

    async def terminate(self, pod: SimPod) -> None:
        """Terminate a pod (DELETE). Raises `ApiError` 404 if it already is."""
        async with pod.lock:
            if not pod.alive:
                raise ApiError(404, "pod not found")
            await self._terminate_locked(pod)

    async def _terminate_locked(self, pod: SimPod) -> None:
        pod.schedule.clear()
        if pod.driver is not None and pod.driver is not asyncio.current_task():
            pod.driver.cancel()
        pod.terminated_at = datetime.now(UTC)
        pod.set_status(PodStatus.TERMINATED, pod.terminated_at)
        self.catalog.release(pod.gpu_id, pod.data_center_id, pod.cloud, pod.gpu_count)
        await self._stop_runtime(pod)
        await asyncio.to_thread(shutil.rmtree, pod.workdir, True)

    async def shutdown(self) -> None:
        """Terminate every live pod and kill any straggler process of this simulator."""
        for pod in self.alive():
            with contextlib.suppress(ApiError):
                await self.terminate(pod)
        for pod in self._pods.values():
            if pod.driver is not None:
                pod.driver.cancel()
        needle = f"\0{MARKER_ENV}={self.instance}:".encode()
        await asyncio.to_thread(kill, set(), needle)

    async def reset(self) -> None:
        """Terminate everything and forget all pods (stock is restored by terminating)."""
        await self.shutdown()
        self._pods.clear()

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self, pod: SimPod) -> dict[str, Any]:
        """The pod in the spec's `Pod` shape."""
        status = pod.status
        running = status is PodStatus.RUNNING
        ip = self.public_host
        direct = None
        if running and pod.ssh is not None and pod.ssh.port:
            direct = {
                "host": ip,
                "port": pod.ssh.port,
                "username": "root",
                "command": f"ssh root@{ip} -p {pod.ssh.port}",
            }
        if status in (PodStatus.PROVISIONING, PodStatus.STARTING):
            runtime: dict[str, Any] | None = {}  # as in the spec's create example
        elif running:
            runtime = {
                "uptime": int(time.monotonic() - (pod.started_mono or time.monotonic())),
                "gpus": [{"util": 0, "memoryUtil": 0} for _ in range(pod.gpu_count)],
                "cpu": {"util": 0},
                "memory": {"util": 0},
                "ports": self._runtime_ports(pod),
            }
        else:
            runtime = None  # "Null when the pod is not RUNNING"
        # `enabled` is "derived from whether the pod has an assigned global-network address"
        # [S PodGlobalNetworking]: false until the pod has a machine.
        networking: dict[str, Any] = {"enabled": False}
        if pod.global_ip and pod.assigned:
            networking = {
                "enabled": True,
                "ip": pod.global_ip,
                "internalDns": f"{pod.id}.runpod.internal",
            }
        body = {
            "id": pod.id,
            "name": pod.name,
            "image": pod.image,
            "args": pod.args,
            "disk": pod.disk,
            "ports": list(pod.ports),
            "env": dict(pod.env),
            "registry": pod.registry,
            "status": status.value,
            "actions": list(ALLOWED_ACTIONS[status]),
            "mounts": pod.mounts,
            "gpu": {"id": pod.gpu_id, "count": pod.gpu_count},
            "cloud": pod.cloud,
            "dataCenterId": pod.data_center_id,
            "cudaVersion": pod.cuda_version,
            "ssh": {
                "proxy": {
                    "host": PROXY_HOST,
                    "port": 22,
                    "username": pod.proxy_username,
                    "command": f"ssh {pod.proxy_username}@{PROXY_HOST}",
                },
                "direct": direct,
            },
            "template": None,
            "cost": 0.0 if status in _UNBILLED else pod.cost_rate,
            "locked": False,
            "globalNetworking": networking,
            "runtime": runtime,
            "createdAt": iso(pod.created_at),
            "startedAt": iso(pod.started_at),
        }
        if pod.membership is not None:
            # rank is null and ip omitted until assigned during provisioning [S PodCluster];
            # no `role` for TRAINING/APPLICATION clusters.
            cluster: dict[str, Any] = {"id": pod.membership.cluster_id, "rank": None}
            if pod.assigned:
                cluster.update(rank=pod.membership.rank, ip=pod.membership.ip)
            body["cluster"] = cluster
        return body

    def _runtime_ports(self, pod: SimPod) -> list[dict[str, Any]]:
        mode = pod.faults.never_ip
        if mode == "empty":
            return []
        out = []
        for spec in pod.ports:
            port_s, proto = spec.split("/")
            port = int(port_s)
            entry: dict[str, Any] = {"private": port, "public": None, "type": proto, "ip": None}
            if mode == "omit":
                entry = {"private": port, "type": proto}
            elif mode is None and proto == "tcp":
                public = pod.ssh.port if port == 22 and pod.ssh else pod.fake_ports.get(port)
                if public:
                    entry.update(public=public, ip=self.public_host)
            out.append(entry)
        return out


def _pick(override: float | None, default: float) -> float:
    return default if override is None else float(override)
