"""Deleting an Instant Cluster at teardown: one delete for every member (by id, or found by
its committed name), retried until RunPod confirms; then every terminating node of the
cluster is `terminated` at once."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.db.models import Cluster as ClusterRow
from app.domain.status import NodeStatus
from app.providers.base import ProviderError
from workers.context import Work
from workers.teardown import retry_teardown

N = NodeStatus


async def teardown_step(w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID) -> bool:
    """Delete the Instant Cluster (by id, or found by its committed name); once RunPod
    confirms (2xx or 404), every terminating node of the cluster is `terminated`. Member
    pods are never terminated one by one (RunPod answers 409)."""
    async with w.autocommit() as session:
        c = (await session.execute(
            select(ClusterRow.provider_cluster_id, ClusterRow.provider_cluster_name)
            .where(ClusterRow.id == cluster_id))).first()
    if c is None:
        return False
    provider_id, name = c
    try:
        if provider_id is None and name is not None:
            # Created but never recorded (crash, lost response): find it by name. We hold
            # the lead's lease, so no live job is creating under this name right now.
            found = await w.provider.find_cluster_by_name(name)
            provider_id = found.id if found is not None else None
        if provider_id is not None:
            await w.provider.delete_cluster(provider_id)
    except ProviderError as exc:
        async with w.locked(cluster_id) as tx:
            lead = tx.node(lead_id)
            if lead is None or lead.status != N.TERMINATING:
                return lead is not None
            retry_teardown(tx, lead, f"deleting Instant Cluster {provider_id or name}", exc)
        return False
    async with w.locked(cluster_id) as tx:
        lead = tx.node(lead_id)
        if lead is None or lead.status != N.TERMINATING:
            return False
        for node in tx.nodes:
            if node.status == N.TERMINATING:
                tx.set_node_status(node, N.TERMINATED)
    return False
