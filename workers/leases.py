"""One job at a time per node: a short lease in the node row (survives nothing but time)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Node
from app.domain.status import NodeStatus


async def acquire(
    sessionmaker: async_sessionmaker[AsyncSession], node_id: uuid.UUID, owner: uuid.UUID,
    seconds: float,
) -> tuple[uuid.UUID, str] | None:
    """Take the node's lease. Returns the node's (cluster id, status) as of taking it (saves
    the job a read), or None if another job holds the lease or the node is gone.
    One statement: pass an autocommit sessionmaker and it is one round trip."""
    async with sessionmaker() as session, session.begin():
        row = await session.execute(
            update(Node)
            .where(Node.id == node_id)
            .where(or_(Node.lease_until.is_(None), Node.lease_until < func.now()))
            .values(lease_owner=owner, lease_until=func.now() + timedelta(seconds=seconds))
            .returning(Node.cluster_id, Node.status)
        )
        found = row.first()
        return None if found is None else (found[0], found[1])


async def release(
    sessionmaker: async_sessionmaker[AsyncSession], node_id: uuid.UUID, owner: uuid.UUID
) -> None:
    await release_many(sessionmaker, {node_id}, owner)


async def acquire_pending(
    sessionmaker: async_sessionmaker[AsyncSession], cluster_id: uuid.UUID, owner: uuid.UUID,
    seconds: float,
) -> set[uuid.UUID]:
    """Take the leases of every pending node of the cluster that no other job holds (those
    `owner` already holds included). Returns their ids. One statement."""
    async with sessionmaker() as session, session.begin():
        rows = await session.execute(
            update(Node)
            .where(Node.cluster_id == cluster_id, Node.status == NodeStatus.PENDING)
            .where(or_(Node.lease_until.is_(None), Node.lease_until < func.now(),
                       Node.lease_owner == owner))
            .values(lease_owner=owner, lease_until=func.now() + timedelta(seconds=seconds))
            .returning(Node.id)
        )
        return set(rows.scalars().all())


async def release_many(
    sessionmaker: async_sessionmaker[AsyncSession], node_ids: set[uuid.UUID], owner: uuid.UUID
) -> None:
    """Give back the leases `owner` holds on these nodes (one statement)."""
    if not node_ids:
        return
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Node)
            .where(Node.id.in_(node_ids), Node.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
