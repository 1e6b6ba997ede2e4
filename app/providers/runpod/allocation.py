"""Spot vs on-demand: RunPod's v2 API has no spot (interruptible) pods.

Kept as a seam: a provider with spot answers `check_allocation` its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.providers.base import SpotUnavailable

ON_DEMAND = "on-demand"
SPOT = "spot"
SPOT_IF_AVAILABLE = "spot-if-available"
ALLOCATIONS = (ON_DEMAND, SPOT, SPOT_IF_AVAILABLE)

NO_SPOT_MESSAGE = (
    "RunPod's current API (v2) offers no spot/interruptible pods; "
    "use allocation 'on-demand' or 'spot-if-available'"
)
SPOT_FALLBACK_NOTICE = (
    "RunPod's current API (v2) offers no spot/interruptible pods; using on-demand pods"
)


@dataclass(frozen=True)
class AllocationChoice:
    """What will actually be used (`allocation`), and a notice for the caller, if any."""

    allocation: str
    notice: str | None = None

    def __str__(self) -> str:
        return self.allocation


def on_demand_only(allocation: str) -> AllocationChoice:
    """The rule for a provider without spot."""
    value = (allocation or "").strip().lower()
    if value == ON_DEMAND:
        return AllocationChoice(ON_DEMAND)
    if value == SPOT_IF_AVAILABLE:
        return AllocationChoice(ON_DEMAND, SPOT_FALLBACK_NOTICE)
    if value == SPOT:
        raise SpotUnavailable(NO_SPOT_MESSAGE)
    raise ValueError(f"unknown allocation {allocation!r}; expected one of {', '.join(ALLOCATIONS)}")
