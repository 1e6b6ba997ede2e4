"""Request and response models of the HTTP API, with the limits callers are held to."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.settings import DEFAULT_IMAGE

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PORT = re.compile(r"^(\d{1,5})/(tcp|http|udp)$")
RESERVED_ENV = ("PUBLIC_KEY",)
RESERVED_ENV_PREFIX = "HANGAR_"
MAX_ENV_BYTES = 32 * 1024
MAX_SETUP_BYTES = 64 * 1024

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
    """What a caller asks for. Unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_REQUEST]})

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
    max_hourly_cost: Annotated[float | None, Field(gt=0, le=1_000_000)] = None

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

    model_config = ConfigDict(populate_by_name=True)


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
    id: str
    display_name: str
    memory_gb: int | None
    secure: bool
    community: bool
    price_secure: float | None = Field(description="USD per GPU per hour, on-demand")
    price_community: float | None
    availability: str | None
    data_centers: list[dict[str, str]]
