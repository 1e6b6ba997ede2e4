"""What a team spends and may spend: `GET /team` and `GET /usage`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class LimitOut(BaseModel):
    value: float | None = Field(description="null: no limit")
    source: Literal["team", "default"] = Field(
        description="`team`: the team's own override; `default`: the deployment's setting")


class TeamOut(BaseModel):
    name: str
    limits: dict[str, LimitOut] = Field(description="max_live_clusters, max_live_nodes, "
                                        "max_hourly_spend (USD/h), monthly_budget (USD)")
    live_clusters: int
    live_nodes: int
    hourly_spend: float = Field(description="USD per hour of every node billing now")
    month: str = Field(description="The UTC month of the figures below, YYYY-MM")
    month_to_date_cost: float = Field(
        description="USD: every node's billed seconds this UTC month so far, running ones "
        "included")
    monthly_budget: float | None = Field(description="USD per month; null: none")
    budget_left: float | None = Field(description="USD; null without a budget")


class UsageItem(BaseModel):
    key: str = Field(description="The day (YYYY-MM-DD, UTC), the cluster id or the GPU type")
    cluster_name: str | None = Field(description="When grouped by cluster")
    cost: float = Field(description="USD")
    gpu_hours: float
    node_hours: float


class UsageTotal(BaseModel):
    cost: float
    gpu_hours: float
    node_hours: float


class UsageOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    group_by: Literal["day", "cluster", "gpu_type"]
    items: list[UsageItem]
    total: UsageTotal = Field(description="The whole window (every page)")
    next: str | None = Field(description="URL of the next page (grouped by cluster), or null")
