"""Creating an Instant Cluster: the lead's step. Intent first (the attempt's name committed
on the cluster row), one create per attempt, one data center per create; a create that may
have happened is resolved by looking the name up and adopting what it finds, never by a
second create. Once recorded, every node moves to `starting` and the readiness poll
(`workers/instant/poll.py`) takes it from there."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

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
from app.services.state import ClusterTx
from workers.bootstrap_env import SECRET_KEY_MISMATCH_MESSAGE, decrypted
from workers.context import Work
from workers.create import pod_spec, retry_delay
from workers.instant import LEAD, cluster_name

log = logging.getLogger("hangar.worker.instant")
N = NodeStatus


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
