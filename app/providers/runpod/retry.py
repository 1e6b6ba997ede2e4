"""The one retry loop: exponential backoff with full jitter, honouring Retry-After.

Which errors are retried is the caller's choice (`RETRY_READS`, `RETRY_CREATE`), so a
create can never be retried where a duplicate pod could result.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
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


# The monotonic time by which the call under way must be over; `_send` bounds each HTTP
# attempt's timeouts by it. Set by `Backoff.run` for the task running the call.
call_deadline: ContextVar[float | None] = ContextVar("runpod_call_deadline", default=None)


def time_left(default: float) -> float:
    """Seconds until the current call's deadline (at most `default`; at least 0.1)."""
    deadline = call_deadline.get()
    if deadline is None:
        return default
    return max(min(default, deadline - time.monotonic()), 0.1)


@dataclass(frozen=True)
class Backoff:
    """Retries of one provider call, all within `deadline` seconds (attempts and waits).

    The client is the one owner of a call's retries. It never waits past the deadline: a
    `Retry-After` longer than what is left raises the `RateLimited` at once, and the caller
    (a worker step) reschedules the node for then instead of sleeping inside its job."""

    attempts: int = 5
    base: float = 0.5
    max_delay: float = 5.0
    deadline: float = 20.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    jitter: Jitter = field(default=_full_jitter, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def delay(self, failures: int, exc: ProviderError) -> float:
        """Seconds to wait after the `failures`-th failed attempt (1-based)."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return max(exc.retry_after, 0.0)
        cap = min(self.max_delay, self.base * (2 ** (failures - 1)))
        return max(0.0, self.jitter(cap))

    async def run(self, what: str, call: Callable[[], Awaitable[T]], when: RetryWhen) -> T:
        """Run `call`; on a `ProviderError` that `when` accepts, wait and try again, while
        attempts and time are left."""
        started = self.clock()
        token = call_deadline.set(time.monotonic() + self.deadline)
        failures = 0
        waited = 0.0  # with a sleep that does not pass real time (tests), counted here
        try:
            while True:
                try:
                    return await call()
                except ProviderError as exc:
                    failures += 1
                    if not when(exc):
                        raise
                    if failures >= self.attempts:
                        if failures > 1:
                            log.warning("runpod %s: giving up after %d attempts: %s",
                                        what, failures, exc)
                        raise
                    wait = self.delay(failures, exc)
                    left = self.deadline - max(self.clock() - started, waited)
                    if wait >= left:
                        log.warning("runpod %s: not retrying: waiting %.1fs would pass the "
                                    "call's %.0fs deadline: %s", what, wait, self.deadline, exc)
                        raise
                    log.warning("runpod %s: attempt %d/%d failed (%s), retrying in %.2fs",
                                what, failures, self.attempts, exc, wait)
                    await self.sleep(wait)
                    waited += wait
        finally:
            call_deadline.reset(token)
