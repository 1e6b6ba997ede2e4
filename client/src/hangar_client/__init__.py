"""A typed Python client for Hangar, the GPU cluster service.

    from hangar_client import HangarClient

    with HangarClient("http://127.0.0.1:8000", token) as hangar:
        cluster = hangar.create_cluster("train", "RTX 4090", nodes=2, setup="nvidia-smi")
        cluster = hangar.wait_until_ready(cluster.id, timeout=900)
        print(cluster.nodes[0].ssh_command)

`AsyncHangarClient` has the same methods for asyncio.
"""

from typing import TYPE_CHECKING

from hangar_client._calls import VERSION as __version__
from hangar_client._sync import HangarClient
from hangar_client.errors import (
    ApiError,
    BadRequest,
    ClusterFailed,
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    HangarError,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
    Unreachable,
    WaitTimeout,
)
from hangar_client.models import (
    Availability,
    Cluster,
    ClusterNotice,
    ClusterSpec,
    ClusterStatus,
    ClusterStatusChanged,
    ClusterTornDown,
    DataCenterStock,
    Event,
    GpuType,
    Limit,
    Network,
    NetworkVolume,
    Node,
    NodeOutput,
    NodeStatus,
    NodeStatusChanged,
    StreamToken,
    Team,
    Usage,
    UsageItem,
    UsageTotal,
)

if TYPE_CHECKING:
    from hangar_client._async import AsyncHangarClient


def __getattr__(name: str) -> object:
    # Imported when first used: a blocking program (a command line) need not load asyncio.
    if name == "AsyncHangarClient":
        from hangar_client._async import AsyncHangarClient

        return AsyncHangarClient
    raise AttributeError(f"module 'hangar_client' has no attribute {name!r}")


__all__ = [
    "ApiError", "AsyncHangarClient", "Availability", "BadRequest", "Cluster", "ClusterFailed",
    "ClusterNotice", "ClusterSpec", "ClusterStatus", "ClusterStatusChanged", "ClusterTornDown",
    "Conflict", "DataCenterStock", "Event", "FieldError", "Forbidden", "Gone", "GpuType",
    "HangarClient", "HangarError", "InvalidRequest", "Limit", "Network", "NetworkVolume",
    "Node", "NodeOutput", "NodeStatus", "NodeStatusChanged", "NotFound", "RateLimited",
    "ServerError", "ServiceUnavailable", "StreamToken", "Team", "Unauthorized",
    "UnexpectedResponse", "Unreachable", "Usage", "UsageItem", "UsageTotal", "WaitTimeout",
    "__version__",
]
