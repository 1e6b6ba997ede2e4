"""arq job functions. Each is short and idempotent: it reads what to do from the rows."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import select

from app.db.models import Node
from app.domain.status import ClusterStatus, NodeStatus, Reason
from app.services.state import ClusterGone
from workers import leases
from workers.bootstrap import bootstrap_step
from workers.context import Work, work
from workers.create import create_batch, create_step
from workers.instant import steps as instant_steps
from workers.poll import poll_starting as _poll_starting
from workers.teardown import teardown_step

log = logging.getLogger("hangar.worker")
N = NodeStatus
BUSY_RETRY_S = 0.5
MAX_INLINE_STEPS = 6
# Statuses whose step differs for the nodes of an Instant Cluster (workers/instant/).
INSTANT_STEPS = (N.PENDING, N.CREATING, N.TERMINATING)


async def node_step(ctx: dict[str, Any], node_id: str) -> str:
    """Advance one node as far as it can go without waiting, holding the node's lease.

    Each step returns True to go on at once (inline, with the status it left) or False
    once it has said, through `ClusterTx.check_again`, when the node is next looked at.
    Wake-ups asked for this node while the job holds its lease are sent when it ends."""
    w = work(ctx)
    nid = uuid.UUID(node_id)
    owner = uuid.uuid4()
    # Steps go on inline while one more (up to two RunPod calls) surely fits in the job.
    inline_until = (time.monotonic() + max(w.settings.lease_s - 5, 5)
                    - 2 * w.settings.runpod_call_deadline_s)
    row = await leases.acquire(w.autocommit, nid, owner, w.settings.lease_s,
                               owed=w.recovery.leases)
    if row is None:
        async with w.autocommit() as session:
            status = await session.scalar(select(Node.status).where(Node.id == nid))
        if status is None or status == N.TERMINATED:
            return "gone"  # deleted or finished: nothing will ever need this job again
        # Another job works on this node; look again shortly (its result may need us).
        await w.dispatcher.node(nid, BUSY_RETRY_S)
        return "busy"
    try:
        try:
            for step in range(MAX_INLINE_STEPS):
                if step and time.monotonic() > inline_until:
                    break
                # A wake-up asked for before this read is superseded by the step that
                # follows it (which sees what the wake-up was about): only the last counts.
                w.dispatcher.hold(nid)
                if step:  # the lease gave us the status for the first step
                    async with w.autocommit() as session:
                        row = (await session.execute(
                            select(Node.cluster_id, Node.status).where(Node.id == nid)
                        )).first()
                    if row is None:
                        return "gone"
                cluster_id, status = row
                if not await _step(w, cluster_id, nid, status, owner):
                    return "done"
            # Still moving after this many steps (or this long): go on in a job of its own.
            async with w.locked(cluster_id) as tx:
                node = tx.node(nid)
                if node is not None:
                    tx.check_again(node, 0)
            return "continued"
        except ClusterGone:
            return "gone"
        finally:
            await leases.release(w.autocommit, nid, owner, owed=w.recovery.leases)
    finally:
        await w.dispatcher.release(nid)


async def _step(w, cluster_id: uuid.UUID, node_id: uuid.UUID, status: str,
                owner: uuid.UUID) -> bool:
    """The step for the node's status; True to go on at once."""
    if status in INSTANT_STEPS and await instant_steps.is_instant(w, cluster_id):
        return await instant_steps.step(w, cluster_id, node_id, status)  # one Instant Cluster
    if status == N.PENDING:  # with every other pending node of its cluster
        return await create_batch(w, cluster_id, node_id, owner)
    if status == N.CREATING:
        return await create_step(w, cluster_id, node_id)
    if status == N.BOOTSTRAPPING:
        return await bootstrap_step(w, cluster_id, node_id)
    if status == N.TERMINATING:
        return await teardown_step(w, cluster_id, node_id)
    if status == N.STARTING:
        await w.dispatcher.poll(0)  # the batched poll advances starting nodes
    return False  # starting (the poll's), ready, terminated: nothing for this job


async def poll_starting(ctx: dict[str, Any]) -> int:
    """One pod list for every starting node (re-enqueues itself while any remain)."""
    return await _poll_starting(work(ctx))


async def expire_cluster(ctx: dict[str, Any], cluster_id: str) -> str:
    """TTL: tear a ready cluster down once its time is up."""
    return await expire(work(ctx), uuid.UUID(cluster_id))


async def expire(w: Work, cluster_id: uuid.UUID) -> str:
    """The expiry check itself: the job's, and the reconciler's for an expiry overdue by
    `HANGAR_RECONCILE_GRACE` (its job lost, or left "in progress" by a killed worker)."""
    try:
        async with w.locked(cluster_id) as tx:
            c = tx.cluster
            if c.status != ClusterStatus.READY or c.expires_at is None:
                return "not ready"
            if c.expires_at > tx.now:  # the TTL was extended since this check was set
                await w.dispatcher.expire(c.id, c.expires_at)
                return "early"
            tx.request_delete(Reason.TTL_EXPIRED, f"ttl of {c.ttl_seconds}s expired")
    except ClusterGone:
        return "gone"
    return "expired"
