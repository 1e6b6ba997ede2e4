"""When Postgres or Redis is away: telling an outage from a bug, and saying so once.

A dependency that is restarting, failing over or unreachable shows up as connection
errors from any place that uses it. `database_unavailable(exc)` and `redis_unavailable(exc)`
tell those apart from every other error (walking the exception's causes), so callers can
answer 503, drop a wake-up or retry later instead of failing for good.

`Outage` is one dependency's state in this process: the first failure logs one warning,
further failures are counted, not logged, and the first success after them logs how long
it lasted. `DATABASE` and `REDIS` are this process's. `describe(exc)` is an exception as a
log line may show it: a database error's text can quote SQL parameters or stored values,
so only its class and SQLSTATE appear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("hangar.outages")

# SQLSTATEs of a server that is going away or not there yet: connection exceptions (class
# 08), operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
# connect now: starting up or shutting down), and too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's `orig`) and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else None


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """The exception passed through code of one of these packages (a socket error of the
    database driver, not one of an HTTP or SSH client)."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(f"/{package}/" in filename for package in packages):
            return True
        tb = tb.tb_next
    return False


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection: worth retrying once
    it is back, not a fault of the request or of the code."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    for e in _causes(exc):
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        # Refused, reset, unreachable, timed out: connecting is not wrapped by the driver.
        if isinstance(e, OSError | TimeoutError) and _raised_in(e, ("asyncpg", "sqlalchemy")):
            return True
        if isinstance(e, asyncpg.InterfaceError) and "closed" in str(e):
            return True  # a connection the server (or the pool) closed under us
        state = _sqlstate(e)
        if state and state.startswith(_UNAVAILABLE_SQLSTATES):
            return True
    return False


def redis_unavailable(exc: BaseException) -> bool:
    """Redis could not be reached, dropped the connection, or is still loading its data."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return any(isinstance(e, RedisConnectionError | RedisTimeout)
               or (isinstance(e, OSError | TimeoutError) and _raised_in(e, ("redis",)))
               for e in _causes(exc))


def describe(exc: BaseException) -> str:
    """The exception for a log line: a database error as its class and SQLSTATE only (its
    text may quote parameters or stored values), anything else as class and message."""
    from sqlalchemy.exc import DBAPIError

    database = [e for e in _causes(exc) if isinstance(e, DBAPIError) or _sqlstate(e)
                or type(e).__module__.startswith("asyncpg")]
    if database:
        names = " <- ".join(dict.fromkeys(type(e).__name__ for e in database))
        state = next((s for e in database if (s := _sqlstate(e))), None)
        return names + (f" (sqlstate {state})" if state else "")
    text = str(exc)
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Outage:
    """One dependency's availability as this process sees it: a warning when it goes away,
    a line when it is back, nothing in between."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.what = what  # what the process does meanwhile, for the warning
        self.since: float | None = None  # monotonic time of the first failure
        self.failures = 0
        self.outages = 0
        self._on_back: list[Callable[[], None]] = []

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException | None = None) -> bool:
        """A call failed because the dependency is away. True for the first failure of an
        outage (the one that is logged)."""
        self.failures += 1
        if self.since is not None:
            return False
        self.since = time.monotonic()
        self.outages += 1
        cause = f" ({describe(exc)})" if exc is not None else ""
        log.warning("%s is unavailable%s; %s", self.name, cause, self.what)
        return True

    def back(self) -> bool:
        """A call succeeded. True if that ends an outage (then it is logged)."""
        if self.since is None:
            return False
        lasted = time.monotonic() - self.since
        log.info("%s is back after %.1f s (%d failed calls meanwhile)", self.name, lasted,
                 self.failures)
        self.since, self.failures = None, 0
        for callback in self._on_back:
            callback()
        return True

    def on_back(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback()` whenever an outage ends; returns what unregisters it."""
        self._on_back.append(callback)
        return lambda: self._on_back.remove(callback)


DATABASE = Outage("the database", "retrying until it is back (the API answers 503 meanwhile)")
REDIS = Outage("Redis", "retrying until it is back (wake-ups meanwhile are dropped; the "
                        "reconciler re-enqueues overdue work)")
