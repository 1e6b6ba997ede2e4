"""Creating a node's pod: intent first, one create per attempt, adopt what may exist."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from app.db.models import Cluster, Node
from app.domain.status import NodeStatus, Reason
from app.providers.base import (
    AccessDenied,
    CapacityError,
    Pod,
    PodSpec,
    ProviderError,
    RateLimited,
    ServerError,
    TransportError,
)
from app.services.state import ClusterTx
from workers import leases
from workers.bootstrap_env import SECRET_KEY_MISMATCH_MESSAGE, decrypted
from workers.context import Work

log = logging.getLogger("hangar.worker.create")
N = NodeStatus


def pod_name(prefix: str, cluster_id: uuid.UUID, index: int, attempt: int) -> str:
    """Unique per node and attempt; the prefix marks every pod Hangar owns."""
    return f"{prefix}-{cluster_id.hex}-n{index}-a{attempt}"


def pod_spec(cluster: Cluster, node: Node, name: str, data_centers: list[str]) -> PodSpec:
    env = {
        **cluster.env,
        # authorized_keys lines: Hangar's key, then the caller's (RunPod images append the
        # whole value to root's authorized_keys). The cluster's secrets never go here.
        "PUBLIC_KEY": "\n".join([cluster.ssh_public_key, *cluster.ssh_public_keys]),
        "HANGAR_CLUSTER_ID": str(cluster.id),
        "HANGAR_NODE_RANK": str(node.index),
        "HANGAR_NUM_NODES": str(cluster.node_count),
    }
    return PodSpec(
        name=name,
        image=cluster.image,
        gpu_type_id=cluster.gpu_type_id,
        gpu_count=cluster.gpu_count,
        cloud_type=cluster.cloud_type,  # type: ignore[arg-type]
        container_disk_gb=cluster.container_disk_gb,
        volume_gb=cluster.volume_gb,
        volume_mount_path=cluster.volume_mount_path,
        ports=tuple(cluster.ports),
        env=env,
        data_center_ids=tuple(data_centers),
        global_networking=cluster.network == "private",
        network_volume_id=cluster.network_volume_id,
    )


# Creates of one batch in flight at once (RunPod answers 429 beyond its rate; each one retried).
CREATE_CONCURRENCY = 16


def retry_delay(failures: int) -> float:
    return min(0.5 * 2 ** min(failures, 6), 30.0)


@dataclass
class Attempt:
    name: str
    spec: PodSpec
    where: str


async def create_step(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID) -> bool:
    """Move a creating node to `starting` with a pod. True: go on with the node now (its
    status moved, e.g. failed); False: its next look is scheduled (the poll's, a retry)."""
    async with w.locked(cluster_id) as tx:
        node = tx.node(node_id)
        if node is None or node.status != N.CREATING:
            return node is not None  # pending nodes go through `create_batch`
        maybe_created = node.pod_name if node.pod_id is None else None
        # Nothing to look up: record the first attempt's name in this same transaction.
        attempt = None if maybe_created else _plan_attempt(w, tx, node)
        if attempt is None and not maybe_created:
            return True  # failed (no placement left, timed out): its teardown goes on

    if maybe_created:
        # A previous attempt may have created the pod (crash, lost response): adopt, never duplicate.
        try:
            pod = await w.provider.find_pod_by_name(maybe_created)
        except ProviderError as exc:
            return await _retry_later(w, cluster_id, node_id, f"looking up {maybe_created}: {exc}")
        if pod is not None:
            return await adopt(w, cluster_id, node_id, maybe_created, pod)

    while True:
        if attempt is None:
            attempt = await _next_attempt(w, cluster_id, node_id)
        if attempt is None:
            return True  # failed or no longer creating: the caller re-reads the status
        try:
            pod = await w.provider.create_pod(attempt.spec)
        except (ServerError, TransportError) as exc:
            # The create may have happened: look the name up before anything else.
            try:
                pod = await w.provider.find_pod_by_name(attempt.name)
            except ProviderError:
                pod = None
            if pod is not None:
                return await adopt(w, cluster_id, node_id, attempt.name, pod)
            return await _retry_later(w, cluster_id, node_id, f"create failed: {exc.message}")
        except ProviderError as exc:
            async with w.locked(cluster_id) as tx:
                node = tx.node(node_id)
                if node is None or node.pod_name != attempt.name:
                    return node is not None
                delay = _after_failed_create(w, tx, node, attempt, exc)
                next_placement = delay == 0 and node.status == N.CREATING
                if delay and node.status == N.CREATING:
                    tx.check_again(node, delay)
            if next_placement:
                attempt = None  # refused outright: the next placement, now
                continue
            return not delay  # failed or deleted: its teardown goes on now
        return await adopt(w, cluster_id, node_id, attempt.name, pod)


async def create_batch(
    w: Work, cluster_id: uuid.UUID, lead_id: uuid.UUID, owner: uuid.UUID
) -> bool:
    """The first attempt of every pending node of the cluster at once: their leases in one
    statement, their pod names in one transaction, the creates concurrently, the outcomes in
    one transaction. A node whose create needs more (another placement, a retry, a lookup
    by name) goes on alone through `create_step`. True: go on with the lead node now."""
    ids = await leases.acquire_pending(w.autocommit, cluster_id, owner, w.settings.lease_s,
                                       owed=w.recovery.leases)
    siblings = ids - {lead_id}
    released = False
    try:
        attempts: dict[uuid.UUID, Attempt] = {}
        async with w.locked(cluster_id) as tx:
            if decrypted(w, tx.cluster) is None:
                # Its pods could never be bootstrapped: fail before creating any.
                lead = tx.node(lead_id)
                if lead is not None and lead.status == N.PENDING:
                    tx.fail_node(lead, Reason.SECRET_KEY_MISMATCH, SECRET_KEY_MISMATCH_MESSAGE)
                return True
            for node in tx.nodes:
                if node.id in ids and node.status == N.PENDING:
                    tx.set_node_status(node, N.CREATING)
                    node.provision_started_at = tx.now
                    attempt = _plan_attempt(w, tx, node)
                    if attempt is not None:
                        attempts[node.id] = attempt
        if not attempts:
            return True
        gate = asyncio.Semaphore(CREATE_CONCURRENCY)
        # Creates not sent by then are left to the nodes' own steps (below), so that the job
        # ends well within its lease however slowly RunPod answers.
        send_by = time.monotonic() + w.settings.lease_s / 3

        async def create(attempt: Attempt) -> Pod | ProviderError | None:
            async with gate:
                if time.monotonic() > send_by:
                    return None
                try:
                    return await w.provider.create_pod(attempt.spec)
                except ProviderError as exc:
                    return exc

        results = await asyncio.gather(*(create(a) for a in attempts.values()))
        unowned: list[tuple[Pod, str]] = []
        go_on = True
        async with w.locked(cluster_id) as tx:
            for node_id, result in zip(attempts, results, strict=True):
                attempt, node = attempts[node_id], tx.node(node_id)
                if node is None or node.pod_name != attempt.name:
                    if isinstance(result, Pod):
                        unowned.append((result, attempt.name))
                    continue
                if isinstance(result, Pod):
                    _record_pod(w, tx, node, attempt.name, result)
                    delay: float | None = None if node.status == N.STARTING else 0
                elif result is None:  # not sent: its own step looks the name up, creates
                    delay = 0
                else:
                    delay = _after_failed_create(w, tx, node, attempt, result)
                if node_id == lead_id:
                    if delay:
                        tx.check_again(node, delay)
                    # The lead goes on in this job unless it waits (a retry, the poll).
                    go_on = not delay and node.status != N.STARTING
                elif delay is not None:
                    tx.check_again(node, delay)
            for node in tx.nodes:  # released with the outcome: their next jobs may start
                if node.id in siblings and node.lease_owner == owner:
                    node.lease_owner, node.lease_until = None, None
            released = True
        for pod, name in unowned:
            await _terminate_unowned(w, pod, name)
        return go_on
    finally:
        if not released:
            await leases.release_many(w.autocommit, siblings, owner, owed=w.recovery.leases)


def _after_failed_create(
    w: Work, tx: ClusterTx, node: Node, attempt: Attempt, exc: ProviderError
) -> float | None:
    """A create (not a 5xx or transport error: those may have created the pod) failed for
    this node's current attempt: record why. Returns the delay to its next step (the caller
    schedules it): 0 for the next placement at once, the provider's wait after a 429, None
    once the node has failed."""
    if node.status != N.CREATING:
        return 0  # deleted meanwhile: its teardown step takes it from here
    if isinstance(exc, (CapacityError, AccessDenied)):
        node.candidate += 1
        node.pod_name = None  # refused outright: no pod exists under that name
        tx.notice(f"no capacity {attempt.where} ({exc.message}); trying the next placement",
                  node=node, code="no_capacity_candidate")
        return 0
    if isinstance(exc, RateLimited):
        node.pod_name = None  # a 429 is refused before anything happens
        delay = exc.retry_after or 1.0
        tx.notice(f"rate limited: {exc.message}; retrying in {delay:.1f}s", node=node,
                  code="provider_retry")
        return delay
    if isinstance(exc, (ServerError, TransportError)):
        return 0  # the pod may exist: the node's own step looks its name up first
    tx.fail_node(node, exc.reason, f"{w.provider.name} refused the pod: {exc.message}")
    return None


async def _next_attempt(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID) -> Attempt | None:
    """Record the pod name of the next attempt (intent before side effect)."""
    async with w.locked(cluster_id) as tx:
        node = tx.node(node_id)
        if node is None or node.status != N.CREATING:
            return None
        return _plan_attempt(w, tx, node)


def _plan_attempt(w: Work, tx: ClusterTx, node: Node) -> Attempt | None:
    """Under the cluster lock: fail the node if no placement or time is left, else take the
    next attempt number and write its pod name (committed before the create is sent)."""
    cluster = tx.cluster
    placements: list[list[str]] = cluster.placements or [[]]
    if node.candidate >= len(placements):
        tried = ", ".join("/".join(p) or "any data center" for p in placements)
        tx.fail_node(node, Reason.NO_CAPACITY,
                     f"no {cluster.gpu_type_id} capacity on {cluster.cloud_type} cloud ({tried})")
        return None
    elapsed = (tx.now - (node.provision_started_at or tx.now)).total_seconds()
    if elapsed > w.settings.provision_timeout_s:
        tx.fail_node(node, Reason.PROVISION_TIMEOUT,
                     f"no pod created within {w.settings.provision_timeout_s:.0f}s")
        return None
    node.attempt += 1
    name = pod_name(w.settings.pod_name_prefix, cluster.id, node.index, node.attempt)
    node.pod_name = name
    node.create_started_at = tx.now
    dcs = placements[node.candidate]
    return Attempt(
        name=name,
        spec=pod_spec(cluster, node, name, dcs),
        where="in " + "/".join(dcs) if dcs else "in any data center",
    )


async def adopt(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID, name: str, pod: Pod) -> bool:
    """Record the pod on the node; the readiness poll takes it from here. True: go on with
    the node now (it was deleted meanwhile, or the pod is nobody's)."""
    async with w.locked(cluster_id) as tx:
        node = tx.node(node_id)
        recorded = node is not None and _record_pod(w, tx, node, name, pod)
        if node is None:
            return False
        if recorded:
            return node.status != N.STARTING
    await _terminate_unowned(w, pod, name)
    return True


def _record_pod(w: Work, tx: ClusterTx, node: Node, name: str, pod: Pod) -> bool:
    """Record the pod if it is the node's current attempt (False: nobody owns it). A creating
    node moves to starting; a node deleted meanwhile keeps the pod for its teardown."""
    if node.pod_id is not None or node.pod_name != name:
        return False
    node.pod_id = pod.id
    node.data_center_id = pod.data_center_id
    node.gpu_type_id = pod.gpu_type_id or node.gpu_type_id
    if node.status == N.CREATING:
        tx.set_node_status(node, N.STARTING)
        # The poll pushes the deadline on while the pod starts; if its chain is lost, the
        # reconciler restarts it.
        tx.check_again(node, w.settings.poll_interval_s / 2)
    return True


async def _terminate_unowned(w: Work, pod: Pod, name: str) -> None:
    log.warning("terminating pod %s (%s): not the node's current attempt", pod.id, name)
    try:
        await w.provider.terminate_pod(pod.id)
    except ProviderError:
        pass  # the orphan sweep gets it


async def _retry_later(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID, why: str) -> bool:
    """A create or lookup failed in a way worth retrying: schedule it, say so."""
    async with w.locked(cluster_id) as tx:
        node = tx.node(node_id)
        if node is None or node.status != N.CREATING:
            return node is not None
        delay = retry_delay(node.attempt)
        tx.check_again(node, delay)
        tx.notice(f"{why}; retrying in {delay:.1f}s", node=node, code="provider_retry")
    return False
