"""Clusters: the request a caller sends and the responses it gets, with the limits callers
are held to."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.domain import pods
from app.domain.billing import prices
from app.domain.sshkeys import MAX_KEY_CHARS, MAX_KEYS, check_public_key
from app.domain.status import ClusterStatus, NodeStatus, Reason
from app.settings import DEFAULT_IMAGE

# Independent pods per cluster (one create each), and RunPod's Instant Cluster range
# (`ClusterCompute.podCount`: one create for the whole cluster).
MAX_POD_NODES = 64
MIN_CLUSTER_NODES, MAX_CLUSTER_NODES = 2, 250
Network = Literal["public", "private", "cluster"]
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
    "secrets": {"HF_TOKEN": "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    "ssh_public_keys": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG2vQ4xXvYxUQ0o2wD4dY4qf0nqgZbCwq7fS7fWvX1c1 ada"
    ],
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
    network: Annotated[
        Network,
        Field(description=(
            "How the nodes reach each other. `public`: independent pods, `HANGAR_HEAD_ADDR` "
            "is node 0's public IP. `private`: independent pods with RunPod global "
            "networking, each with a private address the others reach. `cluster`: one "
            "RunPod Instant Cluster (2-250 nodes in one data center, secure cloud, a private "
            "overlay network). See `private_ip` on the nodes.")),
    ] = "public"
    nodes: Annotated[int, Field(
        ge=1, le=MAX_CLUSTER_NODES,
        description=f"Pods in the cluster: 1-{MAX_POD_NODES} independent pods, or "
        f"{MIN_CLUSTER_NODES}-{MAX_CLUSTER_NODES} with `network: cluster`")] = 1
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
    ssh_public_keys: Annotated[
        list[Annotated[str, Field(max_length=MAX_KEY_CHARS), AfterValidator(check_public_key)]],
        Field(max_length=MAX_KEYS, description=(
            "OpenSSH public keys (ssh-ed25519, ssh-rsa of 2048 bits or more, ecdsa-sha2-*, "
            "sk-*) installed for root on every node beside Hangar's own, so you can log in "
            "(each node's `ssh_command` and `ssh_host_key`)")),
    ] = []
    secrets: Annotated[
        dict[str, SecretStr],
        Field(max_length=100, description=(
            "Like `env` (same names and limits), but stored encrypted, exported only to the "
            "setup script over SSH (never in the pod's environment or sent to RunPod), never "
            "returned (responses list `secret_names`); a value that appears in bootstrap "
            "output becomes `[redacted]`. Deleted when the cluster ends.")),
    ] = {}
    network_volume_id: Annotated[
        str | None,
        Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description=(
            "An existing RunPod network volume (`GET /network-volumes`), mounted at "
            "`volume_mount_path` on every node; the cluster is placed in its data center. "
            "`volume_gb` is then 0 (RunPod mounts one volume per pod); sending it above 0 "
            "is a 422.")),
    ] = None
    ttl_seconds: Annotated[int | None, Field(ge=1, le=30 * 24 * 3600)] = None
    max_hourly_cost: Annotated[
        float | None, Field(gt=0, le=1_000_000, allow_inf_nan=False)
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _network_volume_defaults(cls, data: Any) -> Any:
        # With a network volume the persistent volume defaults to none: RunPod mounts one.
        if isinstance(data, dict) and data.get("network_volume_id") and "volume_gb" not in data:
            return {**data, "volume_gb": 0}
        return data

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

    @field_validator("volume_mount_path")
    @classmethod
    def _mount_path(cls, v: str) -> str:
        if ".." in v.split("/"):
            raise ValueError("must not contain a '..' segment (a path inside the pod, from /)")
        return v

    @field_validator("nodes")
    @classmethod
    def _nodes_for_network(cls, v: int, info: ValidationInfo) -> int:
        network = info.data.get("network")
        if network == "cluster" and not MIN_CLUSTER_NODES <= v <= MAX_CLUSTER_NODES:
            raise ValueError(
                f"network 'cluster' (one RunPod Instant Cluster) needs {MIN_CLUSTER_NODES} "
                f"to {MAX_CLUSTER_NODES} nodes; use network 'public' or 'private' for one node")
        if network != "cluster" and v > MAX_POD_NODES:
            raise ValueError(
                f"at most {MAX_POD_NODES} nodes as independent pods; network 'cluster' (one "
                f"RunPod Instant Cluster) takes up to {MAX_CLUSTER_NODES}")
        return v

    @field_validator("cloud_type")
    @classmethod
    def _instant_cluster_cloud(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("network") == "cluster" and v != "secure":
            raise ValueError(
                "RunPod Instant Clusters (network 'cluster') run on the secure cloud only; "
                "send cloud_type 'secure' (the default), or use network 'public' or "
                "'private' for community pods")
        return v

    @field_validator("network_volume_id")
    @classmethod
    def _one_volume(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("volume_gb"):
            raise ValueError(
                "a network volume replaces the pod volume (RunPod mounts one): leave "
                "volume_gb out or send 0; the network volume is mounted at volume_mount_path")
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

    @field_validator("ssh_public_keys")
    @classmethod
    def _distinct_keys(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for line in v:
            blob = line.split()[1]
            if blob not in seen:  # the same key twice is installed once
                seen.add(blob)
                out.append(line)
        return out

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, SecretStr], info: ValidationInfo) -> dict[str, SecretStr]:
        # Never quote a value in a message: a 422 must not echo a secret.
        both = sorted(set(v) & set(info.data.get("env") or {}))
        if both:
            raise ValueError(f"{', '.join(both)} also in env; name each variable once")
        total = 0
        for name, secret in v.items():
            value = secret.get_secret_value()
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
            if name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIX):
                raise ValueError(f"{name!r} is set by Hangar; choose another name")
            if "\x00" in value:
                raise ValueError(f"value of {name!r} contains a NUL byte")
            try:
                total += len(name.encode()) + len(value.encode())
            except UnicodeEncodeError:
                raise ValueError(f"value of {name!r} is not valid UTF-8 "
                                 "(an unpaired surrogate)") from None
        if total > MAX_ENV_BYTES:
            raise ValueError(f"secrets are {total} bytes; the limit is {MAX_ENV_BYTES}")
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
        if (self.volume_gb or self.network_volume_id) and self.volume_mount_path == "/":
            raise ValueError("volume_mount_path cannot be '/'")
        return self

    def secret_values(self) -> dict[str, str]:
        """The secrets in the clear (to encrypt them; never to answer with)."""
        return {name: value.get_secret_value() for name, value in self.secrets.items()}



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


# Literal types render as enums in the OpenAPI document (one place: the domain's enums).
NodeStatusName = Literal[tuple(s.value for s in NodeStatus)]  # type: ignore[valid-type]
ClusterStatusName = Literal[tuple(s.value for s in ClusterStatus)]  # type: ignore[valid-type]
ReasonName = Literal[tuple(r.value for r in Reason)]  # type: ignore[valid-type]


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
    cloud_type: Literal["secure", "community"]
    allocation: Literal["on-demand", "spot", "spot-if-available"]
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
