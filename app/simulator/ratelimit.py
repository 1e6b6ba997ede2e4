"""Per-account rate-limit windows and the `RateLimit` / `RateLimit-Policy` headers.

The spec describes IETF-draft structured headers with one member per window:
`RateLimit: "minute";r=<remaining>;t=<seconds to reset>, ...` and
`RateLimit-Policy: "minute";q=<quota>;w=<window seconds>, ...`. They accompany every
authenticated response. Counting is real (fixed windows); refusing requests over quota is
optional (`enforce`) because real quotas are unknown and benchmarks must not trip them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

WINDOW_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

# Generous enough that a 1,000-pod benchmark polling every second never reaches r=0.
DEFAULT_QUOTAS = {"minute": 100_000, "hour": 2_000_000, "day": 20_000_000}


@dataclass
class _Window:
    name: str
    quota: int
    length: int
    start: float = 0.0
    used: int = 0


@dataclass(frozen=True)
class RateLimitState:
    """The outcome of counting one request."""

    headers: dict[str, str]
    exceeded: str | None  # name of the first window over quota
    retry_after: int  # seconds until that window resets


class RateLimiter:
    """Fixed minute/hour/day windows for the single simulated account."""

    def __init__(self, quotas: Mapping[str, int] | None = None, *, enforce: bool = False) -> None:
        self.enforce = enforce
        self.configure(quotas or DEFAULT_QUOTAS)

    def configure(self, quotas: Mapping[str, int]) -> None:
        """Replace the quotas (window names: minute, hour, day); counters restart."""
        self._windows = [
            _Window(name, int(quota), WINDOW_SECONDS[name])
            for name, quota in quotas.items()
            if name in WINDOW_SECONDS
        ]

    def policy_header(self) -> str:
        return ", ".join(f'"{w.name}";q={w.quota};w={w.length}' for w in self._windows)

    def hit(self, now: float | None = None) -> RateLimitState:
        """Count one request and return the headers to send with its response."""
        now = time.monotonic() if now is None else now
        parts = []
        exceeded: str | None = None
        retry_after = 0
        for w in self._windows:
            if now - w.start >= w.length or w.used == 0:
                w.start, w.used = now, 0
            w.used += 1
            reset = max(1, math.ceil(w.start + w.length - now))
            parts.append(f'"{w.name}";r={max(0, w.quota - w.used)};t={reset}')
            if exceeded is None and w.used > w.quota:
                exceeded, retry_after = w.name, reset
        headers = {"RateLimit": ", ".join(parts), "RateLimit-Policy": self.policy_header()}
        return RateLimitState(headers, exceeded if self.enforce else None, retry_after)
