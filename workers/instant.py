"""RunPod Instant Clusters (`network: cluster`): one create, one delete and one read per poll
tick for the whole cluster, whatever its size (docs/PIPELINE.md, "Instant Clusters").

Node 0 (the lead) carries the cluster's provider work in its own job and lease: it creates
the Instant Cluster (its name committed on the cluster row first), and deletes it at
teardown. The other nodes have no provider work of their own: they wait, with no deadline,
and are moved together with the lead (creating, starting, terminated). The readiness poll
(workers/poll.py) reads each starting Instant Cluster once per tick and, once every rank
runs with an SSH address and an overlay address, copies member `rank` onto node `rank`;
from there each node bootstraps on its own, as independent pods do.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from app.db.models import Cluster as ClusterRow
from app.db.models import Node
from app.domain.status import NodeStatus, Reason
from app.providers.base import (
    AccessDenied,
    CapacityError,
    Cluster,
    ClusterSpec,
    ProviderError,
    RateLimited,
    ServerError,
    TransportError,
)
from app.services.state import ClusterGone, ClusterTx, utcnow
from workers.bootstrap import SECRET_KEY_MISMATCH_MESSAGE, decrypted
from workers.context import Work
from workers.create import pod_spec, retry_delay
from workers.poll import _check_budget, _push_deadlines
from workers.teardown import retry_teardown

log = logging.getLogger("hangar.worker.instant")
N = NodeStatus
NETWORK = "cluster"
LEAD = 0  # the node whose job and lease carry the Instant Cluster's provider calls
# Instant Clusters read at once by one poll; reads not started in time wait for the next
# tick (the poll's job must end within its timeout).
READ_CONCURRENCY = 16


def cluster_name(prefix: str, cluster_id: uuid.UUID, attempt: int) -> str:
    """Unique per cluster and attempt; the deployment's prefix marks it as Hangar's."""
    return f"{prefix}-{cluster_id.hex}-ic-a{attempt}"


# --- which clusters take this path ---------------------------------------------------------

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


# --- create: intent first, one create per attempt, adopt what may exist --------------------


@dataclass
class Attempt:
    name: str
    spec: ClusterSpec
    where: str


async def create_step(w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID) -> bool:
    """Create the Instant Cluster (or find the one a previous attempt may have created) and
    move every node to `starting`. True: go on with the lead now (its status moved, or the
    next placement is due); False: its next look is scheduled."""
    async with w.locked(cluster_id) as tx:
        lead = tx.node(lead_id)
        if lead is None or lead.status not in (N.PENDING, N.CREATING):
            return lead is not None
        c = tx.cluster
        if lead.status == N.PENDING and decrypted(w, c) is None:
            # Its members could never be bootstrapped: fail before creating anything.
            tx.fail_node(lead, Reason.SECRET_KEY_MISMATCH, SECRET_KEY_MISMATCH_MESSAGE)
            return True
        if lead.status == N.PENDING:
            for node in tx.nodes:
                if node.status == N.PENDING:
                    tx.set_node_status(node, N.CREATING)
                    node.provision_started_at = tx.now
                    if node.index != LEAD:
                        tx.check_again(node, None)  # the lead's job creates them all
        maybe_created = c.provider_cluster_name if c.provider_cluster_id is None else None
        if c.provider_cluster_id is not None:
            _to_starting(w, tx)  # recorded earlier (cannot normally be left creating)
            return lead.status != N.STARTING
        attempt = None if maybe_created else _plan_attempt(w, tx, lead)
        if attempt is None and not maybe_created:
            return True  # failed (no placement or time left): its teardown goes on

    if maybe_created:
        # A previous attempt may have created it (crash, lost response): adopt, never
        # create a second one under that name.
        try:
            found = await w.provider.find_cluster_by_name(maybe_created)
        except ProviderError as exc:
            return await _retry_later(w, cluster_id, lead_id,
                                      f"looking up Instant Cluster {maybe_created}: {exc.message}")
        if found is not None:
            return await _adopt(w, cluster_id, lead_id, maybe_created, found)
        # Still absent: the next step creates under a new attempt's name, committed first
        # (one that appears late under this one is owned by nobody: the orphan sweep's).
        # A step makes at most two RunPod calls in a row (docs/PIPELINE.md, "Retries").
        return await _forget(w, cluster_id, lead_id, maybe_created)

    try:
        created = await w.provider.create_cluster(attempt.spec)
    except (ServerError, TransportError) as exc:
        # It may exist: look the name up before anything else; if it is not there yet, the
        # name stays and the next step looks again before creating under a new one.
        try:
            found = await w.provider.find_cluster_by_name(attempt.name)
        except ProviderError:
            found = None
        if found is not None:
            return await _adopt(w, cluster_id, lead_id, attempt.name, found)
        return await _retry_later(w, cluster_id, lead_id,
                                  f"creating Instant Cluster {attempt.name}: {exc.message}")
    except ProviderError as exc:
        return await _refused(w, cluster_id, lead_id, attempt, exc)
    return await _adopt(w, cluster_id, lead_id, attempt.name, created)


def _plan_attempt(w: Work, tx: ClusterTx, lead: Node) -> Attempt | None:
    """Under the cluster lock: fail the cluster if no placement or time is left, else take
    the next attempt and write its name (committed before the create is sent)."""
    c = tx.cluster
    placements: list[list[str]] = c.placements or [[]]
    if c.provider_cluster_candidate >= len(placements):
        tried = ", ".join("/".join(p) or "any data center" for p in placements)
        tx.fail_node(lead, Reason.NO_CAPACITY,
                     f"no data center could place {c.node_count} x {c.gpu_count} "
                     f"{c.gpu_type_id} as one Instant Cluster ({tried})")
        return None
    elapsed = (tx.now - (lead.provision_started_at or tx.now)).total_seconds()
    if elapsed > w.settings.provision_timeout_s:
        tx.fail_node(lead, Reason.PROVISION_TIMEOUT,
                     f"no Instant Cluster created within {w.settings.provision_timeout_s:.0f}s")
        return None
    c.provider_cluster_attempt += 1
    name = cluster_name(w.settings.pod_name_prefix, c.id, c.provider_cluster_attempt)
    c.provider_cluster_name = name
    lead.create_started_at = tx.now
    dcs = placements[c.provider_cluster_candidate]
    return Attempt(name=name, spec=cluster_spec(c, lead, name, dcs),
                   where="in " + "/".join(dcs) if dcs else "in any data center")


def cluster_spec(cluster: ClusterRow, lead: Node, name: str, dcs: list[str]) -> ClusterSpec:
    """Every member runs the same container: the pods' spec without a per-node rank (the
    setup script gets its rank at bootstrap)."""
    pod = pod_spec(cluster, lead, name, dcs)
    env = {k: v for k, v in pod.env.items() if k != "HANGAR_NODE_RANK"}
    return ClusterSpec(
        name=name, image=pod.image, gpu_type_id=pod.gpu_type_id, gpu_count=pod.gpu_count,
        node_count=cluster.node_count, cloud_type=pod.cloud_type,
        container_disk_gb=pod.container_disk_gb, volume_gb=pod.volume_gb,
        volume_mount_path=pod.volume_mount_path, network_volume_id=cluster.network_volume_id,
        ports=pod.ports, env=env, data_center_ids=tuple(dcs),
    )


async def _forget(w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID, name: str) -> bool:
    """The name was looked up (twice: after the failed create and now) and is not there:
    clear it, so the next step plans a new attempt. True: go on with the lead now."""
    async with w.locked(cluster_id) as tx:
        lead, c = tx.node(lead_id), tx.cluster
        if lead is None:
            return False
        if (lead.status == N.CREATING and c.provider_cluster_id is None
                and c.provider_cluster_name == name):
            c.provider_cluster_name = None
            tx.check_again(lead, 0, wake=False)  # this job goes on with it now
        return True


async def _refused(w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID, attempt: Attempt,
                   exc: ProviderError) -> bool:
    """A create refused outright (nothing was created): the next data center, a wait after
    a 429, or the cluster fails with the provider's reason."""
    async with w.locked(cluster_id) as tx:
        lead, c = tx.node(lead_id), tx.cluster
        if lead is None or c.provider_cluster_name != attempt.name:
            return lead is not None
        if lead.status != N.CREATING:
            return True  # deleted meanwhile: its teardown goes on
        if isinstance(exc, (CapacityError, AccessDenied)):
            c.provider_cluster_candidate += 1
            c.provider_cluster_name = None
            tx.notice(f"no capacity for the Instant Cluster {attempt.where} ({exc.message}); "
                      "trying the next data center", node=lead, code="no_capacity_candidate")
            tx.check_again(lead, 0, wake=False)  # this job goes on with it now
            return True
        if isinstance(exc, RateLimited):
            c.provider_cluster_name = None
            delay = exc.retry_after or 1.0
            tx.check_again(lead, delay)
            tx.notice(f"rate limited: {exc.message}; retrying in {delay:.1f}s", node=lead,
                      code="provider_retry")
            return False
        tx.fail_node(lead, exc.reason, f"{w.provider.name} refused the Instant Cluster: "
                                       f"{exc.message}")
        return True


async def _adopt(w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID, name: str,
                 found: Cluster) -> bool:
    """Record the Instant Cluster if it is the current attempt's, and move the nodes to
    `starting` (the readiness poll takes it from there). One that no attempt owns any more
    is deleted. True: go on with the lead now."""
    async with w.locked(cluster_id) as tx:
        lead, c = tx.node(lead_id), tx.cluster
        owned = c.provider_cluster_name == name and c.provider_cluster_id in (None, found.id)
        if owned:
            c.provider_cluster_id = found.id
            for node in tx.nodes:
                node.data_center_id = found.data_center_id or node.data_center_id
            _to_starting(w, tx)
            # A cluster deleted meanwhile keeps the id: its teardown deletes it.
            return lead is not None and lead.status != N.STARTING
    log.warning("deleting Instant Cluster %s (%s): not the cluster's current attempt",
                found.id, name)
    try:
        await w.provider.delete_cluster(found.id)
    except ProviderError:
        pass  # the orphan sweep gets it
    return True


def _to_starting(w: Work, tx: ClusterTx) -> None:
    for node in tx.nodes:
        if node.status == N.CREATING:
            tx.set_node_status(node, N.STARTING)
            # The poll pushes the deadlines on while the members start; if its chain is
            # lost, the reconciler restarts it.
            tx.check_again(node, w.settings.poll_interval_s / 2)


async def _retry_later(w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID, why: str) -> bool:
    async with w.locked(cluster_id) as tx:
        lead = tx.node(lead_id)
        if lead is None or lead.status != N.CREATING:
            return lead is not None
        delay = retry_delay(tx.cluster.provider_cluster_attempt)
        tx.check_again(lead, delay)
        tx.notice(f"{why}; retrying in {delay:.1f}s", node=lead, code="provider_retry")
    return False


# --- waiting for the members: one read per Instant Cluster per poll tick ----------------------


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


# --- teardown: one delete for every member, until RunPod confirms -----------------------------


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


# --- orphan sweep ----------------------------------------------------------------------------


async def sweep_clusters(w: Work, stop_at: float) -> int:
    """Delete Instant Clusters carrying Hangar's prefix that no unfinished cluster row owns,
    once older than the grace period (a create may be in flight under a committed name)."""
    prefix = w.settings.pod_name_prefix + "-"
    try:
        found = await w.provider.list_clusters(name_prefix=prefix)
    except ProviderError as exc:
        log.warning("orphan sweep could not list Instant Clusters: %s", exc.message)
        return 0
    if not found:
        return 0
    async with w.sessionmaker() as session:
        owned = (await session.execute(
            select(ClusterRow.provider_cluster_id, ClusterRow.provider_cluster_name)
            .where(ClusterRow.terminated_at.is_(None),
                   ClusterRow.provider_cluster_name.is_not(None))
        )).all()
    owned_ids = {r.provider_cluster_id for r in owned if r.provider_cluster_id}
    owned_names = {r.provider_cluster_name for r in owned}
    now = utcnow()
    grace = timedelta(seconds=w.settings.orphan_grace_s)
    swept = 0
    for cluster in found:
        if cluster.id in owned_ids or cluster.name in owned_names:
            continue
        if cluster.created_at is not None and now - cluster.created_at < grace:
            continue
        if time.monotonic() > stop_at:
            log.warning("orphan sweep out of time; the next sweep goes on")
            break
        try:
            await w.provider.delete_cluster(cluster.id)
            swept += 1
            log.warning("deleted orphan Instant Cluster %s (%s)", cluster.id, cluster.name)
        except ProviderError as exc:
            log.warning("could not delete orphan Instant Cluster %s: %s", cluster.id,
                        exc.message)
    return swept
