"""The team's side of spending: its limits, what runs now and what this month cost
(`GET /team`), and usage reports of cost and GPU-hours over a window (`GET /usage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hangar_client.models._json import _dt, _int, _num, _str


@dataclass(frozen=True, kw_only=True)
class Limit:
    """One team limit: `value` None means no limit; `source` is "team" (the team's own
    override) or "default" (the deployment's setting)."""

    value: float | None = None
    source: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> Limit:
        d = d if isinstance(d, dict) else {}
        return cls(value=_num(d.get("value")), source=_str(d.get("source")))


@dataclass(frozen=True, kw_only=True)
class Team:
    """`GET /team`: the caller's team, its limits (`max_live_clusters`, `max_live_nodes`,
    `max_hourly_spend`, `monthly_budget`, and any a newer server adds), what runs now and
    what this UTC month cost so far. Money is USD."""

    name: str
    limits: dict[str, Limit] = field(default_factory=dict)
    live_clusters: int | None = None
    live_nodes: int | None = None
    hourly_spend: float | None = None
    month: str | None = None  # YYYY-MM, UTC
    month_to_date_cost: float | None = None
    monthly_budget: float | None = None  # None: no budget
    budget_left: float | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> Team:
        limits = d.get("limits")
        return cls(
            name=str(d.get("name", "")),
            limits={str(k): Limit.from_json(v) for k, v in limits.items()}
            if isinstance(limits, dict) else {},
            live_clusters=_int(d.get("live_clusters")),
            live_nodes=_int(d.get("live_nodes")),
            hourly_spend=_num(d.get("hourly_spend")),
            month=_str(d.get("month")),
            month_to_date_cost=_num(d.get("month_to_date_cost")),
            monthly_budget=_num(d.get("monthly_budget")),
            budget_left=_num(d.get("budget_left")),
            raw=d,
        )


@dataclass(frozen=True, kw_only=True)
class UsageItem:
    """One group of a usage report: `key` is the day (YYYY-MM-DD, UTC), the cluster id
    (with `cluster_name`) or the GPU type."""

    key: str
    cluster_name: str | None = None
    cost: float = 0.0
    gpu_hours: float = 0.0
    node_hours: float = 0.0
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> UsageItem:
        return cls(key=str(d.get("key", "")), cluster_name=_str(d.get("cluster_name")),
                   cost=_num(d.get("cost")) or 0.0, gpu_hours=_num(d.get("gpu_hours")) or 0.0,
                   node_hours=_num(d.get("node_hours")) or 0.0, raw=d)


@dataclass(frozen=True, kw_only=True)
class UsageTotal:
    cost: float = 0.0
    gpu_hours: float = 0.0
    node_hours: float = 0.0

    @classmethod
    def from_json(cls, d: Any) -> UsageTotal:
        d = d if isinstance(d, dict) else {}
        return cls(cost=_num(d.get("cost")) or 0.0, gpu_hours=_num(d.get("gpu_hours")) or 0.0,
                   node_hours=_num(d.get("node_hours")) or 0.0)


@dataclass(frozen=True, kw_only=True)
class Usage:
    """`GET /usage`: cost (USD) and GPU-hours over `[start, end)` (the API's `from` and
    `to`), grouped by `group_by`. `items` holds every page's groups; `total` covers the
    whole window. `raw` is the API's JSON with every page's items in `items` (and `next`
    null)."""

    start: datetime | None = None
    end: datetime | None = None
    group_by: str = "day"
    items: list[UsageItem] = field(default_factory=list)
    total: UsageTotal = field(default_factory=UsageTotal)
    next: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> Usage:
        items = d.get("items")
        return cls(
            start=_dt(d.get("from")), end=_dt(d.get("to")),
            group_by=str(d.get("group_by") or "day"),
            items=[UsageItem.from_json(i) for i in items if isinstance(i, dict)]
            if isinstance(items, list) else [],
            total=UsageTotal.from_json(d.get("total")), next=_str(d.get("next")), raw=d,
        )
