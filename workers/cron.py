"""The reconciler: re-enqueue overdue work from the rows, expire TTLs, sweep orphan pods."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from app.db.models import Cluster, Node
from app.domain.status import ClusterStatus, NodeStatus
from app.providers.base import ProviderError
from app.services.state import utcnow
from workers.context import Work, work
from workers.instant.sweep import sweep_clusters
from workers.jobs import expire
from workers.orphans import remove_orphans

log = logging.getLogger("hangar.worker.cron")
N = NodeStatus
BATCH = 1000
# Terminations a sweep starts until then (each within the RunPod call deadline), so it
# ends within its job timeout (workers/settings.py); the next sweep takes the rest.
SWEEP_BUDGET_S = 60.0


async def reconcile(ctx: dict[str, Any]) -> dict[str, int]:
    """Whatever the rows say is overdue gets a job again: lost jobs, a flushed Redis or a
    killed worker delay work, never lose it (docs/ARCHITECTURE.md, invariant 1)."""
    w = work(ctx)
    now = utcnow()
    overdue = now - timedelta(seconds=w.settings.reconcile_grace_s)
    async with w.sessionmaker() as session:
        nodes = (await session.execute(
            select(Node.id, Node.status, Node.next_check_at, Node.lease_until)
            .where(Node.status.notin_([N.TERMINATED, N.READY]))
            .where(Node.next_check_at < overdue)
            .where(or_(Node.lease_until.is_(None), Node.lease_until < func.now()))
            .limit(BATCH)
        )).all()
        expired = (await session.execute(
            select(Cluster.id, Cluster.expires_at).where(
                Cluster.status == ClusterStatus.READY, Cluster.expires_at <= now
            ).limit(BATCH)
        )).all()
    poll = False
    for node_id, status, due, lease_until in nodes:
        if status == N.STARTING:
            poll = True
        else:
            await w.dispatcher.recover(node_id, due, lease_until)
    if poll:
        await w.dispatcher.poll(0)
    for cluster_id, expires_at in expired:
        if expires_at < overdue:
            # Its job should have run by now: lost, or held "in progress" by a killed
            # worker for arq's in-progress timeout (minutes). Expire it here.
            await expire(w, cluster_id)
        else:
            await w.dispatcher.expire(cluster_id, expires_at)
    if nodes or expired:
        log.info("reconciler: %d nodes re-enqueued, %d expiries re-enqueued or expired",
                 len(nodes), len(expired))
    return {"nodes": len(nodes), "expired": len(expired)}


async def catch_up(w: Work) -> int:
    """After Redis or the database was away: re-enqueue every live node with a deadline and
    a free lease, at its deadline (its own wake-up may have been dropped meanwhile), rather
    than `HANGAR_RECONCILE_GRACE` after it. A node whose job is still queued may run one
    step more than needed; steps are safe to run twice."""
    now = utcnow()
    async with w.autocommit() as session:
        nodes = (await session.execute(
            select(Node.id, Node.status, Node.next_check_at)
            .where(Node.status.notin_([N.TERMINATED, N.READY]))
            .where(Node.next_check_at.is_not(None))
            .where(or_(Node.lease_until.is_(None), Node.lease_until < func.now()))
            .order_by(Node.next_check_at)
            .limit(BATCH)
        )).all()
    poll: float | None = None
    for node_id, status, due in nodes:
        delay = max((due - now).total_seconds(), 0.0)
        if status == N.STARTING:
            poll = delay if poll is None else min(poll, delay)
        else:
            await w.dispatcher.catch_up(node_id, due, delay)
    if poll is not None:
        await w.dispatcher.poll(poll)
    log.info("caught up after an outage: %d nodes re-enqueued at their deadlines", len(nodes))
    return len(nodes)


async def sweep_orphans(ctx: dict[str, Any]) -> int:
    return await sweep(work(ctx))


async def sweep(w: Work) -> int:
    """Terminate pods carrying Hangar's prefix that no live node owns, once they are older
    than the grace period (a create may be in flight for a node that has not recorded it);
    and Instant Clusters likewise (workers/instant/sweep.py). Returns how many it removed."""
    stop_at = time.monotonic() + SWEEP_BUDGET_S
    return await _sweep_pods(w, stop_at) + await sweep_clusters(w, stop_at)


async def _sweep_pods(w: Work, stop_at: float) -> int:
    prefix = w.settings.pod_name_prefix + "-"
    try:
        pods = await w.provider.list_pods(name_prefix=prefix)
    except ProviderError as exc:
        log.warning("orphan sweep could not list pods: %s", exc.message)
        return 0
    if not pods:
        return 0
    async with w.sessionmaker() as session:
        owned = (await session.execute(
            select(Node.pod_id, Node.pod_name).where(Node.status != N.TERMINATED)
        )).all()
    owned_ids = {r.pod_id for r in owned if r.pod_id}
    owned_names = {r.pod_name for r in owned if r.pod_name}
    return await remove_orphans(w, [p for p in pods if not p.is_gone], owned_ids, owned_names,
                                w.provider.terminate_pod, "pod", "terminated", stop_at)
