"""A cluster's events, typed per event type (a union discriminated by `type`), as the JSON
page of `GET /clusters/{id}/events` returns them and as the `data:` of its SSE frames.

Every event's `data` holds `cluster_id` and `at`; node events hold `node` (the index).
Unknown fields are allowed (a notice carries what its `code` needs), so a newer server's
additions do not break a reader of these models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.status import ClusterStatus, NodeStatus
from app.schemas.enums import ClusterStatusName, NodeStatusName, ReasonName


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")

    cluster_id: str
    at: datetime


class ClusterStatusData(_Data):
    status: ClusterStatusName
    reason: ReasonName | None = None
    message: str | None = None
    hourly_rate: float | None = Field(default=None, description="On `cluster.pending`: "
                                      "the quoted USD per hour")


class NodeStatusData(_Data):
    node: int
    status: NodeStatusName
    reason: ReasonName | None = None
    message: str | None = None
    pod_id: str | None = None


class NodeOutputData(_Data):
    node: int
    line: str = Field(description="One line of the setup script's output (bounded)")


class NoticeData(_Data):
    message: str
    code: str | None = Field(default=None, description="What it is about: provider_retry, "
                             "no_capacity_candidate, spot_fallback, terminate_retry, "
                             "output_dropped, ttl_changed, monthly_budget, ...")
    node: int | None = None


class TornDownData(_Data):
    status: ClusterStatusName


class _Event(BaseModel):
    id: int = Field(description="Grows per cluster in commit order; resume after it")


class ClusterStatusEvent(_Event):
    type: Literal[tuple(f"cluster.{s.value}" for s in ClusterStatus)]  # type: ignore[valid-type]
    data: ClusterStatusData


class NodeStatusEvent(_Event):
    type: Literal[tuple(f"node.{s.value}" for s in NodeStatus)]  # type: ignore[valid-type]
    data: NodeStatusData


class NodeOutputEvent(_Event):
    type: Literal["node.output"]
    data: NodeOutputData


class NoticeEvent(_Event):
    type: Literal["cluster.notice"]
    data: NoticeData


class TornDownEvent(_Event):
    """A failed cluster's last pod is confirmed gone: it costs nothing from now on."""

    type: Literal["cluster.torn_down"]
    data: TornDownData


EventOut = Annotated[
    ClusterStatusEvent | NodeStatusEvent | NodeOutputEvent | NoticeEvent | TornDownEvent,
    Field(discriminator="type"),
]


class EventPage(BaseModel):
    items: list[EventOut]
    last_id: int = Field(description="Pass as `after` to continue")
    finished: bool = Field(description="The cluster is terminal and every node terminated")
