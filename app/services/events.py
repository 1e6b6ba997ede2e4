"""Reading a cluster's events out of the database (the truth the stream replays from)."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Cluster, ClusterEvent, Node
from app.domain.status import ClusterStatus, NodeStatus


async def events_after(
    session: AsyncSession, cluster_id: uuid.UUID, after: int, limit: int
) -> list[ClusterEvent]:
    return list(
        (
            await session.scalars(
                select(ClusterEvent)
                .where(ClusterEvent.cluster_id == cluster_id, ClusterEvent.seq > after)
                .order_by(ClusterEvent.seq)
                .limit(limit)
            )
        ).all()
    )


async def is_finished(session: AsyncSession, cluster_id: uuid.UUID) -> bool:
    """Terminal, and every node terminated: no event will follow."""
    status = await session.scalar(select(Cluster.status).where(Cluster.id == cluster_id))
    if status is None:
        return True
    if not ClusterStatus(status).is_terminal:
        return False
    live = await session.scalar(
        select(
            exists().where(Node.cluster_id == cluster_id, Node.status != NodeStatus.TERMINATED)
        )
    )
    return not live
