"""Typed, tolerant models of the RunPod REST v2 responses this client reads.

Unknown fields are ignored and everything not needed to map a pod or a GPU type
is optional, so an additive change on RunPod's side does not break parsing.
The pod's `env` is deliberately not modelled: it carries keys (PUBLIC_KEY, ...).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# --- pods -------------------------------------------------------------------


def _lenient_datetime(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
    """ISO 8601 as documented; also "2026-06-01 12:00:00.123 +0000 UTC"; else None."""
    if value is None or value == "":
        return None
    try:
        return handler(value)
    except ValidationError:
        pass
    if isinstance(value, str):
        text = re.sub(r"\s+UTC$", "", value.strip())
        for fmt in ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z"):
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
    return None


class PodGpu(_Model):
    id: str
    count: int = 1

    @field_validator("count", mode="before")
    @classmethod
    def _null_count(cls, v: object) -> object:
        return 1 if v is None else v


class SshEndpoint(_Model):
    host: str | None = None
    port: int | None = None
    username: str | None = None
    command: str | None = None


class PodSsh(_Model):
    proxy: SshEndpoint | None = None
    direct: SshEndpoint | None = None


class RuntimePort(_Model):
    private: int | None = None
    public: int | None = None
    type: str | None = None
    ip: str | None = None


class PodRuntime(_Model):
    uptime: int | None = None
    ports: list[RuntimePort] | None = None


class PersistentMount(_Model):
    size: int | None = None
    path: str | None = None


class NetworkMount(_Model):
    volume_id: str | None = None
    path: str | None = None


class PodMounts(_Model):
    persistent: PersistentMount | None = None
    network: list[NetworkMount] | None = None


class PodCluster(_Model):
    """`components.schemas.PodCluster`: a member's cluster, rank and overlay address."""

    id: str | None = None
    rank: int | None = None  # null until assigned during provisioning
    role: str | None = None
    ip: str | None = None  # omitted until assigned


class PodGlobalNetworking(_Model):
    """`components.schemas.PodGlobalNetworking`."""

    enabled: bool = False
    ip: str | None = None
    internal_dns: str | None = None

    @field_validator("enabled", mode="before")
    @classmethod
    def _null_enabled(cls, v: object) -> object:
        return False if v is None else v


class Pod(_Model):
    """`components.schemas.Pod`."""

    id: str
    name: str = ""
    status: str
    actions: list[str] = Field(default_factory=list)
    image: str | None = None
    disk: int | None = None
    ports: list[str] | None = None
    mounts: PodMounts | None = None
    gpu: PodGpu | None = None
    cloud: str | None = None
    data_center_id: str | None = None
    cuda_version: str | None = None
    ssh: PodSsh | None = None
    cost: float = 0.0
    locked: bool | None = None
    runtime: PodRuntime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    cluster: PodCluster | None = None
    global_networking: PodGlobalNetworking | None = None

    @field_validator("cost", mode="before")
    @classmethod
    def _null_cost(cls, v: object) -> object:
        return 0.0 if v is None else v

    @field_validator("created_at", "started_at", mode="wrap")
    @classmethod
    def _dates(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
        return _lenient_datetime(v, handler)


class Pagination(_Model):
    next_cursor: str | None = None
    has_next_page: bool = False


class ListPodsResponse(_Model):
    """`components.schemas.ListPodsResponse`, plus `pagination` of the later generation."""

    pods: list[Pod] = Field(default_factory=list)
    pagination: Pagination | None = None


# --- Instant Clusters ---------------------------------------------------------


class ClusterCompute(_Model):
    """`components.schemas.ClusterCompute`."""

    gpu_type_id: str | None = None
    gpu_count_per_pod: int | None = None
    pod_count: int | None = None


class ClusterNetwork(_Model):
    cidr: str | None = None
    vxlan_id: int | None = None
    vxlan_port: int | None = None


class ClusterPrimary(_Model):
    pod_id: str | None = None
    status: str | None = None
    ssh_endpoint: str | None = None


class ClusterPodsSummary(_Model):
    total: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)

    @field_validator("total", mode="before")
    @classmethod
    def _null_total(cls, v: object) -> object:
        return 0 if v is None else v

    @field_validator("by_status", mode="before")
    @classmethod
    def _counts(cls, v: object) -> object:
        # Counts only: anything else in the map is dropped rather than failing the read.
        if not isinstance(v, dict):
            return {}
        return {str(k): n for k, n in v.items() if isinstance(n, int) and not isinstance(n, bool)}


class Cluster(_Model):
    """`components.schemas.Cluster` (the summary; members come from `/clusters/{id}/pods`)."""

    id: str
    name: str = ""
    type: str | None = None
    compute: ClusterCompute = Field(default_factory=ClusterCompute)
    data_center_id: str | None = None
    pods: ClusterPodsSummary = Field(default_factory=ClusterPodsSummary)
    network: ClusterNetwork | None = None
    primary: ClusterPrimary | None = None
    created_at: datetime | None = None

    @field_validator("compute", "pods", mode="before")
    @classmethod
    def _null_obj(cls, v: object) -> object:
        return {} if v is None else v

    @field_validator("created_at", mode="wrap")
    @classmethod
    def _dates(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
        return _lenient_datetime(v, handler)


class ListClustersResponse(_Model):
    """`components.schemas.ListClustersResponse` (+ `pagination`, should it appear)."""

    clusters: list[Cluster] = Field(default_factory=list)
    pagination: Pagination | None = None


# --- network volumes ----------------------------------------------------------


class NetworkVolume(_Model):
    """`components.schemas.NetworkVolume` (its data center is `dataCenter`)."""

    id: str
    name: str = ""
    size: int | None = None
    data_center: str | None = None
    type: str | None = None


class ListNetworkVolumesResponse(_Model):
    network_volumes: list[NetworkVolume] = Field(default_factory=list)
    pagination: Pagination | None = None


# --- catalog ----------------------------------------------------------------


class GpuPrice(_Model):
    secure: float | None = None
    community: float | None = None
    serverless: float | None = None


class GpuMaxCount(_Model):
    secure: int | None = None
    community: int | None = None


class DataCenterAvailability(_Model):
    id: str
    name: str | None = None
    availability: str | None = None


class CudaVersionAvailability(_Model):
    version: str
    available: bool = False


class GpuType(_Model):
    """`components.schemas.GpuType`."""

    id: str
    name: str | None = None
    pool: str | None = None
    manufacturer: str | None = None
    memory: int | None = None
    secure: bool = False
    community: bool = False
    price: GpuPrice = Field(default_factory=GpuPrice)
    max_count: GpuMaxCount = Field(default_factory=GpuMaxCount)
    availability: str | None = None
    data_centers: list[DataCenterAvailability] = Field(default_factory=list)
    cuda_versions: list[CudaVersionAvailability] = Field(default_factory=list)

    @field_validator("data_centers", "cuda_versions", mode="before")
    @classmethod
    def _null_list(cls, v: object) -> object:
        return [] if v is None else v

    @field_validator("price", "max_count", mode="before")
    @classmethod
    def _null_obj(cls, v: object) -> object:
        return {} if v is None else v


class ListGpuTypesResponse(_Model):
    """`components.schemas.ListGpuTypesResponse`."""

    gpus: list[GpuType] = Field(default_factory=list)


# --- errors -----------------------------------------------------------------


class ErrorResponse(_Model):
    """`components.schemas.ErrorResponse` (problem+json)."""

    title: str = ""
    status: int | None = None
    detail: str = ""
    errors: list[str] = Field(default_factory=list)

    @field_validator("errors", mode="before")
    @classmethod
    def _errors(cls, v: object) -> object:
        if v is None:
            return []
        if isinstance(v, list):
            return [x if isinstance(x, str) else str(x) for x in v]
        return [str(v)]

    @field_validator("title", "detail", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return "" if v is None else str(v)
