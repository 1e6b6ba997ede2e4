"""What a caller sends to create or change a cluster, with the limits callers are held to
(the responses and their encoder: app/schemas/clusters.py)."""

from __future__ import annotations

import re
from typing import Annotated, Any

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
from app.domain.sshkeys import MAX_KEY_CHARS, MAX_KEYS, check_public_key
from app.schemas.enums import Allocation, CloudType, Network

# Independent pods per cluster (one create each), and RunPod's Instant Cluster range
# (`ClusterCompute.podCount`: one create for the whole cluster).
MAX_POD_NODES = 64
MIN_CLUSTER_NODES, MAX_CLUSTER_NODES = 2, 250
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
    cloud_type: CloudType = pods.CLOUD_TYPE  # type: ignore[assignment]
    allocation: Allocation = "on-demand"
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


