"""The names the contract's enums take, as Literal types (they render as enums in the
OpenAPI document); one place, from the domain's enums."""

from __future__ import annotations

from typing import Literal

from app.domain.status import ClusterStatus, NodeStatus, Reason

NodeStatusName = Literal[tuple(s.value for s in NodeStatus)]  # type: ignore[valid-type]
ClusterStatusName = Literal[tuple(s.value for s in ClusterStatus)]  # type: ignore[valid-type]
ReasonName = Literal[tuple(r.value for r in Reason)]  # type: ignore[valid-type]
Network = Literal["public", "private", "cluster"]
CloudType = Literal["secure", "community"]
Allocation = Literal["on-demand", "spot", "spot-if-available"]
