"""Request and response models of the HTTP API, with the limits callers are held to."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

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
    cloud_type: Literal["secure", "community"] = "secure"
    allocation: Literal["on-demand", "spot", "spot-if-available"] = "on-demand"
    image: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")] = DEFAULT_IMAGE
    container_disk_gb: Annotated[int, Field(ge=1, le=2000)] = 50
    volume_gb: Annotated[
        int, Field(ge=0, le=4000, description="0 for no volume; RunPod's minimum is 10")
    ] = 20
    volume_mount_path: Annotated[
        str, Field(min_length=2, max_length=255, pattern=r"^/[A-Za-z0-9._/-]*$")
    ] = "/workspace"
    ports: Annotated[list[str], Field(max_length=20)] = ["22/tcp"]
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
        if "22/tcp" not in out:
            out.insert(0, "22/tcp")  # SSH is how Hangar bootstraps the node
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


class EventOut(BaseModel):
    id: int
    type: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    last_id: int = Field(description="Pass as `after` to continue")
    finished: bool = Field(description="The cluster is terminal and every node terminated")


class GpuTypeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "NVIDIA GeForce RTX 4090", "display_name": "RTX 4090", "memory_gb": 24,
        "secure": True, "community": True, "price_secure": 0.69, "price_community": 0.44,
        "availability": "HIGH",
        "data_centers": [{"id": "EU-RO-1", "availability": "HIGH"}],
    }]})

    id: str = Field(description="Catalog id: what `gpu_type` resolves to")
    display_name: str
    memory_gb: int | None = Field(description="GPU memory")
    secure: bool = Field(description="Offered on the secure cloud")
    community: bool = Field(description="Offered on the community cloud")
    price_secure: float | None = Field(description="USD per GPU per hour, on-demand, secure")
    price_community: float | None = Field(description="USD per GPU per hour, on-demand, community")
    availability: str | None = Field(description="Best stock level: HIGH, MEDIUM, LOW or NONE")
    data_centers: list[dict[str, str]] = Field(description="`id` and `availability` of each")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `env.MY_VAR`")
    message: str


class Problem(BaseModel):
    """An error, as `application/problem+json` (RFC 9457). `code` is stable and
    machine-readable; `detail` says what to change."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{
                "type": "https://hangar.dev/problems/unknown_gpu_type",
                "title": "Unknown gpu type",
                "status": 422,
                "detail": "gpu_type 'rtx 9999' matches no GPU type; the catalog has: ...",
                "code": "unknown_gpu_type",
                "instance": "/clusters",
                "request_id": "3f0c2a0d9b7e4f7c8d1e2a3b4c5d6e7f",
            }]
        },
    )

    type: str = Field(description="URI naming the problem type")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it")
    code: str = Field(description="Machine-readable problem code")
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = Field(default=None, description="Quote it when reporting")
    errors: list[FieldError] | None = Field(
        default=None, description="Invalid fields (code `invalid_request`)"
    )
    limit: str | None = Field(default=None, description="The team limit hit (429)")
    candidates: list[str] | None = Field(
        default=None, description="GPU types that match, or the catalog (422)"
    )
