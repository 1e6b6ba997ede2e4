"""What the API returns, as plain dataclasses.

Built to outlive the server they were written against: unknown fields are ignored (and
kept in `raw`), unknown status values become enum members of their own instead of
errors, and fields a server does not send yet are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class _OpenEnum(StrEnum):
    """A string enum that accepts values it does not know: `ClusterStatus("hibernating")` is
    a member named HIBERNATING, equal to the string, so a newer server cannot break an older
    client. Compare with members or plain strings."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper().replace("-", "_").replace(".", "_")
        member._value_ = value
        return member

    @property
    def known(self) -> bool:
        """False for a value this client version has no member for."""
        return self._name_ in type(self).__members__


class ClusterStatus(_OpenEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (ClusterStatus.TERMINATED, ClusterStatus.FAILED)


class NodeStatus(_OpenEnum):
    PENDING = "pending"
    CREATING = "creating"
    STARTING = "starting"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class Network(_OpenEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    CLUSTER = "cluster"


class Availability(_OpenEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    NONE = "NONE"


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _enum(cls: type[_OpenEnum], value: Any, default: str | None = None) -> Any:
    if isinstance(value, str) and value:
        return cls(value)
    return cls(default) if default else None


def _dict(value: Any) -> dict:
    return dict(value) if isinstance(value, dict) else {}


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True, kw_only=True)
class Node:
    """One pod of a cluster."""

    index: int
    status: NodeStatus
    reason: str | None = None
    message: str | None = None
    pod_id: str | None = None
    public_ip: str | None = None
    ssh_port: int | None = None
    gpu_type: str | None = None
    gpu_count: int | None = None
    data_center_id: str | None = None
    hourly_rate: float | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    terminated_at: datetime | None = None
    private_ip: str | None = None
    ssh_command: str | None = None
    ssh_host_key: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> Node:
        return cls(
            index=_int(d.get("index")) or 0,
            status=_enum(NodeStatus, d.get("status"), "unknown"),
            reason=_str(d.get("reason")),
            message=_str(d.get("message")),
            pod_id=_str(d.get("pod_id")),
            public_ip=_str(d.get("public_ip")),
            ssh_port=_int(d.get("ssh_port")),
            gpu_type=_str(d.get("gpu_type")),
            gpu_count=_int(d.get("gpu_count")),
            data_center_id=_str(d.get("data_center_id")),
            hourly_rate=_num(d.get("hourly_rate")),
            started_at=_dt(d.get("started_at")),
            ready_at=_dt(d.get("ready_at")),
            terminated_at=_dt(d.get("terminated_at")),
            private_ip=_str(d.get("private_ip")),
            ssh_command=_str(d.get("ssh_command")),
            ssh_host_key=_str(d.get("ssh_host_key")),
            raw=d,
        )


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """A cluster as `GET /clusters/{id}` returns it. `raw` holds the JSON as received."""

    id: str
    name: str
    status: ClusterStatus
    reason: str | None = None
    message: str | None = None
    gpu_type: str | None = None
    gpu_type_requested: str | None = None
    gpu_count: int | None = None
    node_count: int | None = None
    cloud_type: str | None = None
    allocation: str | None = None
    image: str | None = None
    container_disk_gb: int | None = None
    volume_gb: int | None = None
    volume_mount_path: str | None = None
    ports: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    data_center_ids: list[str] = field(default_factory=list)
    setup: str | None = None
    ttl_seconds: int | None = None
    max_hourly_cost: float | None = None
    ssh_public_key: str | None = None
    nodes: list[Node] = field(default_factory=list)
    hourly_rate: float | None = None
    accrued_cost: float | None = None
    created_at: datetime | None = None
    ready_at: datetime | None = None
    expires_at: datetime | None = None
    terminated_at: datetime | None = None
    network: Network | None = None
    ssh_public_keys: list[str] = field(default_factory=list)
    secret_names: list[str] = field(default_factory=list)
    network_volume_id: str | None = None
    provider_cluster_id: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> Cluster:
        nodes = d.get("nodes")
        return cls(
            id=str(d.get("id", "")),
            name=str(d.get("name", "")),
            status=_enum(ClusterStatus, d.get("status"), "unknown"),
            reason=_str(d.get("reason")),
            message=_str(d.get("message")),
            gpu_type=_str(d.get("gpu_type")),
            gpu_type_requested=_str(d.get("gpu_type_requested")),
            gpu_count=_int(d.get("gpu_count")),
            node_count=_int(d.get("node_count")),
            cloud_type=_str(d.get("cloud_type")),
            allocation=_str(d.get("allocation")),
            image=_str(d.get("image")),
            container_disk_gb=_int(d.get("container_disk_gb")),
            volume_gb=_int(d.get("volume_gb")),
            volume_mount_path=_str(d.get("volume_mount_path")),
            ports=_strs(d.get("ports")),
            env=_dict(d.get("env")),
            data_center_ids=_strs(d.get("data_center_ids")),
            setup=_str(d.get("setup")),
            ttl_seconds=_int(d.get("ttl_seconds")),
            max_hourly_cost=_num(d.get("max_hourly_cost")),
            ssh_public_key=_str(d.get("ssh_public_key")),
            nodes=[Node.from_json(n) for n in nodes if isinstance(n, dict)]
            if isinstance(nodes, list) else [],
            hourly_rate=_num(d.get("hourly_rate")),
            accrued_cost=_num(d.get("accrued_cost")),
            created_at=_dt(d.get("created_at")),
            ready_at=_dt(d.get("ready_at")),
            expires_at=_dt(d.get("expires_at")),
            terminated_at=_dt(d.get("terminated_at")),
            network=_enum(Network, d.get("network")),
            ssh_public_keys=_strs(d.get("ssh_public_keys")),
            secret_names=_strs(d.get("secret_names")),
            network_volume_id=_str(d.get("network_volume_id")),
            provider_cluster_id=_str(d.get("provider_cluster_id")),
            raw=d,
        )

    @property
    def finished(self) -> bool:
        """Terminal, and every node's pod confirmed gone: nothing more will happen."""
        return self.status.terminal and all(
            n.status == NodeStatus.TERMINATED for n in self.nodes)


@dataclass(frozen=True, kw_only=True)
class DataCenterStock:
    id: str
    availability: Availability | None = None


@dataclass(frozen=True, kw_only=True)
class GpuType:
    """A catalog entry; prices are USD per GPU per hour, on-demand."""

    id: str
    display_name: str
    memory_gb: int | None = None
    secure: bool = False
    community: bool = False
    price_secure: float | None = None
    price_community: float | None = None
    availability: Availability | None = None
    data_centers: list[DataCenterStock] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> GpuType:
        dcs = d.get("data_centers")
        return cls(
            id=str(d.get("id", "")),
            display_name=str(d.get("display_name") or d.get("id", "")),
            memory_gb=_int(d.get("memory_gb")),
            secure=d.get("secure") is True,
            community=d.get("community") is True,
            price_secure=_num(d.get("price_secure")),
            price_community=_num(d.get("price_community")),
            availability=_enum(Availability, d.get("availability")),
            data_centers=[
                DataCenterStock(id=str(x.get("id", "")),
                                availability=_enum(Availability, x.get("availability")))
                for x in dcs if isinstance(x, dict)
            ] if isinstance(dcs, list) else [],
            raw=d,
        )


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event of a cluster's stream. `id` increases per cluster; `data` is the payload as
    sent. Known types arrive as the subclasses below; any other type as a plain Event."""

    id: int
    type: str
    data: dict = field(default_factory=dict, repr=False)
    cluster_id: str | None = None
    at: datetime | None = None

    @staticmethod
    def parse(event_id: int, event_type: str, data: Any) -> Event:
        d = data if isinstance(data, dict) else {}
        common: dict[str, Any] = dict(id=event_id, type=event_type, data=d,
                                      cluster_id=_str(d.get("cluster_id")), at=_dt(d.get("at")))
        if event_type == "node.output":
            return NodeOutput(**common, node=_int(d.get("node")), line=str(d.get("line", "")))
        if event_type == "cluster.notice":
            return ClusterNotice(**common, message=str(d.get("message", "")),
                                 code=_str(d.get("code")), node=_int(d.get("node")))
        if event_type.startswith("cluster.") and isinstance(d.get("status"), str):
            return ClusterStatusChanged(**common, status=ClusterStatus(d["status"]),
                                        reason=_str(d.get("reason")),
                                        message=_str(d.get("message")))
        if event_type.startswith("node.") and isinstance(d.get("status"), str):
            return NodeStatusChanged(**common, node=_int(d.get("node")),
                                     status=NodeStatus(d["status"]),
                                     reason=_str(d.get("reason")), message=_str(d.get("message")),
                                     pod_id=_str(d.get("pod_id")))
        return Event(**common)


@dataclass(frozen=True, kw_only=True)
class ClusterStatusChanged(Event):
    """`cluster.<status>`: the cluster moved to `status` (with a reason when it failed or is
    torn down)."""

    status: ClusterStatus
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class NodeStatusChanged(Event):
    """`node.<status>`: node `node` (its index) moved to `status`."""

    node: int | None
    status: NodeStatus
    reason: str | None = None
    message: str | None = None
    pod_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class NodeOutput(Event):
    """`node.output`: one line the setup script printed on node `node`."""

    node: int | None
    line: str


@dataclass(frozen=True, kw_only=True)
class ClusterNotice(Event):
    """`cluster.notice`: a fallback, retry or warning worth telling a person."""

    message: str
    code: str | None = None
    node: int | None = None
