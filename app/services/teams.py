"""Teams and their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime

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


async def revoke_token(session: AsyncSession, prefix_or_token: str) -> int:
    """Revoke by the token itself or by its displayed prefix. Returns how many were revoked."""
    condition = (
        ApiToken.token_hash == hash_token(prefix_or_token)
        if len(prefix_or_token) > 16
        else ApiToken.prefix == prefix_or_token
    )
    result = await session.execute(
        update(ApiToken)
        .where(condition, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await session.commit()
    return result.rowcount
