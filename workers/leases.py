"""One job at a time per node: a short lease in the node row (survives nothing but time).

A lease that cannot be given back because the database is away is owed (`OwedLeases`):
the worker gives it back as soon as the database answers again (`workers/recovery.py`),
so its node is not stuck until the lease runs out. Giving back is conditional on the
owner, so a late release never frees a lease another job has taken since."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Node
from app.domain.status import NodeStatus
from app.outages import DATABASE, database_unavailable


class OwedLeases:
    """Leases this process took (or may have taken) and could not give back."""

    def __init__(self) -> None:
        # owner -> the nodes, or None: whichever nodes it holds (not known which)
        self._by_owner: dict[uuid.UUID, set[uuid.UUID] | None] = {}

    def add(self, owner: uuid.UUID, node_ids: set[uuid.UUID] | None) -> None:
        if owner in self._by_owner:
            known = self._by_owner[owner]
            self._by_owner[owner] = None if known is None or node_ids is None else (
                known | node_ids)
        elif node_ids is None or node_ids:
            self._by_owner[owner] = None if node_ids is None else set(node_ids)

    def __len__(self) -> int:
        return len(self._by_owner)

    async def settle(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        """Give them all back (raises while the database is still away). Returns how many
        owners' leases were given back."""
        settled = 0
        for owner, ids in list(self._by_owner.items()):
            await _release(sessionmaker, ids, owner)
            settled += 1
            del self._by_owner[owner]
        return settled


@asynccontextmanager
async def _owing(owed: OwedLeases | None, owner: uuid.UUID, node_ids: set[uuid.UUID] | None):
    """On a database outage, owe these leases (the statement may have taken them)."""
    try:
        yield
    except Exception as exc:
        if owed is not None and database_unavailable(exc):
            owed.add(owner, node_ids)
        raise


async def acquire(
    sessionmaker: async_sessionmaker[AsyncSession], node_id: uuid.UUID, owner: uuid.UUID,
    seconds: float, *, owed: OwedLeases | None = None,
) -> tuple[uuid.UUID, str] | None:
    """Take the node's lease. Returns the node's (cluster id, status) as of taking it (saves
    the job a read), or None if another job holds the lease or the node is gone.
    One statement: pass an autocommit sessionmaker and it is one round trip. If the
    connection is lost, the lease may have been taken: it is owed (`owed`)."""
    async with _owing(owed, owner, {node_id}), sessionmaker() as session, session.begin():
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
    sessionmaker: async_sessionmaker[AsyncSession], node_id: uuid.UUID, owner: uuid.UUID,
    *, owed: OwedLeases | None = None,
) -> None:
    await release_many(sessionmaker, {node_id}, owner, owed=owed)


async def acquire_pending(
    sessionmaker: async_sessionmaker[AsyncSession], cluster_id: uuid.UUID, owner: uuid.UUID,
    seconds: float, *, owed: OwedLeases | None = None,
) -> set[uuid.UUID]:
    """Take the leases of every pending node of the cluster that no other job holds (those
    `owner` already holds included). Returns their ids. One statement."""
    async with _owing(owed, owner, None), sessionmaker() as session, session.begin():
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
    sessionmaker: async_sessionmaker[AsyncSession], node_ids: set[uuid.UUID], owner: uuid.UUID,
    *, owed: OwedLeases | None = None,
) -> None:
    """Give back the leases `owner` holds on these nodes (one statement). With `owed`, a
    database outage does not raise: the leases are owed, given back once it is back."""
    if not node_ids:
        return
    try:
        await _release(sessionmaker, node_ids, owner)
    except Exception as exc:
        if owed is None or not database_unavailable(exc):
            raise
        DATABASE.failed(exc)
        owed.add(owner, node_ids)


async def _release(
    sessionmaker: async_sessionmaker[AsyncSession], node_ids: set[uuid.UUID] | None,
    owner: uuid.UUID,
) -> None:
    """`node_ids` None: every node `owner` holds (not using the primary key: a scan)."""
    statement = update(Node).where(Node.lease_owner == owner)
    if node_ids is not None:
        statement = statement.where(Node.id.in_(node_ids))
    async with sessionmaker() as session, session.begin():
        await session.execute(statement.values(lease_owner=None, lease_until=None))
