"""Waiting for an Instant Cluster's members: one `get_cluster` per starting cluster per poll
tick, whatever its size. Once every rank runs with an SSH address and an overlay address,
member `rank` is copied onto node `rank` and the nodes go on to bootstrap; a member that
exits, a cluster that disappears or a start that takes too long fails the cluster."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from app.domain.status import NodeStatus, Reason
from app.providers.base import Cluster, ProviderError
from app.services.state import ClusterGone, ClusterTx, utcnow
from workers.context import Work
from workers.instant import LEAD
from workers.poll import _check_budget, _push_deadlines

log = logging.getLogger("hangar.worker.instant")
N = NodeStatus
# Instant Clusters read at once by one poll; reads not started in time wait for the next
# tick (the poll's job must end within its timeout).
READ_CONCURRENCY = 16


class Verdict(StrEnum):
    GONE = "gone"  # RunPod no longer knows the cluster
    EXITED = "exited"  # a member exited, errored or was terminated while starting
    RUNNING = "running"  # every rank runs with an SSH address and an overlay address
    TIMED_OUT = "timed_out"
    STARTING = "starting"


def verdict(found: Cluster | None | Exception, started: datetime | None, now: datetime,
            timeout_s: float) -> Verdict:
    if found is None:
        return Verdict.GONE
    if isinstance(found, Cluster):
        if any(m.has_failed or m.is_gone for m in found.members):
            return Verdict.EXITED
        if found.all_ready:
            return Verdict.RUNNING
    if (now - (started or now)).total_seconds() > timeout_s:
        return Verdict.TIMED_OUT
    return Verdict.STARTING  # still starting, or not read this tick (an error, out of time)


async def poll_clusters(w: Work, rows: list[Any]) -> tuple[int, float]:
    """Advance the starting nodes of Instant Clusters (`rows`: node id, cluster id,
    provision_started_at, next_check_at, provider_cluster_id) from one `get_cluster` per
    cluster. Returns how many nodes are still starting and the oldest one's age (s)."""
    clusters: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for r in rows:
        clusters[r.cluster_id].append(r)
    gate = asyncio.Semaphore(READ_CONCURRENCY)
    # A read (two requests, each within the call deadline) started by then ends within the
    # poll's job timeout (the lease minus 5 s).
    s = w.settings
    read_by = time.monotonic() + max(s.lease_s - 5 - 2 * s.runpod_call_deadline_s, 1.0)

    async def read(provider_id: str | None) -> Cluster | None | Exception:
        if provider_id is None:
            return RuntimeError("no Instant Cluster recorded")  # cannot be starting: wait
        async with gate:
            if time.monotonic() > read_by:
                return TimeoutError("not read this tick")
            try:
                return await w.provider.get_cluster(provider_id)
            except ProviderError as exc:
                log.warning("reading Instant Cluster %s failed: %s", provider_id, exc.message)
                return exc

    ids = list(clusters)
    found = dict(zip(ids, await asyncio.gather(
        *(read(clusters[cid][0].provider_cluster_id) for cid in ids)), strict=True))
    now = utcnow()
    timeout = w.settings.provision_timeout_s
    horizon = timedelta(seconds=w.settings.poll_interval_max_s)
    still, oldest, refresh = 0, 0.0, []
    for cid in ids:
        started = min((r.provision_started_at for r in clusters[cid] if r.provision_started_at),
                      default=None)
        seen = verdict(found[cid], started, now, timeout)
        if seen == Verdict.STARTING:
            still += len(clusters[cid])
            oldest = max(oldest, (now - (started or now)).total_seconds())
            refresh += [r.id for r in clusters[cid]
                        if r.next_check_at is None or r.next_check_at - now < horizon / 2]
            continue
        try:
            async with w.locked(cid) as tx:
                _apply(w, tx, found[cid], seen)  # type: ignore[arg-type]
        except ClusterGone:
            continue
    if refresh:
        await _push_deadlines(w, refresh, now + horizon)
    return still, oldest


def _apply(w: Work, tx: ClusterTx, found: Cluster | None, seen: Verdict) -> None:
    """Under the lock: what the provider says about the cluster's starting nodes."""
    starting = [n for n in tx.nodes if n.status == N.STARTING]
    if not starting:
        return  # deleted or failed meanwhile
    lead = next((n for n in tx.nodes if n.index == LEAD), starting[0])
    pcid = tx.cluster.provider_cluster_id
    if seen == Verdict.GONE:
        tx.fail_node(lead, Reason.POD_EXITED, f"Instant Cluster {pcid} disappeared while starting")
    elif seen == Verdict.EXITED and found is not None:
        member = next(m for m in found.members if m.has_failed or m.is_gone)
        node = next((n for n in tx.nodes if n.index == member.cluster_rank), lead)
        rank = "?" if member.cluster_rank is None else member.cluster_rank
        tx.fail_node(node, Reason.POD_EXITED,
                     f"member pod {member.id} (rank {rank}) of Instant Cluster {pcid} is "
                     f"{member.status} while starting")
    elif seen == Verdict.TIMED_OUT:
        running = sum(1 for m in found.members if m.ssh_ready and m.private_ip) if isinstance(
            found, Cluster) else 0
        tx.fail_node(lead, Reason.PROVISION_TIMEOUT,
                     f"Instant Cluster {pcid}: {running} of {tx.cluster.node_count} members "
                     f"running with addresses after {w.settings.provision_timeout_s:.0f}s")
    elif seen == Verdict.RUNNING and found is not None:
        members = found.members_by_rank() or []
        for node in starting:
            m = members[node.index]
            node.pod_id = m.id
            node.public_ip, node.ssh_port, node.private_ip = m.ssh_host, m.ssh_port, m.private_ip
            node.hourly_rate = m.cost_per_hour
            node.started_at = m.started_at or tx.now
            node.data_center_id = m.data_center_id or found.data_center_id or node.data_center_id
            node.gpu_type_id = m.gpu_type_id or node.gpu_type_id
            tx.set_node_status(node, N.BOOTSTRAPPING)
            # Every node has its address now: the roll-up of this transaction turns the
            # cluster `bootstrapping` and wakes them all.
            tx.check_again(node, None)
        _check_budget(tx)
