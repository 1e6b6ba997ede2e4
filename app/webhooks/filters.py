"""Which event types an endpoint gets: exact types, `cluster.*`, `node.*`, or `*`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from app.domain.status import ClusterStatus, NodeStatus

ALL = "*"
# Every type an event can have (DESIGN.md "Events"); `webhook.ping` only from the test route.
KNOWN_TYPES: frozenset[str] = frozenset(
    [f"cluster.{s}" for s in ClusterStatus]
    + [f"node.{s}" for s in NodeStatus]
    + ["cluster.notice", "cluster.torn_down", "node.output"]
)
WILDCARDS = frozenset({ALL, "cluster.*", "node.*"})
MAX_PATTERNS = 50


class InvalidFilter(ValueError):
    """A pattern that names no event type (the message lists what is accepted)."""


def normalize(patterns: Iterable[str] | None) -> list[str]:
    """The patterns as stored: checked, without duplicates, in the caller's order; none
    (or an empty list) means every event."""
    out: list[str] = []
    for p in patterns or ():
        p = p.strip()
        if p not in KNOWN_TYPES and p not in WILDCARDS:
            raise InvalidFilter(
                f"{p!r} is not an event type or pattern; use '*', 'cluster.*', 'node.*' or "
                f"one of: {', '.join(sorted(KNOWN_TYPES))}"
            )
        if p not in out:
            out.append(p)
    return out or [ALL]


def matches(patterns: Sequence[str], type_: str) -> bool:
    for p in patterns:
        if p == ALL or p == type_ or (p.endswith(".*") and type_.startswith(p[:-1])):
            return True
    return False
