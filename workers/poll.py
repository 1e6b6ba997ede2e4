"""Waiting for pods to run: one pod list per tick for every starting node, not a GET per pod."""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update

from app.db.models import Cluster, Node
from app.domain.billing import is_billing
from app.domain.status import NodeStatus, Reason
from app.providers.base import Pod, ProviderError
from app.services.state import ClusterGone, ClusterTx, utcnow
from workers.context import Work
from workers.instant import NETWORK as INSTANT_NETWORK

log = logging.getLogger("hangar.worker.poll")
N = NodeStatus


def poll_delay(w: Work, oldest_age_s: float) -> float:
    """Poll fast while pods are young (they usually start within seconds), then back off."""
    base, cap = w.settings.poll_interval_s, w.settings.poll_interval_max_s
    if oldest_age_s < 15:
        return base / 2
    if oldest_age_s < 60:
        return base
    return cap


async def poll_starting(w: Work) -> int:
    """Advance every `starting` node: independent pods from one pod list, Instant Clusters
    from one read each (workers/instant/poll.py). Returns how many are still starting."""
    from workers.instant.poll import poll_clusters  # it imports this module's helpers

    started = time.time()
    async with w.autocommit() as session:
        rows = (
            await session.execute(
                select(Node.id, Node.cluster_id, Node.pod_id, Node.provision_started_at,
                       Node.next_check_at, Cluster.network, Cluster.provider_cluster_id)
                .join(Cluster, Cluster.id == Node.cluster_id)
                .where(Node.status == N.STARTING)
            )
        ).all()
    if not rows:
        return 0
    members = [r for r in rows if r.network == INSTANT_NETWORK]
    pods = [r for r in rows if r.network != INSTANT_NETWORK]
    still_starting, oldest = await _poll_pods(w, pods) if pods else (0, 0.0)
    if members:
        more, older = await poll_clusters(w, members)
        still_starting, oldest = still_starting + more, max(oldest, older)
    if still_starting:
        await w.dispatcher.poll(poll_delay(w, oldest), since=started)
    return still_starting


async def _poll_pods(w: Work, rows: list) -> tuple[int, float]:
    """Independent pods: one pod list for all. Returns how many nodes are still starting
    and the oldest one's age (s)."""
    try:
        pods = await w.provider.list_pods(name_prefix=w.settings.pod_name_prefix + "-")
    except ProviderError as exc:
        log.warning("pod list failed: %s; polling again shortly", exc.message)
        # Polled again after the longest interval (the age stands for "back off").
        return len(rows), 60.0
    by_id = {p.id: p for p in pods}
    # A pod missing from the list may be brand new or gone: ask for it alone.
    missing = {r.pod_id for r in rows if r.pod_id and r.pod_id not in by_id}
    for pod_id in missing:
        try:
            pod = await w.provider.get_pod(pod_id)
        except ProviderError:
            continue
        if pod is not None:
            by_id[pod_id] = pod
        else:
            by_id[pod_id] = None  # type: ignore[assignment]  # confirmed gone

    # Only clusters with news are locked; nodes merely still starting get their reconciler
    # deadline pushed in one statement (a lock per cluster per tick does not scale).
    now = utcnow()
    horizon = timedelta(seconds=w.settings.poll_interval_max_s)
    timeout = w.settings.provision_timeout_s
    by_cluster: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    refresh: list[uuid.UUID] = []
    still_starting, oldest = 0, 0.0
    for r in rows:
        if verdict(r.pod_id, r.provision_started_at, by_id, now, timeout,
                   private=r.network == "private") != Verdict.STARTING:
            by_cluster[r.cluster_id].append(r.id)
            continue
        still_starting += 1
        oldest = max(oldest, (now - (r.provision_started_at or now)).total_seconds())
        if r.next_check_at is None or r.next_check_at - now < horizon / 2:
            refresh.append(r.id)
    if refresh:
        await _push_deadlines(w, refresh, now + horizon)
    for cluster_id, node_ids in by_cluster.items():
        try:
            async with w.locked(cluster_id) as tx:
                for node_id in node_ids:
                    node = tx.node(node_id)
                    if node is None or node.status != N.STARTING:
                        continue
                    if _advance(w, tx, node, by_id):
                        still_starting += 1
                        age = (tx.now - (node.provision_started_at or tx.now)).total_seconds()
                        oldest = max(oldest, age)
        except ClusterGone:
            continue
    return still_starting, oldest


class Verdict(StrEnum):
    """What the provider's answer means for a starting node."""

    GONE = "gone"  # the provider no longer knows the pod
    EXITED = "exited"  # exited, errored or terminated while starting
    RUNNING = "running"  # running with a public IP and SSH port: bootstrap next
    TIMED_OUT = "timed_out"  # past the provision timeout
    STARTING = "starting"  # nothing new


def verdict(pod_id: str | None, provision_started_at: datetime | None,
            by_id: dict[str, Pod | None], now: datetime, timeout_s: float, *,
            private: bool = False) -> Verdict:
    """One rule for both the unlocked first look (which clusters to lock) and the change
    made under the lock. `private`: the pod is running only once it has its global
    networking address too (`HANGAR_HEAD_ADDR`, `HANGAR_NODE_ADDR`)."""
    key = pod_id or ""
    if key in by_id and by_id[key] is None:
        return Verdict.GONE
    pod = by_id.get(key)
    if pod is not None and (pod.has_failed or pod.is_gone):
        return Verdict.EXITED
    if pod is not None and pod.ssh_ready and (pod.private_ip or not private):
        return Verdict.RUNNING
    if (now - (provision_started_at or now)).total_seconds() > timeout_s:
        return Verdict.TIMED_OUT
    return Verdict.STARTING


async def _push_deadlines(w: Work, node_ids: list[uuid.UUID], due: datetime) -> None:
    """The poll's bulk form of `ClusterTx.check_again(node, delay, wake=False)` for nodes it
    keeps watching: `next_check_at = due` in one statement. Rows another transaction holds
    are skipped (SKIP LOCKED): this never waits, so it cannot deadlock with a cluster's lock
    holder, and a skipped node is simply refreshed on a later tick."""
    locked_ids = (
        select(Node.id)
        .where(Node.id.in_(node_ids), Node.status == N.STARTING)
        .with_for_update(skip_locked=True)
    )
    async with w.autocommit() as session:  # one statement, atomic on its own
        await session.execute(
            update(Node).where(Node.id.in_(locked_ids)).values(next_check_at=due)
        )


def _advance(w: Work, tx: ClusterTx, node: Node, by_id: dict[str, Pod | None]) -> bool:
    """Apply what the provider says about this node's pod. True if it is still starting."""
    private = tx.cluster.network == "private"
    seen = verdict(node.pod_id, node.provision_started_at, by_id, tx.now,
                   w.settings.provision_timeout_s, private=private)
    pod = by_id.get(node.pod_id or "")
    if seen == Verdict.GONE:
        tx.fail_node(node, Reason.POD_EXITED, f"pod {node.pod_id} disappeared while starting")
    elif seen == Verdict.EXITED and pod is not None:
        tx.fail_node(node, Reason.POD_EXITED, f"pod {pod.id} is {pod.status} while starting")
    elif seen == Verdict.RUNNING and pod is not None:
        node.public_ip, node.ssh_port = pod.ssh_host, pod.ssh_port
        node.private_ip = pod.private_ip
        node.hourly_rate = pod.cost_per_hour
        node.started_at = pod.started_at or tx.now
        node.data_center_id = pod.data_center_id or node.data_center_id
        tx.set_node_status(node, N.BOOTSTRAPPING)
        # Nothing to do until every node has an address (HANGAR_HEAD_ADDR): the roll-up of
        # the transaction that sees the last one wakes them all.
        tx.check_again(node, None)
        _check_budget(tx)
    elif seen == Verdict.TIMED_OUT:
        if pod and pod.status == "RUNNING":
            what = "never got a public IP and SSH port" + (" and a private IP" if private else "")
        else:
            what = f"still {pod.status}" if pod else "not visible"
        tx.fail_node(node, Reason.PROVISION_TIMEOUT,
                     f"pod {node.pod_id} {what} after {w.settings.provision_timeout_s:.0f}s")
    else:
        tx.check_again(node, w.settings.poll_interval_max_s, wake=False)  # this poll re-arms
        return True
    return False


def _check_budget(tx: ClusterTx) -> None:
    """Stop before the cluster's real hourly price exceeds the caller's max_hourly_cost."""
    c = tx.cluster
    if c.max_hourly_cost is None:
        return
    billing = [n for n in tx.nodes if is_billing(n.hourly_rate, n.started_at, n.terminated_at)]
    rate = sum(n.hourly_rate or 0 for n in billing)
    if rate > c.max_hourly_cost + 1e-9:
        tx.fail_node(billing[0], Reason.BUDGET_EXCEEDED,
                     f"RunPod bills ${rate:.4f}/h, above max_hourly_cost ${c.max_hourly_cost:.4f}/h")
