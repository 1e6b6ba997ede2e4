"""A cluster and its nodes as the API returns them, what `create_cluster` takes besides the
name and GPU type (`ClusterSpec`), and the short-lived token for a browser's event
stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from hangar_client.models._json import _dict, _dt, _enum, _int, _num, _str, _strs
from hangar_client.models.enums import ClusterStatus, Network, NodeStatus


class ClusterSpec(TypedDict, total=False):
    """What `create_cluster(name, gpu_type, **spec)` takes besides the name and GPU type: the
    fields of `POST /clusters` (left out, or None: the server's default). Keys a newer
    server takes are passed through as they are."""

    gpu_count: int  # GPUs per node (1)
    nodes: int  # pods in the cluster (1)
    network: str  # "public" (default), "private" or "cluster": how nodes reach each other
    cloud_type: str  # "secure" (default) or "community"
    allocation: str  # "on-demand" (default), "spot" or "spot-if-available"
    image: str | None  # None: the deployment's default image
    container_disk_gb: int
    volume_gb: int  # 0: no pod volume (the default with a network volume)
    volume_mount_path: str
    ports: list[str]  # "8888/http", ...; 22/tcp is always exposed
    env: dict[str, str]  # for the pods and the setup script
    data_center_ids: list[str]  # preferred data centers
    setup: str  # bash run on every node at bootstrap, as root
    ssh_public_keys: list[str]  # your OpenSSH public keys, installed on every node
    secrets: dict[str, str]  # like env, for the setup script only; never returned
    network_volume_id: str | None  # an existing network volume (list_network_volumes)
    ttl_seconds: int | None  # torn down this long after ready
    max_hourly_cost: float | None  # USD/h the cluster may not exceed


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
class StreamToken:
    """A read-only token for one cluster's event stream, for a browser's `EventSource`
    (`events_url` carries it). Valid until `expires_at`; hand it to a browser, never log it
    (it is left out of `repr`)."""

    token: str = field(repr=False)
    expires_at: datetime | None = None
    events_url: str = field(default="", repr=False)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> StreamToken:
        return cls(token=str(d.get("token", "")), expires_at=_dt(d.get("expires_at")),
                   events_url=str(d.get("events_url", "")), raw=d)
