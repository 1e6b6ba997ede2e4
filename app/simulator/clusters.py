"""Simulated Instant Clusters: N member pods in one data center on a private overlay network.

A cluster is placed all or nothing: every member's GPUs must fit in one data center (the
first of `dataCenterIds` that has room, else the roomiest), or the create is the usual
capacity 400 and nothing exists. Each member is an ordinary simulated pod (`PodManager.spawn`:
same lifecycle, real SSH server, same faults under its own name `<cluster name>-<index>`)
that also carries a `Membership`: its rank, its overlay address and the environment RunPod
sets on cluster nodes. Members are hidden from `GET /v2/pods` unless `includeClusterPods`,
refuse the pod endpoints' delete and actions (409), and go when their cluster is deleted.

What the spec leaves open, and what the simulator does (all UNCONFIRMED):
- `CreateClusterRequest` has no `cloud`: members are placed on Secure Cloud stock.
- Member names are not documented: `<cluster name>-<index>`, index = rank.
- Overlay addresses: `ClusterNetwork.cidr` is 10.65.0.0/16 in the spec's example and a
  member's `ip` 10.65.0.2; rank r gets 10.65.0.(r + 2). Each cluster has its own overlay,
  so two clusters reuse the same addresses.
- Rank and overlay address are "assigned during provisioning": reported once a member
  leaves PROVISIONING (as is the cluster's `network` and `primary`).
- Member environment, from RunPod's Instant Cluster docs: PRIMARY_ADDR/MASTER_ADDR,
  PRIMARY_PORT/MASTER_PORT, NODE_ADDR, NODE_RANK, NUM_NODES, NUM_TRAINERS,
  HOST_NODE_ADDR, WORLD_SIZE. The port's value is not documented: 29500 here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.simulator.pods import Membership, PodManager, PodStatus, SimPod, iso, new_pod_id
from app.simulator.problems import ApiError

OVERLAY_CIDR = "10.65.0.0/16"
VXLAN_PORT = 4789
PRIMARY_PORT = "29500"
CLUSTER_CLOUD = "SECURE"


def overlay_ip(rank: int) -> str:
    """Rank r's address on its cluster's overlay: 10.65.0.2 .. 10.65.0.251 for 250 members."""
    return f"10.65.0.{rank + 2}"


@dataclass(eq=False)
class SimCluster:
    """One Instant Cluster. `members` are in rank order and include terminated pods."""

    id: str
    name: str
    seq: int
    type: str
    request: dict[str, Any]
    gpu_id: str
    gpu_count: int  # per member
    pod_count: int
    data_center_id: str
    vxlan_id: int
    created_at: datetime
    members: list[SimPod] = field(default_factory=list)
    deleted_at: datetime | None = None

    @property
    def alive(self) -> bool:
        return self.deleted_at is None

    def live_members(self) -> list[SimPod]:
        return [p for p in self.members if p.alive]

    def snapshot(self) -> dict[str, Any]:
        """Admin view (deleted clusters too, every member with its status)."""
        return {
            "id": self.id,
            "name": self.name,
            "alive": self.alive,
            "type": self.type,
            "gpu": {"id": self.gpu_id, "countPerPod": self.gpu_count},
            "podCount": self.pod_count,
            "dataCenterId": self.data_center_id,
            "createdAt": iso(self.created_at),
            "deletedAt": iso(self.deleted_at),
            "members": [
                {
                    "id": p.id,
                    "name": p.name,
                    "rank": p.membership.rank if p.membership else None,
                    "ip": p.private_ip,
                    "status": p.status.value,
                    "sshPort": p.ssh.port if p.ssh else None,
                }
                for p in self.members
            ],
        }


class ClusterManager:
    """Every Instant Cluster of one simulator. Member pods live in the `PodManager`."""

    def __init__(self, pods: PodManager) -> None:
        self.pods = pods
        self._clusters: dict[str, SimCluster] = {}
        self._seq = itertools.count(1)

    # --- queries ---------------------------------------------------------------------

    def get(self, cluster_id: str) -> SimCluster | None:
        """A cluster that has not been deleted, or None."""
        cluster = self._clusters.get(cluster_id)
        return cluster if cluster is not None and cluster.alive else None

    def get_any(self, cluster_id: str) -> SimCluster | None:
        return self._clusters.get(cluster_id)

    def all(self) -> list[SimCluster]:
        """Every cluster ever created, newest first."""
        return sorted(self._clusters.values(), key=lambda c: c.seq, reverse=True)

    def alive(self) -> list[SimCluster]:
        return [c for c in self.all() if c.alive]

    def named(self, name: str) -> list[SimCluster]:
        return [c for c in self.all() if c.name == name]

    # --- create / delete -----------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> SimCluster:
        """Create a cluster from a body that passed the `CreateClusterRequest` schema.

        Raises `ApiError` 400 for rule violations and no capacity (then nothing exists),
        404 for an unknown network volume.
        """
        name = body["name"]
        compute = body["compute"]
        container = self.pods.container(body)
        gpu = self.pods.gpu_type(compute["gpuTypeId"], "compute.gpuTypeId")
        count = int(compute["gpuCountPerPod"])
        pod_count = int(compute["podCount"])
        max_count = self.pods.check_gpu_count(gpu, count, CLUSTER_CLOUD, "compute.gpuCountPerPod")
        dc_ids = self.pods.data_center_ids(body)
        dc_ids = self.pods.volumes.restrict_placement(container.mounts, dc_ids)
        dc_id, cuda = self.pods.place(
            name,
            gpu.id,
            count,
            CLUSTER_CLOUD,
            dc_ids,
            [],
            None,
            False,
            bool(max_count),
            pods=pod_count,
            product="CLUSTER",
        )
        cluster_id = new_pod_id()
        while cluster_id in self._clusters:
            cluster_id = new_pod_id()
        seq = next(self._seq)
        cluster = SimCluster(
            id=cluster_id,
            name=name,
            seq=seq,
            type=body["type"],
            request=body,
            gpu_id=gpu.id,
            gpu_count=count,
            pod_count=pod_count,
            data_center_id=dc_id,
            vxlan_id=1000 + seq,
            created_at=datetime.now(UTC),
        )
        primary = overlay_ip(0)
        common = {
            "PRIMARY_ADDR": primary,
            "MASTER_ADDR": primary,
            "PRIMARY_PORT": PRIMARY_PORT,
            "MASTER_PORT": PRIMARY_PORT,
            "HOST_NODE_ADDR": f"{primary}:{PRIMARY_PORT}",
            "NUM_NODES": str(pod_count),
            "NUM_TRAINERS": str(count),
            "WORLD_SIZE": str(pod_count * count),
        }
        for rank in range(pod_count):
            ip = overlay_ip(rank)
            env = {**common, "NODE_ADDR": ip, "NODE_RANK": str(rank)}
            cluster.members.append(
                self.pods.spawn(
                    name=f"{name}-{rank}",
                    request=body,
                    container=container,
                    gpu=gpu,
                    count=count,
                    cloud=CLUSTER_CLOUD,
                    dc_id=dc_id,
                    cuda=cuda,
                    membership=Membership(cluster_id, rank, ip, env),
                )
            )
        self._clusters[cluster_id] = cluster
        return cluster

    async def delete(self, cluster: SimCluster) -> None:
        """Delete the cluster and terminate every member. `ApiError` 404 if already gone."""
        if not cluster.alive:
            raise ApiError(404, "cluster not found")
        cluster.deleted_at = datetime.now(UTC)
        await asyncio.gather(*(self._terminate(p) for p in cluster.live_members()))

    async def _terminate(self, pod: SimPod) -> None:
        with contextlib.suppress(ApiError):  # already terminated meanwhile
            await self.pods.terminate(pod)

    async def refresh(self, cluster: SimCluster) -> SimCluster:
        await self.pods.refresh_all(cluster.members)
        return cluster

    async def reset(self) -> None:
        """Forget every cluster (the pod manager terminates the members)."""
        self._clusters.clear()

    # --- JSON ------------------------------------------------------------------------------

    def to_json(self, cluster: SimCluster) -> dict[str, Any]:
        """The cluster in the spec's `Cluster` shape."""
        live = cluster.live_members()
        body: dict[str, Any] = {
            "id": cluster.id,
            "name": cluster.name,
            "type": cluster.type,
            "compute": {
                "gpuTypeId": cluster.gpu_id,
                "gpuCountPerPod": cluster.gpu_count,
                "podCount": cluster.pod_count,
            },
            "dataCenterId": cluster.data_center_id,
            "pods": {"total": len(live), "byStatus": dict(Counter(p.status.value for p in live))},
            "createdAt": iso(cluster.created_at),
        }
        if any(p.assigned for p in cluster.members):
            body["network"] = {
                "cidr": OVERLAY_CIDR,
                "vxlanId": cluster.vxlan_id,
                "vxlanPort": VXLAN_PORT,
            }
        head = cluster.members[0] if cluster.members else None
        if head is not None and head.alive and head.assigned:
            primary: dict[str, Any] = {"podId": head.id, "status": head.status.value}
            if head.status is PodStatus.RUNNING and head.ssh is not None and head.ssh.port:
                primary["sshEndpoint"] = f"{self.pods.public_host}:{head.ssh.port}"
            body["primary"] = primary
        return body

    def members_json(self, cluster: SimCluster) -> list[dict[str, Any]]:
        """The live members as full `Pod`s, newest first like `GET /v2/pods` (so not in
        rank order: a client reads `cluster.rank`)."""
        return [self.pods.to_json(p) for p in sorted(cluster.live_members(),
                                                     key=lambda p: p.seq, reverse=True)]
