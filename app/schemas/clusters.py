"""Clusters: the request a caller sends and the responses it gets, with the limits callers
are held to."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.domain import pods
from app.domain.billing import prices
from app.settings import DEFAULT_IMAGE

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PORT = re.compile(r"^(\d{1,5})/(tcp|http|udp)$")
RESERVED_ENV = ("PUBLIC_KEY",)
RESERVED_ENV_PREFIX = "HANGAR_"
MAX_ENV_BYTES = 32 * 1024
MAX_SETUP_BYTES = 64 * 1024
# Control characters other than tab, newline and carriage return.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Multi-line text where tabs and newlines belong; NUL is still refused everywhere.
FREE_TEXT_FIELDS = ("setup", "env")

EXAMPLE_REQUEST = {
    "name": "train-llama",
    "gpu_type": "RTX 4090",
    "gpu_count": 1,
    "nodes": 2,
    "setup": "nvidia-smi && pip install -r requirements.txt",
    "env": {"WANDB_PROJECT": "llama"},
    "ttl_seconds": 3600,
    "max_hourly_cost": 2.0,
}


class ClusterCreate(BaseModel):
    """What a caller asks for. Unknown fields are refused so typos do not pass silently, and
    types are strict: `false` is not 0 and `"2"` is not 2."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [EXAMPLE_REQUEST]}
    )

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")]
    gpu_type: Annotated[
        str,
        Field(
            min_length=1, max_length=128,
            description="A catalog id or what a person would type: 'RTX 4090', '4090', 'h100 sxm'.",
        ),
    ]
    gpu_count: Annotated[int, Field(ge=1, le=8, description="GPUs per node")] = 1
    nodes: Annotated[int, Field(ge=1, le=64, description="Pods in the cluster")] = 1
    cloud_type: Literal["secure", "community"] = pods.CLOUD_TYPE  # type: ignore[assignment]
    allocation: Literal["on-demand", "spot", "spot-if-available"] = "on-demand"
    image: Annotated[
        str | None,
        Field(min_length=1, max_length=512, pattern=r"^\S+$",
              description="Container image; unset: the deployment's HANGAR_DEFAULT_IMAGE"),
    ] = None
    container_disk_gb: Annotated[int, Field(ge=1, le=2000)] = pods.CONTAINER_DISK_GB
    volume_gb: Annotated[
        int, Field(ge=0, le=4000, description="0 for no volume; RunPod's minimum is 10")
    ] = pods.VOLUME_GB
    volume_mount_path: Annotated[
        str, Field(min_length=2, max_length=255, pattern=r"^/[A-Za-z0-9._/-]*$")
    ] = pods.VOLUME_MOUNT_PATH
    ports: Annotated[list[str], Field(max_length=20)] = list(pods.PORTS)
    env: Annotated[dict[str, str], Field(max_length=100)] = {}
    data_center_ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]],
        Field(max_length=20),
    ] = []
    setup: Annotated[str, Field(max_length=MAX_SETUP_BYTES)] = ""
    ttl_seconds: Annotated[int | None, Field(ge=1, le=30 * 24 * 3600)] = None
    max_hourly_cost: Annotated[
        float | None, Field(gt=0, le=1_000_000, allow_inf_nan=False)
    ] = None

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, v: Any, info: ValidationInfo) -> Any:
        """No NUL anywhere (Postgres cannot store it), no control characters outside the
        free-text fields, no unpaired surrogates (not UTF-8)."""
        for text in _strings(v):
            if "\x00" in text:
                raise ValueError("contains a NUL character")
            if info.field_name not in FREE_TEXT_FIELDS and CONTROL.search(text):
                raise ValueError("contains a control character")
            try:
                text.encode()
            except UnicodeEncodeError:
                raise ValueError("contains an unpaired surrogate (not valid UTF-8)") from None
        return v

    @field_validator("volume_gb")
    @classmethod
    def _volume_min(cls, v: int) -> int:
        if 0 < v < 10:
            raise ValueError("must be 0 (no volume) or at least 10 (RunPod's minimum)")
        return v

    @field_validator("ports")
    @classmethod
    def _ports(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for p in v:
            m = PORT.match(p)
            if not m or not 1 <= int(m.group(1)) <= 65535:
                raise ValueError(f"{p!r} is not 'PORT/tcp' or 'PORT/http' with PORT in 1-65535")
            if p not in out:
                out.append(p)
        if pods.SSH_PORT not in out:
            out.insert(0, pods.SSH_PORT)  # SSH is how Hangar bootstraps the node
        return out

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        total = 0
        for name, value in v.items():
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
            if name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIX):
                raise ValueError(f"{name!r} is set by Hangar; choose another name")
            if "\x00" in value:
                raise ValueError(f"value of {name!r} contains a NUL byte")
            total += len(name.encode()) + len(value.encode())
        if total > MAX_ENV_BYTES:
            raise ValueError(f"env is {total} bytes; the limit is {MAX_ENV_BYTES}")
        return v

    @field_validator("setup")
    @classmethod
    def _setup(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("contains a NUL byte")
        if len(v.encode()) > MAX_SETUP_BYTES:
            raise ValueError(f"setup is larger than {MAX_SETUP_BYTES} bytes")
        return v

    @model_validator(mode="after")
    def _mount(self) -> ClusterCreate:
        if self.volume_gb and self.volume_mount_path == "/":
            raise ValueError("volume_mount_path cannot be '/'")
        return self


class ClusterUpdate(BaseModel):
    """What a caller may change on a live cluster."""

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"examples": [{"ttl_seconds": 7200}]})

    ttl_seconds: Annotated[int | None, Field(
        ge=1, le=30 * 24 * 3600,
        description="Seconds from `ready_at` until the cluster is torn down; null: never. "
        "An expiry already past tears it down now.")]


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [s for item in v for s in _strings(item)]
    if isinstance(v, dict):
        return [s for k, item in v.items() for s in (*_strings(k), *_strings(item))]
    return []


NodeStatusName = Literal[
    "pending", "creating", "starting", "bootstrapping", "ready", "terminating", "terminated"
]
ClusterStatusName = Literal[
    "pending", "provisioning", "bootstrapping", "ready", "terminating", "terminated", "failed"
]


class NodeOut(BaseModel):
    index: int
    status: NodeStatusName
    reason: str | None
    message: str | None
    pod_id: str | None
    public_ip: str | None
    ssh_port: int | None
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
    "env": {"WANDB_PROJECT": "llama"}, "data_center_ids": [], "setup": "nvidia-smi",
    "ttl_seconds": 3600, "max_hourly_cost": 2.0,
    "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... hangar-train-llama",
    "nodes": [{
        "index": 0, "status": "ready", "reason": None, "message": None,
        "pod_id": "hq3h1zqg3g2k1x", "public_ip": "203.0.113.7", "ssh_port": 22045,
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
    reason: str | None
    message: str | None
    gpu_type: str = Field(description="The resolved catalog id")
    gpu_type_requested: str
    gpu_count: int
    node_count: int
    cloud_type: str
    allocation: str
    image: str
    container_disk_gb: int
    volume_gb: int
    volume_mount_path: str
    ports: list[str]
    env: dict[str, str]
    data_center_ids: list[str]
    setup: str
    ttl_seconds: int | None
    max_hourly_cost: float | None
    ssh_public_key: str
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
    "env": "env", "data_center_ids": "data_center_ids", "setup": "setup",
    "ttl_seconds": "ttl_seconds", "max_hourly_cost": "max_hourly_cost",
    "ssh_public_key": "ssh_public_key", "created_at": "created_at", "ready_at": "ready_at",
    "expires_at": "expires_at", "terminated_at": "terminated_at",
}
NODE_COLUMNS: dict[str, str] = {
    "index": "index", "status": "status", "reason": "reason", "message": "message",
    "pod_id": "pod_id", "public_ip": "public_ip", "ssh_port": "ssh_port",
    "gpu_type": "gpu_type_id", "gpu_count": "gpu_count", "data_center_id": "data_center_id",
    "hourly_rate": "hourly_rate", "started_at": "started_at", "ready_at": "ready_at",
    "terminated_at": "terminated_at",
}
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
    if tuple(NODE_COLUMNS) != tuple(NodeOut.model_fields):
        raise RuntimeError("NODE_COLUMNS must list NodeOut's fields in its order")
    if not set(BILLING_COLUMNS) <= set(NODE_COLUMNS.values()):
        raise RuntimeError("the billing columns must be read with the nodes")


_check_encoder()


def node_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """One node's response fields, in NodeOut's order, from its columns."""
    return {field: row[column] for field, column in NODE_COLUMNS.items()}


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
