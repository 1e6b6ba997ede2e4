"""Bootstrapping a running node over SSH, once every node of its cluster has an address: pin
its host key on the first connection, start the setup detached, collect its output into
`node.output` events, and finish on its exit code."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from functools import partial

from sqlalchemy import or_, select
from sqlalchemy.orm import raiseload

from app.db.models import Cluster, Node
from app.domain.status import ClusterStatus, NodeStatus, Reason
from app.services.state import ClusterTx, utcnow
from app.ssh.bootstrap import (
    AuthRejected,
    BootstrapSession,
    HostKeyChanged,
    SSHError,
    SSHUnavailable,
)
from app.ssh.redact import SecretRedactor
from app.ssh.script import render_script, render_secrets
from workers.bootstrap_env import (
    SECRET_KEY_MISMATCH_MESSAGE,
    bootstrap_env,
    decrypted,
    node_addr,
)
from workers.bootstrap_output import (
    FIRST_READ_INTERVAL,
    KEEP_BYTES,
    MAX_BACKLOG_BYTES,
    MAX_LINES_PER_NODE,
    MAX_LINES_PER_READ,
    READ_BYTES,
    pause,
    record,
    resume,
    skip_backlog,
    skip_to,
)
from workers.context import Work

log = logging.getLogger("hangar.worker.bootstrap")
N = NodeStatus


async def _snapshot(
    w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID
) -> tuple[Cluster, Node | None, Node | None] | None:
    """The cluster, this node and node 0 (the head). Not every node: with one step per node,
    loading all of them made a 64-node cluster's bootstrap read 64 x 64 rows."""
    async with w.autocommit() as session:
        cluster = await session.scalar(
            select(Cluster).where(Cluster.id == cluster_id).options(raiseload(Cluster.nodes))
        )
        if cluster is None:
            return None
        rows = (await session.scalars(
            select(Node).where(Node.cluster_id == cluster_id,
                               or_(Node.id == node_id, Node.index == 0))
        )).all()
        node = next((n for n in rows if n.id == node_id), None)
        head = next((n for n in rows if n.index == 0), None)
        return cluster, node, head



async def bootstrap_step(w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID) -> bool:
    """One bounded step of a node's bootstrap. True: go on with the node now (its status
    moved); False: its next look is scheduled, or it waits for its siblings."""
    snap = await _snapshot(w, cluster_id, node_id)
    if snap is None:
        return False
    cluster, node, head_node = snap
    if node is None or node.status != N.BOOTSTRAPPING:
        return node is not None
    if cluster.status != ClusterStatus.BOOTSTRAPPING:
        # Waits for its siblings: the roll-up wakes every node once all have addresses.
        return False
    s = w.settings
    # Counted from when the cluster could bootstrap (every node had an address), not from
    # when this pod started: waiting for slower siblings is the provision timeout's.
    since = node.bootstrap_started_at or node.started_at or node.created_at
    if utcnow() - since > timedelta(seconds=s.bootstrap_timeout_s):
        return await _fail(w, cluster_id, node_id, Reason.BOOTSTRAP_TIMEOUT,
                           f"bootstrap did not finish within {s.bootstrap_timeout_s:.0f}s")
    if not (node.public_ip and node.ssh_port):  # a bootstrapping node always has them
        return await _fail(w, cluster_id, node_id, Reason.PROVIDER_ERROR,
                           "the pod has no public SSH address")
    opened = decrypted(w, cluster)
    if opened is None:
        return await _fail(w, cluster_id, node_id, Reason.SECRET_KEY_MISMATCH,
                           SECRET_KEY_MISMATCH_MESSAGE)
    key, secrets = opened
    head = node_addr(cluster, head_node)
    script = render_script(cluster.setup, bootstrap_env(cluster, node, head),
                           with_secrets=bool(secrets))
    deadline = time.monotonic() + s.bootstrap_step_s
    try:
        # One connection per step. The first one trusts the host key on first use (sshd of
        # a pod that just turned RUNNING may not be up yet: retried soon); every later one
        # verifies it.
        async with BootstrapSession.connect(
            node.public_ip, node.ssh_port, key, host_key=node.host_key,
            timeout=s.ssh_connect_timeout_s, command_timeout=s.ssh_connect_timeout_s,
        ) as session:
            # Started first, recorded with the first output (one transaction fewer per node):
            # a crash in between only means the next step trusts the key on first use again,
            # and its start finds the script already running.
            pin = session.host_key if node.host_key is None else None
            if await session.start(script, render_secrets(secrets)):
                # A short setup has often ended by the first read: one read and one write.
                await asyncio.sleep(FIRST_READ_INTERVAL)
            return await _follow(w, cluster_id, node_id, session, node.output_offset, deadline,
                                 pin=pin, redactor=SecretRedactor(secrets.values()),
                                 capped=node.output_lines >= MAX_LINES_PER_NODE)
    except HostKeyChanged as exc:
        return await _fail(w, cluster_id, node_id, Reason.HOST_KEY_CHANGED,
                           f"the pod's SSH host key changed since it was pinned ({exc}); "
                           "refusing to connect")
    except (SSHUnavailable, AuthRejected) as exc:
        if node.host_key is None:
            return await _later(w, cluster_id, node_id, 1.0, f"SSH not reachable yet: {exc}")
        return await _later(w, cluster_id, node_id, 2.0, f"SSH trouble: {exc}")
    except SSHError as exc:
        return await _later(w, cluster_id, node_id, 2.0, f"SSH trouble: {exc}")


async def _follow(
    w: Work, cluster_id: uuid.UUID, node_id: uuid.UUID, session: BootstrapSession,
    offset: int, deadline: float, *, pin: str | None, redactor: SecretRedactor,
    capped: bool = False,
) -> bool:
    """Read output until the script ends or this step's time is up (then the next step is
    scheduled at once). The first write also pins the host key (`pin`) when this connection
    trusted it. Secret values in the lines are replaced (`redactor`) before they are
    recorded. `capped`: the node has shown all the lines it may."""
    lines, progress = await resume(session, offset)
    interval = FIRST_READ_INTERVAL
    last_write = float("-inf")
    while True:
        texts = redactor.lines(lines.feed(progress.data, final=progress.complete))
        skipped = (0, 0)
        if len(progress.data) >= READ_BYTES and not progress.complete:
            # More is waiting than one read takes: beyond the limits, skip it (inside a line
            # too long to keep, the rest of it need not be read either).
            over = capped or lines.mid_line or len(texts) > MAX_LINES_PER_READ
            skip = await skip_backlog(session, lines.offset, keep=0 if capped else KEEP_BYTES,
                                      least=0 if over else MAX_BACKLOG_BYTES)
            if skip is not None:
                lines, skipped = skip_to(lines, skip)
        done = lines.offset
        quiet = not texts and not progress.complete and done == offset
        if quiet and time.monotonic() - last_write < w.settings.reconcile_grace_s / 2:
            # Nothing to record: skip the transaction (we hold the node's lease, so no other
            # job can move it; the reconciler deadline is refreshed well before it is due).
            if time.monotonic() >= deadline:
                return await _later(w, cluster_id, node_id, 0, None)
        else:
            last_write = time.monotonic()
            # Shared with the other nodes of the cluster writing at the same moment.
            stop, go_on, capped = await w.group.run(cluster_id, partial(
                record, w, node_id, offset, done, texts, skipped, progress, pin))
            if stop:
                return go_on
            offset = done
            if time.monotonic() >= deadline:
                return await _later(w, cluster_id, node_id, 0, None)
        interval = await pause(progress.data, interval)
        progress = await session.read(lines.read_offset, READ_BYTES)



async def _fail(w: Work, cluster_id, node_id, reason: str, message: str) -> bool:
    async with w.locked(cluster_id) as tx:
        node = tx.node(node_id)
        if node is not None and node.status == N.BOOTSTRAPPING:
            tx.fail_node(node, reason, message)
    return True  # its teardown, now


async def _later(w: Work, cluster_id, node_id, delay: float, why: str | None) -> bool:
    """Look at the node again in `delay` s (a new step: this one's time is up or it hit
    trouble worth a retry)."""
    if why:
        log.info("node %s: %s; retrying in %.1fs", node_id, why, delay)

    def schedule(tx: ClusterTx) -> None:
        node = tx.node(node_id)
        if node is not None and node.status == N.BOOTSTRAPPING:
            tx.check_again(node, delay)

    await w.group.run(cluster_id, schedule)
    return False
