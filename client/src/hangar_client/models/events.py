"""The events of a cluster's stream: a plain `Event` for any type, and a subclass each for
the types this client knows (status changes, bootstrap output, notices, torn down)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hangar_client.models._json import _dt, _enum, _int, _num, _str
from hangar_client.models.enums import ClusterStatus, NodeStatus


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
        if event_type == "cluster.torn_down":
            return ClusterTornDown(**common, status=_enum(ClusterStatus, d.get("status"),
                                                          "failed"))
        if event_type.startswith("cluster.") and isinstance(d.get("status"), str):
            return ClusterStatusChanged(**common, status=ClusterStatus(d["status"]),
                                        reason=_str(d.get("reason")),
                                        message=_str(d.get("message")),
                                        hourly_rate=_num(d.get("hourly_rate")))
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
    hourly_rate: float | None = None  # on `cluster.pending`: the quoted USD per hour


@dataclass(frozen=True, kw_only=True)
class ClusterTornDown(Event):
    """`cluster.torn_down`: a failed cluster's last pod is confirmed gone; it costs nothing
    from now on (`status` stays `failed`)."""

    status: ClusterStatus


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
