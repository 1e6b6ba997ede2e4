"""Reading a cluster's events out of the database (the truth the stream replays from).

Event ids (`seq`) are assigned under the cluster's row lock and committed in that order
(docs/ARCHITECTURE.md, invariant 5), so the committed events of a cluster are always a prefix
1..n: reading `seq > last` can never skip one that commits later.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Cluster, ClusterEvent, Node
from app.domain.status import ClusterStatus, NodeStatus


async def events_after(
    session: AsyncSession, cluster_id: uuid.UUID, after: int, limit: int
) -> list[ClusterEvent]:
    """Up to `limit` events with id > `after`, oldest first."""
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


@dataclass(frozen=True)
class StreamState:
    """Where a cluster's event stream stands, read in one statement (one snapshot)."""

    exists: bool
    finished: bool  # terminal, and every node terminated: no event will follow
    last_seq: int  # the newest committed event id

    def complete_at(self, last: int) -> bool:
        """A reader that has every event up to `last` has the whole stream."""
        return not self.exists or (self.finished and last >= self.last_seq)


async def stream_state(session: AsyncSession, cluster_id: uuid.UUID) -> StreamState:
    """Read this *before* the events: whatever was final then is among the rows read after,
    so "finished" never cuts off the terminal events that committed in between."""
    live_nodes = exists().where(
        Node.cluster_id == Cluster.id, Node.status != NodeStatus.TERMINATED
    )
    row = (
        await session.execute(
            select(Cluster.status, Cluster.last_event_seq, live_nodes).where(
                Cluster.id == cluster_id
            )
        )
    ).one_or_none()
    if row is None:
        return StreamState(exists=False, finished=True, last_seq=0)
    status, last_seq, any_live = row
    return StreamState(
        exists=True,
        finished=ClusterStatus(status).is_terminal and not any_live,
        last_seq=int(last_seq or 0),
    )
