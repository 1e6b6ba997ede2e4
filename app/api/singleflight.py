"""Concurrent requests for one key share one read (used by the token and read caches)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """`run(key, start)` joins the run under way for `key`, or starts `start()`. A caller
    going away does not cancel the others' run (shielded). `forget`/`clear` detach runs
    under way: later callers start their own."""

    def __init__(self) -> None:
        self._runs: dict[K, asyncio.Future[V]] = {}

    def running(self, key: K) -> bool:
        return key in self._runs

    async def run(self, key: K, start: Callable[[], Awaitable[V]]) -> V:
        pending = self._runs.get(key)
        if pending is None:
            pending = asyncio.ensure_future(start())
            self._runs[key] = pending

            def done(f: asyncio.Future[V]) -> None:
                if self._runs.get(key) is f:
                    del self._runs[key]
                if not f.cancelled():
                    f.exception()  # retrieved: every waiter may have gone away

            pending.add_done_callback(done)
        return await asyncio.shield(pending)

    def forget(self, key: K) -> None:
        self._runs.pop(key, None)

    def clear(self) -> None:
        self._runs.clear()
