"""Money: what a node costs, per second, from the rate RunPod bills it at.

A node bills from `started_at` (RunPod's `startedAt`, or when Hangar saw it running) until
`terminated_at` (when RunPod confirmed the pod gone), at `hourly_rate` (RunPod's
`Pod.cost`). Pure functions, so the ORM path and the raw read path price alike."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

# (hourly_rate, started_at, terminated_at) of one node
Billing = tuple[float | None, datetime | None, datetime | None]


def is_billing(rate: float | None, started: datetime | None, terminated: datetime | None) -> bool:
    """The node runs and costs money right now."""
    return started is not None and terminated is None and bool(rate)


def node_cost(rate: float | None, started: datetime | None, terminated: datetime | None,
              now: datetime) -> float:
    """USD billed so far (until `now` while it runs)."""
    if rate is None or started is None:
        return 0.0
    seconds = max(((terminated or now) - started).total_seconds(), 0.0)
    return rate * seconds / 3600.0


def prices(nodes: Iterable[Billing], now: datetime) -> tuple[float, float]:
    """A cluster's (hourly_rate, accrued_cost) at `now`: the rate summed over nodes still
    billing, the cost over all nodes; rounded to 6 decimals (micro-dollars)."""
    hourly = 0.0
    accrued = 0.0
    for rate, started, terminated in nodes:
        if is_billing(rate, started, terminated):
            hourly += rate  # type: ignore[operator]
        accrued += node_cost(rate, started, terminated, now)
    return round(hourly, 6), round(accrued, 6)
