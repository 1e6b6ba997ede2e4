"""The small protocol the workers speak to a GPU cloud.

A provider turns these calls into its own API; its JSON never leaves its folder.
A second provider is a new folder implementing `Provider`, not new `if`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from app.domain import pods

CloudType = Literal["secure", "community"]


class PodState(StrEnum):
    """Observed pod state, as the provider reports it."""

    PROVISIONING = "PROVISIONING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    ERROR = "ERROR"
    TERMINATED = "TERMINATED"


@dataclass(frozen=True)
class PodSpec:
    """Everything needed to create one pod. `gpu_type_id` is a single catalog id."""

    name: str
    image: str
    gpu_type_id: str
    gpu_count: int
    cloud_type: CloudType = pods.CLOUD_TYPE  # type: ignore[assignment]
    container_disk_gb: int = pods.CONTAINER_DISK_GB
    volume_gb: int = pods.VOLUME_GB  # 0 means no persistent volume
    volume_mount_path: str = pods.VOLUME_MOUNT_PATH
    ports: tuple[str, ...] = pods.PORTS
    env: Mapping[str, str] = field(default_factory=dict)
    data_center_ids: tuple[str, ...] = ()  # empty: provider chooses
    # A private address reachable from the account's other globally networked pods
    # (`Pod.private_ip`); only in data centers that offer it.
    global_networking: bool = False
    # An existing network volume mounted at `volume_mount_path` (then `volume_gb` must be
    # 0); the pod is placed in the volume's data center.
    network_volume_id: str | None = None


@dataclass(frozen=True)
class Pod:
    """A pod as last read from the provider."""

    id: str
    name: str
    status: PodState
    cost_per_hour: float  # USD per hour for the whole pod, as billed
    gpu_type_id: str | None
    gpu_count: int
    data_center_id: str | None
    ssh_host: str | None  # public IP for direct SSH, None until assigned
    ssh_port: int | None  # public port mapped to 22/tcp, None until assigned
    created_at: datetime | None
    started_at: datetime | None
    # The pod's private address: its overlay address in an Instant Cluster, else its
    # global networking address. None until the provider has assigned one.
    private_ip: str | None = None
    cluster_id: str | None = None  # the Instant Cluster this pod is a member of
    cluster_rank: int | None = None  # the member's rank (0 = primary), None until assigned

    @property
    def is_gone(self) -> bool:
        return self.status is PodState.TERMINATED

    @property
    def has_failed(self) -> bool:
        return self.status in (PodState.EXITED, PodState.ERROR)

    @property
    def ssh_ready(self) -> bool:
        return self.status is PodState.RUNNING and bool(self.ssh_host) and bool(self.ssh_port)


@dataclass(frozen=True)
class ClusterSpec:
    """Everything needed to create one Instant Cluster: `node_count` identical pods of
    `gpu_count` GPUs in one data center on a private overlay network."""

    name: str
    image: str
    gpu_type_id: str
    gpu_count: int  # per node
    node_count: int  # 2..250
    cloud_type: CloudType = "secure"  # Instant Clusters are Secure Cloud only
    container_disk_gb: int = 50
    volume_gb: int = 20  # 0 means no persistent volume
    volume_mount_path: str = "/workspace"
    network_volume_id: str | None = None  # mounted at volume_mount_path; volume_gb 0
    ports: tuple[str, ...] = ("22/tcp",)
    env: Mapping[str, str] = field(default_factory=dict)
    data_center_ids: tuple[str, ...] = ()  # empty: provider chooses; one is used


@dataclass(frozen=True)
class Cluster:
    """An Instant Cluster as last read from the provider.

    `members` are the member pods (`Pod.cluster_rank`, `Pod.private_ip` = overlay
    address); empty when the cluster was read without them (`list_clusters`, or the
    answer to `create_cluster`).
    """

    id: str
    name: str
    gpu_type_id: str | None
    gpu_count: int  # per node
    node_count: int  # as requested
    data_center_id: str | None
    created_at: datetime | None
    member_count: int = 0  # member pods currently provisioned
    members_by_status: Mapping[str, int] = field(default_factory=dict)
    network_cidr: str | None = None  # the overlay network, None until provisioned
    primary_pod_id: str | None = None
    members: tuple[Pod, ...] = ()

    @property
    def cost_per_hour(self) -> float:
        """USD per hour billed for the members read (RunPod bills per member pod)."""
        return round(sum(m.cost_per_hour for m in self.members), 6)

    def members_by_rank(self) -> list[Pod] | None:
        """Members ordered by rank, or None until every member has its rank assigned."""
        ranked = sorted(
            (m for m in self.members if not m.is_gone),
            key=lambda m: -1 if m.cluster_rank is None else m.cluster_rank,
        )
        if [m.cluster_rank for m in ranked] != list(range(self.node_count)):
            return None
        return ranked

    @property
    def all_ready(self) -> bool:
        """Every member runs, with public SSH and an overlay address."""
        ranked = self.members_by_rank()
        return ranked is not None and all(m.ssh_ready and m.private_ip for m in ranked)


@dataclass(frozen=True)
class NetworkVolume:
    """An existing network volume of the account (read only for Hangar)."""

    id: str
    name: str
    size_gb: int | None
    data_center_id: str | None
    type: str | None = None  # STANDARD, HIGH_PERFORMANCE


@dataclass(frozen=True)
class DataCenterStock:
    id: str
    availability: str  # NONE, LOW, MEDIUM, HIGH


@dataclass(frozen=True)
class GpuType:
    """One catalog entry. Prices are USD per hour for one GPU."""

    id: str
    display_name: str
    memory_gb: int | None
    secure: bool
    community: bool
    price_secure: float | None
    price_community: float | None
    availability: str | None = None  # NONE, LOW, MEDIUM, HIGH when known
    data_centers: tuple[DataCenterStock, ...] = ()
    max_count_secure: int | None = None
    max_count_community: int | None = None

    def price(self, cloud_type: CloudType) -> float | None:
        return self.price_secure if cloud_type == "secure" else self.price_community

    def offered_on(self, cloud_type: CloudType) -> bool:
        return self.secure if cloud_type == "secure" else self.community


# --- errors -----------------------------------------------------------------


class ProviderError(Exception):
    """Base of every error a provider raises. `reason` is a Hangar failure reason."""

    reason = "provider_error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CapacityError(ProviderError):
    """No machine for this GPU type / data center right now: try the next candidate."""

    reason = "no_capacity"


class InvalidCredentials(ProviderError):
    reason = "invalid_credentials"


class AccessDenied(ProviderError):
    """Key is valid but may not use this resource (403): skip the candidate."""

    reason = "invalid_credentials"


class InsufficientBalance(ProviderError):
    reason = "budget_exceeded"


class NotFound(ProviderError):
    reason = "provider_error"


class InvalidRequest(ProviderError):
    """The provider rejected the request itself (422, or 400 not about capacity)."""

    reason = "provider_error"


class RateLimited(ProviderError):
    reason = "provider_error"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, status: int = 429):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(ProviderError):
    reason = "provider_error"
    retryable = True


class TransportError(ProviderError):
    """The request may or may not have reached the provider (timeout, reset)."""

    reason = "provider_error"
    retryable = True


class GpuTypeNotFound(ProviderError):
    """What the caller typed matches no catalog entry. `candidates` lists the catalog."""

    reason = "invalid_request"

    def __init__(self, message: str, *, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class GpuTypeAmbiguous(GpuTypeNotFound):
    """What the caller typed matches several catalog entries, listed in `candidates`."""


# --- protocol ---------------------------------------------------------------


class Provider(Protocol):
    """What the workers and the API need from a GPU cloud."""

    name: str
    supports_spot: bool

    async def create_pod(self, spec: PodSpec) -> Pod:
        """Create one pod. Never retried where a duplicate could result."""

    async def get_pod(self, pod_id: str) -> Pod | None:
        """The pod, or None when the provider no longer knows it."""

    async def list_pods(self, name_prefix: str | None = None) -> list[Pod]:
        """Every pod of the account (all pages), filtered by name prefix client-side."""

    async def find_pod_by_name(self, name: str) -> Pod | None:
        """The live pod carrying exactly this name, if any."""

    async def terminate_pod(self, pod_id: str) -> None:
        """Terminate; returns once the provider confirms it is gone (already gone is fine)."""

    async def gpu_types(self, *, refresh: bool = False) -> list[GpuType]:
        """The catalog with prices and availability, cached with a TTL."""

    async def resolve_gpu_type(self, query: str) -> GpuType:
        """Map what a person typed to one catalog entry, or raise GpuTypeNotFound/Ambiguous."""

    # Instant Clusters: one create and one delete per cluster; members come and go with it.

    async def create_cluster(self, spec: ClusterSpec) -> Cluster:
        """Create an Instant Cluster (all members or none). Never retried where a duplicate
        could result: after a `TransportError`/`ServerError` look it up by name."""

    async def get_cluster(self, cluster_id: str) -> Cluster | None:
        """The cluster with its members, or None when the provider no longer knows it."""

    async def list_clusters(self, name_prefix: str | None = None) -> list[Cluster]:
        """Every cluster of the account (without members), filtered by name prefix."""

    async def find_cluster_by_name(self, name: str) -> Cluster | None:
        """The cluster carrying exactly this name, if any (without members)."""

    async def delete_cluster(self, cluster_id: str) -> None:
        """Delete the cluster and every member; returns once confirmed (404 is gone too)."""

    # Network volumes (read only).

    async def list_network_volumes(self) -> list[NetworkVolume]: ...

    async def get_network_volume(self, volume_id: str) -> NetworkVolume | None:
        """The volume, or None when the account has no such volume."""

    async def aclose(self) -> None: ...
