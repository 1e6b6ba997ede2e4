"""Which clusters take the Instant Cluster path, and the step `node_step` runs for one of
their nodes that is pending, creating or terminating: the lead's create or teardown, or, for
every other node, a wait without a deadline (the lead's transactions move it)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.db.models import Cluster as ClusterRow
from app.db.models import Node
from app.domain.status import NodeStatus
from app.services.state import ClusterTx
from workers.context import Work
from workers.instant import LEAD, NETWORK
from workers.instant.create import create_step
from workers.instant.teardown import teardown_step

N = NodeStatus


# cluster id -> whether it is an Instant Cluster. A cluster's network never changes, so a
# worker reads it once per cluster (bounded: cleared when full).
_IS_INSTANT: dict[uuid.UUID, bool] = {}
_IS_INSTANT_MAX = 50_000


async def is_instant(w: Work, cluster_id: uuid.UUID) -> bool:
    known = _IS_INSTANT.get(cluster_id)
    if known is not None:
        return known
    async with w.autocommit() as session:
        network = await session.scalar(
            select(ClusterRow.network).where(ClusterRow.id == cluster_id))
    if network is None:
        return False  # deleted: nothing to do on either path
    if len(_IS_INSTANT) >= _IS_INSTANT_MAX:
        _IS_INSTANT.clear()
    _IS_INSTANT[cluster_id] = network == NETWORK
    return _IS_INSTANT[cluster_id]


async def step(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID, status: str) -> bool:
    """`node_step`'s step for a node of an Instant Cluster that is pending, creating or
    terminating (starting, bootstrapping and ready nodes take the common steps)."""
    async with w.autocommit() as session:
        index = await session.scalar(select(Node.index).where(Node.id == node_id))
    if index is None:
        return False
    if index != LEAD:
        return await _wait_for_lead(w, cluster_id, node_id)
    if status in (N.PENDING, N.CREATING):
        return await create_step(w, cluster_id, node_id)
    if status == N.TERMINATING:
        return await teardown_step(w, cluster_id, node_id)
    return False


async def _wait_for_lead(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID) -> bool:
    """A node other than the lead has nothing to do at RunPod: it waits without a deadline
    (the lead's transactions move it). Many of them at once share one transaction."""

    def idle(tx: ClusterTx) -> None:
        node = tx.node(node_id)
        if node is not None and node.status in (N.PENDING, N.CREATING, N.TERMINATING):
            tx.check_again(node, None)

    await w.group.run(cluster_id, idle)
    return False
