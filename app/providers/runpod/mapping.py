"""RunPod v2 JSON <-> the provider protocol types. Pure functions, no I/O."""

from __future__ import annotations

import logging
from typing import Any

from app.domain.pods import SSH_PORT
from app.providers import base
from app.providers.base import ClusterSpec, InvalidRequest, PodSpec, PodState

from . import types as v2

log = logging.getLogger("hangar.runpod")

MIN_PERSISTENT_VOLUME_GB = 10  # v2 PersistentMount.size minimum
MIN_CLUSTER_NODES, MAX_CLUSTER_NODES = 2, 250  # v2 ClusterCompute.podCount bounds
# The generic distributed-training type: members get ranks and no SLURM/RAY roles.
CLUSTER_TYPE = "TRAINING"
_CLOUD = {"secure": "SECURE", "community": "COMMUNITY"}


# --- pod response -> base.Pod -------------------------------------------------


def pod_state(status: str) -> PodState:
    """The v2 status; an unknown one reads as PROVISIONING (not ready, not failed, not gone)."""
    try:
        return PodState(status.upper())
    except ValueError:
        log.warning("runpod: unknown pod status %r, treating it as PROVISIONING", status)
        return PodState.PROVISIONING


def ssh_endpoint(pod: v2.Pod) -> tuple[str | None, int | None]:
    """Public host and port of the pod's sshd.

    `ssh.direct` first; otherwise the `runtime.ports` entry for private 22 with a public
    port and ip. `(None, None)` until assigned. The proxy (`ssh.runpod.io`) is not used:
    it gives an interactive shell only.
    """
    direct = pod.ssh.direct if pod.ssh else None
    if direct and direct.host and direct.port:
        return direct.host, direct.port
    ports = (pod.runtime.ports if pod.runtime else None) or []
    for port in ports:
        if port.private == 22 and port.public and port.ip and (port.type or "tcp").lower() == "tcp":
            return port.ip, port.public
    return None, None


def gpu_model(pod: v2.Pod) -> str | None:
    """The GPU type id (v2 pods report no display name; the catalog has it)."""
    return pod.gpu.id if pod.gpu else None


def gpu_count(pod: v2.Pod) -> int:
    return pod.gpu.count if pod.gpu else 0


def private_ip(pod: v2.Pod) -> str | None:
    """A member's overlay address, else the pod's global networking address (if assigned)."""
    if pod.cluster is not None:
        return pod.cluster.ip or None
    networking = pod.global_networking
    if networking is not None and networking.enabled and networking.ip:
        return networking.ip
    return None


def to_pod(pod: v2.Pod) -> base.Pod:
    host, port = ssh_endpoint(pod)
    return base.Pod(
        id=pod.id,
        name=pod.name,
        status=pod_state(pod.status),
        cost_per_hour=float(pod.cost or 0.0),
        gpu_type_id=gpu_model(pod),
        gpu_count=gpu_count(pod),
        data_center_id=pod.data_center_id,
        ssh_host=host,
        ssh_port=port,
        created_at=pod.created_at,
        started_at=pod.started_at,
        private_ip=private_ip(pod),
        cluster_id=pod.cluster.id if pod.cluster else None,
        cluster_rank=pod.cluster.rank if pod.cluster else None,
    )


# --- Instant Clusters and network volumes -> protocol types ----------------------


def to_cluster(cluster: v2.Cluster, members: list[v2.Pod] | None = None) -> base.Cluster:
    """The cluster summary, with its member pods when they were read."""
    compute = cluster.compute
    return base.Cluster(
        id=cluster.id,
        name=cluster.name,
        gpu_type_id=compute.gpu_type_id,
        gpu_count=compute.gpu_count_per_pod or 0,
        node_count=compute.pod_count or 0,
        data_center_id=cluster.data_center_id,
        created_at=cluster.created_at,
        member_count=cluster.pods.total,
        members_by_status=dict(cluster.pods.by_status),
        network_cidr=cluster.network.cidr if cluster.network else None,
        primary_pod_id=cluster.primary.pod_id if cluster.primary else None,
        members=tuple(to_pod(m) for m in members or ()),
    )


def to_network_volume(volume: v2.NetworkVolume) -> base.NetworkVolume:
    return base.NetworkVolume(
        id=volume.id,
        name=volume.name,
        size_gb=volume.size,
        data_center_id=volume.data_center,
        type=volume.type,
    )


# --- catalog entry -> base.GpuType --------------------------------------------


def _price(offered: bool, value: float | None) -> float | None:
    # A cloud that does not offer the type (or a 0 list price) has no usable price.
    if not offered or value is None or value <= 0:
        return None
    return float(value)


def to_gpu_type(gpu: v2.GpuType) -> base.GpuType:
    return base.GpuType(
        id=gpu.id,
        display_name=gpu.name or gpu.id,
        memory_gb=gpu.memory,
        secure=gpu.secure,
        community=gpu.community,
        price_secure=_price(gpu.secure, gpu.price.secure),
        price_community=_price(gpu.community, gpu.price.community),
        availability=gpu.availability,
        data_centers=tuple(
            base.DataCenterStock(id=dc.id, availability=dc.availability or "NONE")
            for dc in gpu.data_centers
        ),
        max_count_secure=gpu.max_count.secure,
        max_count_community=gpu.max_count.community,
    )


# --- PodSpec -> create body ---------------------------------------------------


def with_ssh_port(ports: tuple[str, ...] | list[str]) -> list[str]:
    """The ports, de-duplicated, always carrying 22/tcp (needed for `ssh.direct`)."""
    out: list[str] = []
    for p in (SSH_PORT, *ports):
        p = p.strip()
        if p and p not in out:
            out.append(p)
    return out


def validate_spec(spec: PodSpec) -> None:
    """Refuse what v2 would reject, before anything is sent."""
    problems: list[str] = []
    if not spec.name.strip():
        problems.append("name must not be empty")
    if not spec.image.strip():
        problems.append("image must not be empty")
    if not spec.gpu_type_id.strip():
        problems.append("gpu_type_id must not be empty")
    if spec.gpu_count < 1:
        problems.append(f"gpu_count must be at least 1 (got {spec.gpu_count})")
    if spec.container_disk_gb < 1:
        problems.append(f"container_disk_gb must be at least 1 (got {spec.container_disk_gb})")
    if spec.volume_gb < 0 or 0 < spec.volume_gb < MIN_PERSISTENT_VOLUME_GB:
        problems.append(
            f"volume_gb must be 0 (no volume) or at least {MIN_PERSISTENT_VOLUME_GB} "
            f"(RunPod's minimum persistent volume); got {spec.volume_gb}"
        )
    if spec.volume_gb > 0 and not spec.volume_mount_path.startswith("/"):
        problems.append(f"volume_mount_path must be absolute (got {spec.volume_mount_path!r})")
    if spec.cloud_type not in _CLOUD:
        problems.append(f"cloud_type must be 'secure' or 'community' (got {spec.cloud_type!r})")
    problems += _mount_problems(spec.volume_gb, spec.network_volume_id, spec.volume_mount_path)
    if problems:
        raise InvalidRequest("invalid pod spec: " + "; ".join(problems))


def _mount_problems(volume_gb: int, network_volume_id: str | None, path: str) -> list[str]:
    if network_volume_id is None:
        return []
    problems = []
    if not network_volume_id.strip():
        problems.append("network_volume_id must not be empty")
    if volume_gb > 0:
        problems.append(
            "network_volume_id and volume_gb > 0 are mutually exclusive "
            "(RunPod mounts one volume: persistent or network)"
        )
    if not path.startswith("/"):
        problems.append(f"volume_mount_path must be absolute (got {path!r})")
    return problems


def _mounts(volume_gb: int, network_volume_id: str | None, path: str) -> dict[str, Any] | None:
    """`mounts` for a create body: a network volume, a persistent one, or none."""
    if network_volume_id:
        return {"network": [{"volumeId": network_volume_id, "path": path}]}
    if volume_gb > 0:
        return {"persistent": {"size": volume_gb, "path": path}}
    return None


def create_body(spec: PodSpec) -> dict[str, Any]:
    """The `CreatePodRequest` for this spec. Only fields the v2 schema accepts."""
    validate_spec(spec)
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        # Always send count: left out, every create failed "no instances available".
        "gpu": {"id": spec.gpu_type_id, "count": spec.gpu_count},
        "cloud": _CLOUD[spec.cloud_type],
        "disk": spec.container_disk_gb,
        "ports": with_ssh_port(spec.ports),
        "env": {str(k): str(v) for k, v in spec.env.items()},
    }
    if spec.data_center_ids:
        body["dataCenterIds"] = list(spec.data_center_ids)
    mounts = _mounts(spec.volume_gb, spec.network_volume_id, spec.volume_mount_path)
    if mounts is not None:
        body["mounts"] = mounts
    if spec.global_networking:
        body["globalNetworking"] = True
    return body


# --- ClusterSpec -> create body ---------------------------------------------


def validate_cluster_spec(spec: ClusterSpec) -> None:
    """Refuse what v2 would reject for a cluster, before anything is sent."""
    problems: list[str] = []
    if not spec.name.strip():
        problems.append("name must not be empty")
    if not spec.image.strip():
        problems.append("image must not be empty")
    if not spec.gpu_type_id.strip():
        problems.append("gpu_type_id must not be empty")
    if spec.gpu_count < 1:
        problems.append(f"gpu_count must be at least 1 (got {spec.gpu_count})")
    if not MIN_CLUSTER_NODES <= spec.node_count <= MAX_CLUSTER_NODES:
        problems.append(
            f"node_count must be between {MIN_CLUSTER_NODES} and {MAX_CLUSTER_NODES} "
            f"(got {spec.node_count})"
        )
    if spec.cloud_type != "secure":
        # CreateClusterRequest has no cloud field: Instant Clusters run on Secure Cloud.
        problems.append(f"Instant Clusters run on secure cloud only (got {spec.cloud_type!r})")
    if spec.container_disk_gb < 1:
        problems.append(f"container_disk_gb must be at least 1 (got {spec.container_disk_gb})")
    if spec.volume_gb < 0 or 0 < spec.volume_gb < MIN_PERSISTENT_VOLUME_GB:
        problems.append(
            f"volume_gb must be 0 (no volume) or at least {MIN_PERSISTENT_VOLUME_GB} "
            f"(RunPod's minimum persistent volume); got {spec.volume_gb}"
        )
    if spec.volume_gb > 0 and not spec.volume_mount_path.startswith("/"):
        problems.append(f"volume_mount_path must be absolute (got {spec.volume_mount_path!r})")
    problems += _mount_problems(spec.volume_gb, spec.network_volume_id, spec.volume_mount_path)
    if problems:
        raise InvalidRequest("invalid cluster spec: " + "; ".join(problems))


def cluster_body(spec: ClusterSpec) -> dict[str, Any]:
    """The `CreateClusterRequest` for this spec. Only fields the v2 schema accepts (no
    cloud, registry or globalNetworking: the members share the overlay network)."""
    validate_cluster_spec(spec)
    body: dict[str, Any] = {
        "name": spec.name,
        "type": CLUSTER_TYPE,
        "compute": {
            "gpuTypeId": spec.gpu_type_id,
            "gpuCountPerPod": spec.gpu_count,
            "podCount": spec.node_count,
        },
        "image": spec.image,
        "disk": spec.container_disk_gb,
        "ports": with_ssh_port(spec.ports),
        "env": {str(k): str(v) for k, v in spec.env.items()},
    }
    if spec.data_center_ids:
        body["dataCenterIds"] = list(spec.data_center_ids)
    mounts = _mounts(spec.volume_gb, spec.network_volume_id, spec.volume_mount_path)
    if mounts is not None:
        body["mounts"] = mounts
    return body


def describe_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body for a log line: env values replaced by their keys."""
    shown = {k: v for k, v in body.items() if k != "env"}
    if "env" in body:
        shown["env_keys"] = sorted(body["env"])
    return shown
