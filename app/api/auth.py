"""Bearer-token authentication with a per-process cache (see docs/read-path.md).

A token found valid is trusted for `HANGAR_AUTH_CACHE_SECONDS` (token hash -> Caller), so
a request with a cached token does no query. Revocation still takes effect at once:
`revoke_tokens` drops the hashes from this process's cache and `hangar keys revoke`
publishes them on Redis (`hangar:tokens`), which every API process's EventHub receives;
the cache is cleared whenever that subscription is (re)established, since revocations
may have been missed meanwhile. If Redis misses a revocation, the TTL bounds the delay.

Unknown and revoked tokens are not cached (each such request reads the database), and
concurrent lookups of one token share one read. `last_used_at` is written at most once
per `LAST_USED_RESOLUTION` per token, from the lookup or, for a token served from the
cache for longer than that, in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.singleflight import SingleFlight
from app.db.session import driver_connection
from app.outages import DATABASE, database_unavailable, describe

log = logging.getLogger("hangar.api.auth")

# last_used_at is written at most this often per token, to keep auth off the write path.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_ENTRIES = 10_000

_LOOKUP_SQL = (
    "SELECT t.id, t.team_id, teams.name, t.last_used_at FROM api_tokens t"
    " JOIN teams ON teams.id = t.team_id"
    " WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
)
_TOUCH_SQL = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1"


@dataclass(frozen=True)
class Caller:
    team_id: uuid.UUID
    team_name: str
    token_id: uuid.UUID


@dataclass(slots=True)
class _Entry:
    caller: Caller
    expires: float  # monotonic
    touched: float  # monotonic time last_used_at was last written (or found recent)


@dataclass
class TokenCache:
    engine: AsyncEngine
    ttl_s: float
    max_entries: int = MAX_ENTRIES
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _flights: SingleFlight[str, Caller | None] = field(default_factory=SingleFlight)
    _generation: int = 0  # moves on every drop/clear: a lookup begun before is not stored
    _background: set[asyncio.Task] = field(default_factory=set)

    async def caller(self, digest: str) -> Caller | None:
        """The caller owning the token with this hash, or None (unknown or revoked)."""
        return self.hit(digest) or await self.lookup(digest)

    def hit(self, digest: str) -> Caller | None:
        """The caller from the cache (no query), or None: not cached, or expired."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        now = time.monotonic()
        if now >= entry.expires:
            del self._entries[digest]
            return None
        if now - entry.touched > LAST_USED_RESOLUTION.total_seconds():
            entry.touched = now
            self._touch_later(entry.caller.token_id)
        return entry.caller

    async def lookup(self, digest: str) -> Caller | None:
        """The caller from the database (concurrent lookups of one token share a read)."""
        if self.ttl_s <= 0:
            return await self._lookup(digest, self._generation)
        return await self._flights.run(digest, partial(self._lookup, digest, self._generation))

    async def _lookup(self, digest: str, generation: int) -> Caller | None:
        started = time.monotonic()
        async with driver_connection(self.engine) as conn:
            row = await conn.fetchrow(_LOOKUP_SQL, digest)
            if row is None:
                return None
            token_id, team_id, team_name, last_used = row
            now = datetime.now(UTC)
            if last_used is None or now - last_used > LAST_USED_RESOLUTION:
                await conn.execute(_TOUCH_SQL, token_id, now)
        caller = Caller(team_id=team_id, team_name=team_name, token_id=token_id)
        if self.ttl_s > 0 and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))  # the oldest
            self._entries[digest] = _Entry(caller, started + self.ttl_s, started)
        return caller

    def _touch_later(self, token_id: uuid.UUID) -> None:
        async def touch() -> None:
            try:
                async with driver_connection(self.engine) as conn:
                    await conn.execute(_TOUCH_SQL, token_id, datetime.now(UTC))
            except Exception as exc:  # a missed last_used_at is not worth failing for
                if database_unavailable(exc):
                    DATABASE.failed(exc)  # the outage's one warning
                else:
                    log.warning("could not record a token's last use (%s)", describe(exc))

        task = asyncio.create_task(touch(), name="token-last-used")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def drop(self, digests: Iterable[str]) -> None:
        """Forget these token hashes (revoked); lookups under way are not shared any more."""
        self._generation += 1
        self._flights.clear()
        for digest in digests:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        self._generation += 1
        self._flights.clear()
        self._entries.clear()

    def on_message(self, text: str) -> None:
        """A message on `hangar:tokens`: space-separated hashes of revoked tokens."""
        digests = text.split()
        if digests:
            self.drop(digests)
        else:
            self.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
