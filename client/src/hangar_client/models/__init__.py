"""What the API returns, as plain dataclasses.

Built to outlive the server they were written against: unknown fields are ignored (and
kept in `raw`), unknown status values become enum members of their own instead of
errors, and fields a server does not send yet are None.

By topic: `enums` (statuses and kinds), `clusters` (a cluster, its nodes, the create
spec, stream tokens), `catalog` (GPU types, network volumes), `team` (limits, spend,
usage), `events` (the event stream); `_json` reads fields leniently. Every model is
importable from here and from `hangar_client`.
"""

from hangar_client.models.catalog import DataCenterStock, GpuType, NetworkVolume
from hangar_client.models.clusters import Cluster, ClusterSpec, Node, StreamToken
from hangar_client.models.enums import Availability, ClusterStatus, Network, NodeStatus
from hangar_client.models.events import (
    ClusterNotice,
    ClusterStatusChanged,
    ClusterTornDown,
    Event,
    NodeOutput,
    NodeStatusChanged,
)
from hangar_client.models.team import Limit, Team, Usage, UsageItem, UsageTotal

__all__ = [
    "Availability", "Cluster", "ClusterNotice", "ClusterSpec", "ClusterStatus",
    "ClusterStatusChanged", "ClusterTornDown", "DataCenterStock", "Event", "GpuType", "Limit",
    "Network", "NetworkVolume", "Node", "NodeOutput", "NodeStatus", "NodeStatusChanged",
    "StreamToken", "Team", "Usage", "UsageItem", "UsageTotal",
]
