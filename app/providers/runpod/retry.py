"""The one retry loop: exponential backoff with full jitter, honouring Retry-After.

Which errors are retried is the caller's choice (`RETRY_READS`, `RETRY_CREATE`), so a
create can never be retried where a duplicate pod could result.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from app.providers.base import ProviderError, RateLimited, ServerError, TransportError

from .errors import ConnectFailed, UnexpectedResponse

log = logging.getLogger("hangar.runpod")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Jitter = Callable[[float], float]
RetryWhen = Callable[[ProviderError], bool]


def _full_jitter(cap: float) -> float:
    return random.uniform(0.0, cap)


def retry_reads(exc: ProviderError) -> bool:
    """Reads and deletes: any transient failure (429, 5xx, transport)."""
    if isinstance(exc, UnexpectedResponse):
        return False
    return isinstance(exc, RateLimited | ServerError | TransportError)


def retry_create(exc: ProviderError) -> bool:
    """Create: only where the request provably did nothing (429, connection never opened)."""
    return isinstance(exc, RateLimited | ConnectFailed)


@dataclass(frozen=True)
class Backoff:
    attempts: int = 5
    base: float = 0.5
    max_delay: float = 20.0
    retry_after_max: float = 60.0
    budget: float | None = None  # total seconds of waiting per call, None: unbounded
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    jitter: Jitter = field(default=_full_jitter, repr=False)

    def delay(self, failures: int, exc: ProviderError) -> float:
        """Seconds to wait after the `failures`-th failed attempt (1-based)."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.retry_after_max)
        cap = min(self.max_delay, self.base * (2 ** (failures - 1)))
        return max(0.0, self.jitter(cap))

    async def run(self, what: str, call: Callable[[], Awaitable[T]], when: RetryWhen) -> T:
        """Run `call`; on a `ProviderError` that `when` accepts, wait and try again."""
        failures = 0
        waited = 0.0
        while True:
            try:
                return await call()
            except ProviderError as exc:
                failures += 1
                if not when(exc):
                    raise
                if failures >= self.attempts:
                    if failures > 1:
                        log.warning(
                            "runpod %s: giving up after %d attempts: %s", what, failures, exc
                        )
                    raise
                wait = self.delay(failures, exc)
                if self.budget is not None and waited + wait > self.budget:
                    log.warning(
                        "runpod %s: giving up after %d attempts, waiting %.1fs more would pass "
                        "the %.0fs retry budget: %s",
                        what,
                        failures,
                        wait,
                        self.budget,
                        exc,
                    )
                    raise
                waited += wait
                log.warning(
                    "runpod %s: attempt %d/%d failed (%s), retrying in %.2fs",
                    what,
                    failures,
                    self.attempts,
                    exc,
                    wait,
                )
                await self.sleep(wait)
