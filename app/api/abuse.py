"""Abuse limits of one API process: failed authentications per client address, and event
streams open per team. Both are kept in memory, per process (N API processes allow N
times as much); a proxy in front enforces what is global (README.md, "Deployment").

- **Failed authentication.** A request whose bearer token is unknown or revoked costs a
  database lookup. After `HANGAR_AUTH_FAILURES_PER_MINUTE` of them from one client address
  within a minute, that address's requests get 429 with Retry-After (until its oldest
  failure is a minute old) without a lookup, unless their token is one this process has
  accepted recently (its token cache): a valid client is not locked out by a neighbour.
  Requests with no token at all cost nothing and are not counted.
- **Event streams.** Each team may hold `HANGAR_MAX_STREAMS_PER_TEAM` SSE connections open
  to one API process; one more is a 429 (`limit`: `event_streams`).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW_S = 60.0
MAX_ADDRESSES = 100_000  # addresses tracked at once (the oldest are forgotten)


class AuthThrottle:
    """Failed authentications per client address over the last minute."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._max = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        cutoff = self._clock() - WINDOW_S
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try an unknown token again, or None: not throttled."""
        times = self._recent(address)
        if times is None or len(times) < self.per_minute:
            return None
        return max(1, math.ceil(times[0] + WINDOW_S - self._clock()))

    def failed(self, address: str) -> None:
        times = self._recent(address)
        if times is None:
            if len(self._failures) >= self._max:
                self._failures.popitem(last=False)
            times = self._failures[address] = deque(maxlen=self.per_minute)
        times.append(self._clock())


class StreamSlots:
    """Event streams open per team in this process."""

    def __init__(self, per_team: int) -> None:
        self.per_team = per_team
        self._open: dict[uuid.UUID, int] = {}

    def take(self, team_id: uuid.UUID) -> bool:
        """Take a slot for one more stream (False: the team holds all of them)."""
        n = self._open.get(team_id, 0)
        if n >= self.per_team:
            return False
        self._open[team_id] = n + 1
        return True

    def give_back(self, team_id: uuid.UUID) -> None:
        n = self._open.get(team_id, 0) - 1
        if n > 0:
            self._open[team_id] = n
        else:
            self._open.pop(team_id, None)

    def open(self, team_id: uuid.UUID) -> int:
        return self._open.get(team_id, 0)
