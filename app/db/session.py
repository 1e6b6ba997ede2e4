"""Engine and session factory. One AsyncSession per task, expire_on_commit=False.

Connections are not pinged on every checkout (`pool_pre_ping` costs three round trips
with asyncpg: BEGIN, a query, ROLLBACK). Instead a connection that sat idle in the pool for
longer than `ping_after_idle_s` is pinged when checked out, and replaced if it is dead:
that covers the usual ways a pooled connection dies (idle timeouts of proxies and
firewalls, a database restart while the process was quiet). A connection that dies while
the process is busy fails the statement that used it, and SQLAlchemy then discards every
connection of the pool that is older than the failure, so the next checkouts reconnect.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.outages import DATABASE
from app.settings import async_database_url

PING_AFTER_IDLE_S = 10.0
# A database that does not answer (rather than refusing) costs a new connection this long,
# not asyncpg's default of 60 s.
CONNECT_TIMEOUT_S = 5.0
_CHECKED_IN = "hangar_checked_in"  # connection record info: monotonic time of the last checkin


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
) -> AsyncEngine:
    engine = create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        # The most recently used connection first: under light traffic the same few stay
        # warm (no idle ping), and the rest idle until a burst needs them.
        pool_use_lifo=True,
        # SQL parameters can hold callers' env values: keep them out of errors and logs.
        hide_parameters=True,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
    )
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        DATABASE.back()  # a new connection: an outage this process saw is over

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < ping_after_idle_s:
            return
        try:
            dbapi_connection.ping()  # runs in SQLAlchemy's greenlet: may await
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection as the asyncpg connection itself, for hot read paths: one
    prepared statement per query and no per-statement SQLAlchemy work. No transaction is
    open (each statement is its own snapshot); do not start one and leave it open. A
    connection that fails is discarded rather than returned to the pool."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        try:
            yield raw.driver_connection
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
            await conn.invalidate(exc)
            raise
