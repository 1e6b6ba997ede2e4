"""Teams and their API tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiToken, Team
from app.domain.crypto import hash_token, new_token, token_display_prefix


async def get_or_create_team(session: AsyncSession, name: str) -> Team:
    await session.execute(
        insert(Team).values(name=name).on_conflict_do_nothing(index_elements=["name"])
    )
    return (await session.scalars(select(Team).where(Team.name == name))).one()


async def create_token(session: AsyncSession, team_name: str) -> tuple[ApiToken, str]:
    """Create a token for the team (created if needed). The plaintext is returned once."""
    team = await get_or_create_team(session, team_name)
    plaintext = new_token()
    token = ApiToken(
        team_id=team.id, prefix=token_display_prefix(plaintext), token_hash=hash_token(plaintext)
    )
    session.add(token)
    await session.commit()
    return token, plaintext


async def revoke_tokens(session: AsyncSession, prefix_or_token: str) -> list[str]:
    """Revoke by the token itself or by its displayed prefix; returns the revoked tokens'
    hashes. API processes cache tokens for `HANGAR_AUTH_CACHE_SECONDS`: this process's
    caches drop them at once; tell the others with `announce_revoked`."""
    condition = (
        ApiToken.token_hash == hash_token(prefix_or_token)
        if len(prefix_or_token) > 16
        else ApiToken.prefix == prefix_or_token
    )
    result = await session.execute(
        update(ApiToken)
        .where(condition, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiToken.token_hash)
    )
    hashes = list(result.scalars())
    await session.commit()
    if hashes:
        for hook in list(_revocation_hooks):
            hook(hashes)
    return hashes


async def revoke_token(session: AsyncSession, prefix_or_token: str) -> int:
    """`revoke_tokens`, returning how many were revoked."""
    return len(await revoke_tokens(session, prefix_or_token))


# --- telling API processes ------------------------------------------------------------------

# Revocations go out on the Redis channel `RedisNames.tokens`: a message is the revoked
# tokens' hashes, space-separated. Every API process's EventHub subscribes to it and
# drops them from its token cache.

_revocation_hooks: set[Callable[[list[str]], None]] = set()


def on_revoked(hook: Callable[[list[str]], None]) -> Callable[[], None]:
    """Call `hook(hashes)` when this process revokes tokens; returns the unregister call."""
    _revocation_hooks.add(hook)
    return lambda: _revocation_hooks.discard(hook)


async def announce_revoked(redis_url: str, channel: str, hashes: list[str],
                           timeout_s: float = 5.0) -> int:
    """Publish revoked token hashes to the API processes; returns how many subscribers
    received it. Raises when Redis cannot be reached (the caches' TTL then bounds the
    delay)."""
    client = aioredis.from_url(redis_url, socket_connect_timeout=timeout_s,
                               socket_timeout=timeout_s)
    try:
        return int(await client.publish(channel, " ".join(hashes)))
    finally:
        await client.aclose()
