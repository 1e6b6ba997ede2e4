"""Terminating a node's pod until the provider confirms it is gone, without end."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from app.db.models import Node
from app.domain.status import NodeStatus
from app.providers.base import ProviderError
from workers.context import Work

log = logging.getLogger("hangar.worker.teardown")
N = NodeStatus


def teardown_delay(attempts: int) -> float:
    return min(2.0 ** attempts, 60.0)


async def teardown_step(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID) -> bool:
    """Terminate the node's pod; `terminated` once the provider confirms. False: the node
    is done, or its retry is scheduled."""
    async with w.autocommit() as session:
        node = await session.scalar(select(Node).where(Node.id == node_id))
    if node is None or node.status != N.TERMINATING:
        return node is not None
    try:
        if node.pod_id:
            await w.provider.terminate_pod(node.pod_id)
        elif node.pod_name:
            # Created but never recorded (crash, lost response): find it by name. We hold the
            # node's lease, so no live job is creating under this name right now.
            pod = await w.provider.find_pod_by_name(node.pod_name)
            if pod is not None:
                await w.provider.terminate_pod(pod.id)
    except ProviderError as exc:
        async with w.locked(cluster_id) as tx:
            n = tx.node(node_id)
            if n is None or n.status != N.TERMINATING:
                return n is not None
            n.terminate_attempts += 1
            delay = teardown_delay(n.terminate_attempts)
            tx.check_again(n, delay)
            # Say so on the 1st, 2nd, 4th, 8th... failure: visible, not flooding.
            if n.terminate_attempts & (n.terminate_attempts - 1) == 0:
                tx.notice(f"terminating pod {n.pod_id or n.pod_name} failed ({exc.message}); "
                          f"retrying in {delay:.0f}s (attempt {n.terminate_attempts})",
                          node=n, code="terminate_retry")
        return False
    async with w.locked(cluster_id) as tx:
        n = tx.node(node_id)
        if n is not None and n.status == N.TERMINATING:
            tx.set_node_status(n, N.TERMINATED)
    return False
