"""RunPod v2 JSON <-> the provider protocol types. Pure functions, no I/O."""

from __future__ import annotations

import logging
from typing import Any

from app.domain.pods import SSH_PORT
from app.providers import base
from app.providers.base import InvalidRequest, PodSpec, PodState

from . import types as v2

log = logging.getLogger("hangar.runpod")

MIN_PERSISTENT_VOLUME_GB = 10  # v2 PersistentMount.size minimum
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
    if problems:
        raise InvalidRequest("invalid pod spec: " + "; ".join(problems))


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
    if spec.volume_gb > 0:
        body["mounts"] = {"persistent": {"size": spec.volume_gb, "path": spec.volume_mount_path}}
    return body


def describe_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body for a log line: env values replaced by their keys."""
    shown = {k: v for k, v in body.items() if k != "env"}
    if "env" in body:
        shown["env_keys"] = sorted(body["env"])
    return shown
