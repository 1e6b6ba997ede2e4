"""The commands a plan yields (`_core.py`): send a request, open a stream, read a chunk of it,
close it, sleep, hand an item to the caller. `_sync.py` and `_async.py` carry each out;
`UNSET` marks an argument not given where None has a meaning of its own."""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from hangar_client.models import Event


class Stream:
    """An open streaming response; `chunks` is the transport's iterator over its body."""

    def __init__(self, response: httpx.Response, chunks: Any) -> None:
        self.response, self.chunks = response, chunks


@dataclass(frozen=True)
class Send:
    """Send the request, read the whole response; returns the httpx.Response."""

    request: httpx.Request


@dataclass(frozen=True)
class Open:
    """Send the request, return a `Stream` with the body unread."""

    request: httpx.Request


@dataclass(frozen=True)
class Read:
    """The stream's next chunk of body, b"" at its end."""

    stream: Stream


@dataclass(frozen=True)
class Close:
    stream: Stream


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit:
    """An item for the caller of an iterating operation."""

    item: Any


Plan = Generator[Any, Any, Any]
OnEvent = Callable[[Event], None] | None


class Unset(enum.Enum):
    """The type of `UNSET`: an argument not given, where None has a meaning of its own
    (`update_cluster(id, ttl_seconds=None)` clears the TTL)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset.UNSET
