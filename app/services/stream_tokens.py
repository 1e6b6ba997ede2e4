"""Granting stream tokens (app/domain/stream_tokens.py) for a team's own clusters."""

from __future__ import annotations

import uuid

import asyncpg

from app.domain import stream_tokens


class ClusterNotFound(LookupError):
    """No cluster with that id belongs to the team."""


async def grant(conn: asyncpg.Connection, key: bytes, team_id: uuid.UUID,
                cluster_id: uuid.UUID, ttl_s: int, now: float) -> tuple[str, int]:
    """A stream token for the team's cluster and its expiry (Unix seconds), valid `ttl_s`
    from `now`; any cluster of the team, finished ones included (their events replay)."""
    owner = await conn.fetchval("SELECT team_id FROM clusters WHERE id = $1", cluster_id)
    if owner != team_id:
        raise ClusterNotFound(cluster_id)
    expires = int(now) + ttl_s
    return stream_tokens.issue(key, cluster_id, team_id, expires), expires
