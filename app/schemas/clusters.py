"""Clusters as the API answers them, and the one encoder from rows to responses (the
request: app/schemas/cluster_request.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.domain.billing import prices
from app.schemas.enums import (
    Allocation,
    CloudType,
    ClusterStatusName,
    Network,
    NodeStatusName,
    ReasonName,
)
from app.settings import DEFAULT_IMAGE


class NodeOut(BaseModel):
    index: int
    status: NodeStatusName
    reason: ReasonName | None
    message: str | None
    pod_id: str | None
    public_ip: str | None
    ssh_port: int | None
    private_ip: str | None = Field(
        description="The node's address on the cluster's private network (null without one)")
    ssh_command: str | None = Field(description=(
        "What to type to log in with one of your `ssh_public_keys`, e.g. "
        "`ssh root@203.0.113.7 -p 22045`; null until the node has an address and once it "
        "is terminated (the address may then be another pod's)"))
    ssh_host_key: str | None = Field(description=(
        "The node's SSH host key as Hangar pinned it, an OpenSSH public-key line (for "
        "known_hosts); null until pinned"))
    gpu_type: str | None
    gpu_count: int
    data_center_id: str | None
    hourly_rate: float | None = Field(description="USD per hour as RunPod bills this pod")
    started_at: datetime | None
    ready_at: datetime | None
    terminated_at: datetime | None


EXAMPLE_CLUSTER = {
    "id": "6f1c1f52-4a57-4bb8-9d43-2f0f4f0f3c11", "name": "train-llama", "status": "ready",
    "reason": None, "message": None, "gpu_type": "NVIDIA GeForce RTX 4090",
    "gpu_type_requested": "RTX 4090", "gpu_count": 1, "node_count": 1, "cloud_type": "secure",
    "allocation": "on-demand", "image": DEFAULT_IMAGE, "container_disk_gb": 50,
    "volume_gb": 20, "volume_mount_path": "/workspace", "ports": ["22/tcp"],
    "env": {"WANDB_PROJECT": "llama"}, "data_center_ids": [], "network": "public",
    "network_volume_id": None, "provider_cluster_id": None, "setup": "nvidia-smi",
    "ttl_seconds": 3600, "max_hourly_cost": 2.0,
    "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... hangar-train-llama",
    "ssh_public_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... ada@laptop"],
    "secret_names": ["HF_TOKEN"],
    "nodes": [{
        "index": 0, "status": "ready", "reason": None, "message": None,
        "pod_id": "hq3h1zqg3g2k1x", "public_ip": "203.0.113.7", "ssh_port": 22045,
        "private_ip": None, "ssh_command": "ssh root@203.0.113.7 -p 22045",
        "ssh_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...",
        "gpu_type": "NVIDIA GeForce RTX 4090", "gpu_count": 1, "data_center_id": "EU-RO-1",
        "hourly_rate": 0.69, "started_at": "2026-11-29T10:00:05Z",
        "ready_at": "2026-11-29T10:01:12Z", "terminated_at": None,
    }],
    "hourly_rate": 0.69, "accrued_cost": 0.0345, "created_at": "2026-11-29T10:00:00Z",
    "ready_at": "2026-11-29T10:01:12Z", "expires_at": "2026-11-29T11:01:12Z",
    "terminated_at": None,
}


class ClusterOut(BaseModel):
    id: uuid.UUID
    name: str
    status: ClusterStatusName
    reason: ReasonName | None
    message: str | None
    gpu_type: str = Field(description="The resolved catalog id")
    gpu_type_requested: str
    gpu_count: int
    node_count: int
    cloud_type: CloudType
    allocation: Allocation
    image: str
    container_disk_gb: int
    volume_gb: int
    volume_mount_path: str
    ports: list[str]
    env: dict[str, str]
    data_center_ids: list[str]
    network: Network
    network_volume_id: str | None
    provider_cluster_id: str | None = Field(
        description="The RunPod Instant Cluster's id (network `cluster`, once created), else null")
    setup: str
    ttl_seconds: int | None
    max_hourly_cost: float | None
    ssh_public_key: str = Field(description="Hangar's own key on the nodes")
    ssh_public_keys: list[str] = Field(description="Your keys on the nodes, as accepted")
    secret_names: list[str] = Field(description="Names of the secrets (never their values)")
    nodes: list[NodeOut]
    hourly_rate: float = Field(description="USD per hour: sum over nodes still billing")
    accrued_cost: float = Field(description="USD so far, billed per second from RunPod's rates")
    created_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None
    terminated_at: datetime | None

    model_config = ConfigDict(populate_by_name=True,
                              json_schema_extra={"examples": [EXAMPLE_CLUSTER]})


class ClusterPage(BaseModel):
    items: list[ClusterOut]
    next: str | None = Field(description="URL of the next page, or null")




# --- from rows to responses: the one encoder ----------------------------------------------
#
# Response field -> column, in response order. Both ways of answering use these: `to_out`
# (ORM objects, for the rare writes that answer with the cluster) and the raw read path of
# `GET /clusters[/{id}]` (app/api/readpath.py, rows straight from the driver). A new field
# that is a column is one line here; a computed one goes into `node_view`/`cluster_view`.
CLUSTER_COLUMNS: dict[str, str] = {
    "id": "id", "name": "name", "status": "status", "reason": "reason",
    "message": "message", "gpu_type": "gpu_type_id", "gpu_type_requested": "gpu_type",
    "gpu_count": "gpu_count", "node_count": "node_count", "cloud_type": "cloud_type",
    "allocation": "allocation", "image": "image", "container_disk_gb": "container_disk_gb",
    "volume_gb": "volume_gb", "volume_mount_path": "volume_mount_path", "ports": "ports",
    "env": "env", "data_center_ids": "data_center_ids",
    "network": "network", "network_volume_id": "network_volume_id",
    "provider_cluster_id": "provider_cluster_id", "setup": "setup",
    "ttl_seconds": "ttl_seconds", "max_hourly_cost": "max_hourly_cost",
    "ssh_public_key": "ssh_public_key", "ssh_public_keys": "ssh_public_keys",
    "secret_names": "secret_names", "created_at": "created_at", "ready_at": "ready_at",
    "expires_at": "expires_at", "terminated_at": "terminated_at",
}
NODE_COLUMNS: dict[str, str] = {
    "index": "index", "status": "status", "reason": "reason", "message": "message",
    "pod_id": "pod_id", "public_ip": "public_ip", "ssh_port": "ssh_port",
    "private_ip": "private_ip", "ssh_host_key": "host_key", "gpu_type": "gpu_type_id",
    "gpu_count": "gpu_count", "data_center_id": "data_center_id",
    "hourly_rate": "hourly_rate", "started_at": "started_at", "ready_at": "ready_at",
    "terminated_at": "terminated_at",
}


def ssh_command(row: Mapping[str, Any]) -> str | None:
    """What a person types to log into the node (null without an address, and once the
    node is terminated: its address may then be another pod's)."""
    if not row["public_ip"] or not row["ssh_port"] or row["status"] == "terminated":
        return None
    return f"ssh root@{row['public_ip']} -p {row['ssh_port']}"


# Node fields computed from the node's columns (read with NODE_COLUMNS).
NODE_COMPUTED = {"ssh_command": ssh_command}
_NODE_ORDER = tuple(NodeOut.model_fields)
# Computed at response time from the nodes (prices move with the clock), in this order.
PRICED_FIELDS = ("nodes", "hourly_rate", "accrued_cost")
_ORDER = tuple(ClusterOut.model_fields)
_AT = _ORDER.index("nodes")
HEAD_FIELDS, TAIL_FIELDS = _ORDER[:_AT], _ORDER[_AT + len(PRICED_FIELDS):]
# The node columns billing needs, read by the pricing of both paths.
BILLING_COLUMNS = ("hourly_rate", "started_at", "terminated_at")


def _check_encoder() -> None:
    """The mappings match the models (checked at import, also under `python -O`)."""
    if _ORDER[_AT:_AT + len(PRICED_FIELDS)] != PRICED_FIELDS:
        raise RuntimeError(f"ClusterOut must list {PRICED_FIELDS} together, in that order")
    if tuple(CLUSTER_COLUMNS) != HEAD_FIELDS + TAIL_FIELDS:
        raise RuntimeError("CLUSTER_COLUMNS must list ClusterOut's column fields in its order")
    if tuple(f for f in _NODE_ORDER if f not in NODE_COMPUTED) != tuple(NODE_COLUMNS):
        raise RuntimeError("NODE_COLUMNS must list NodeOut's column fields in its order")
    if not set(NODE_COMPUTED) <= set(_NODE_ORDER):
        raise RuntimeError("NODE_COMPUTED must name NodeOut fields")
    if not set(BILLING_COLUMNS) <= set(NODE_COLUMNS.values()):
        raise RuntimeError("the billing columns must be read with the nodes")


_check_encoder()


def node_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One node's response fields, in NodeOut's order, from its columns."""
    return {field: NODE_COMPUTED[field](row) if field in NODE_COMPUTED
            else row[NODE_COLUMNS[field]] for field in _NODE_ORDER}


def billing_of(nodes: Sequence[Mapping[str, Any]]) -> tuple[tuple[Any, Any, Any], ...]:
    """(hourly_rate, started_at, terminated_at) of each node row: what prices need."""
    return tuple((n["hourly_rate"], n["started_at"], n["terminated_at"]) for n in nodes)


def cluster_view(row: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]],
                 now: datetime) -> dict[str, Any]:
    """A cluster's response fields in ClusterOut's order, from its columns and its nodes'
    columns, priced at `now`."""
    hourly, accrued = prices(billing_of(nodes), now)
    fields = {field: row[CLUSTER_COLUMNS[field]] for field in HEAD_FIELDS}
    fields.update(nodes=[node_view(n) for n in nodes], hourly_rate=hourly,
                  accrued_cost=accrued)
    fields.update({field: row[CLUSTER_COLUMNS[field]] for field in TAIL_FIELDS})
    return fields


def columns_of(obj: Any, columns: Mapping[str, str]) -> dict[str, Any]:
    """An ORM object's values of these columns (attributes carry the column names)."""
    return {column: getattr(obj, column) for column in columns.values()}


def to_out(cluster: Any, now: datetime | None = None) -> ClusterOut:
    """The response for a cluster loaded as ORM objects (with its nodes)."""
    now = now or datetime.now(UTC)
    nodes = [columns_of(n, NODE_COLUMNS) for n in cluster.nodes]
    return ClusterOut.model_validate(
        cluster_view(columns_of(cluster, CLUSTER_COLUMNS), nodes, now))
