"""The record of every v2 request the simulator received, for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(eq=False)
class RequestRecord:
    """One request. `status` is what the simulator answered (None while in flight).

    `delivered` is False when a fault kept the response from the client (lost create);
    `fault` names the injected fault that shaped the answer, if any.
    """

    time: float  # unix seconds when received
    method: str
    path: str
    query: str
    endpoint: str
    request_id: str
    status: int | None = None
    duration: float | None = None
    pod_id: str | None = None
    pod_name: str | None = None
    cluster_id: str | None = None
    cluster_name: str | None = None
    fault: str | None = None
    delivered: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Append-only request list with per-endpoint counts; clearable."""

    def __init__(self) -> None:
        self._items: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        self._items.append(record)

    def clear(self) -> None:
        self._items.clear()

    def all(self) -> list[RequestRecord]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def count(self, endpoint: str | None = None, *, status: int | None = None) -> int:
        """How many requests hit `endpoint` (all if None), optionally only with `status`."""
        return sum(
            1
            for r in self._items
            if (endpoint is None or r.endpoint == endpoint)
            and (status is None or r.status == status)
        )

    def counts(self) -> dict[str, int]:
        """Requests per endpoint name."""
        return dict(Counter(r.endpoint for r in self._items))
