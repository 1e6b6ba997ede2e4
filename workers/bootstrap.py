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
from app.domain.crypto import decrypt
from app.domain.secrets import decrypt_secrets
from app.domain.status import ClusterStatus, NodeStatus, Reason
from app.services.state import ClusterTx, utcnow
from app.ssh.bootstrap import (
    REMOTE_DIR,
    AuthRejected,
    BootstrapSession,
    HostKeyChanged,
    Progress,
    SSHError,
    SSHUnavailable,
)
from app.ssh.output import OutputLines
from app.ssh.redact import SecretRedactor
from app.ssh.script import render_script, render_secrets
from workers.context import Work

log = logging.getLogger("hangar.worker.bootstrap")
N = NodeStatus

MAX_LINES_PER_READ = 200
MIN_READ_GAP = 0.25  # with MAX_LINES_PER_READ: at most 800 lines/s per node
MAX_LINES_PER_NODE = 10_000
MAX_LINE_CHARS = 1000
READ_BYTES = 65536  # one read of the remote log
# Output beyond the limits is skipped, not read slowly: when a read finds more waiting than
# it takes and either showed fewer lines than it read (or the node has shown all it may),
# or more than MAX_BACKLOG_BYTES wait, everything but the newest KEEP_BYTES (from a line
# start) is skipped, counted on the pod without being sent. A script printing 50 MB ends
# ready in the time it takes to print, not in 800 reads.
MAX_BACKLOG_BYTES = 1024 * 1024
KEEP_BYTES = 16 * 1024
NOTICE_EVERY_S = 10.0  # `output_dropped` notices: at most one per node this often
# A quiet script is read again after 0.05, 0.1, 0.2, 0.4, 0.8, then every 1 s: a short setup
# finishes without a job sitting out a fixed quarter second, a long one costs a read or two more.
FIRST_READ_INTERVAL = 0.05


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


SECRET_KEY_MISMATCH_MESSAGE = (
    "the worker cannot decrypt this cluster's stored SSH key and secrets: its "
    "HANGAR_SECRET_KEY (and HANGAR_SECRET_KEY_OLD) differ from the key of the API process "
    "that accepted the cluster (give every API and worker process the same key)")


def decrypted(w: Work, cluster: Cluster) -> tuple[str, dict[str, str]] | None:
    """The cluster's SSH private key and secrets, or None when this process cannot decrypt
    them (another HANGAR_SECRET_KEY): the cluster fails with `secret_key_mismatch` at once
    rather than retrying until its bootstrap timeout."""
    try:
        return (decrypt(w.settings.keyring, cluster.ssh_private_key_enc),
                decrypt_secrets(w.settings.keyring, cluster.secrets_enc))
    except ValueError:  # KeyUnavailable
        return None


# torchrun's rendezvous port on node 0 (MASTER_PORT), as RunPod sets it on Instant Clusters.
MASTER_PORT = "29500"


def node_addr(cluster: Cluster, node: Node | None) -> str:
    """The node's address on the cluster's network: its public IP for `public`, its private
    (global networking or Instant Cluster overlay) address otherwise."""
    if node is None:
        return ""
    addr = node.public_ip if cluster.network == "public" else node.private_ip
    return addr or ""


def bootstrap_env(cluster: Cluster, node: Node, head_addr: str) -> dict[str, str]:
    """What the setup script gets: the cluster's env, Hangar's variables, and the ones
    torchrun-style launchers read (the caller's env wins for those: they are not Hangar's)."""
    return {
        "MASTER_ADDR": head_addr,
        "MASTER_PORT": MASTER_PORT,
        "NODE_RANK": str(node.index),
        "NNODES": str(cluster.node_count),
        **cluster.env,
        "HANGAR_CLUSTER_ID": str(cluster.id),
        "HANGAR_NODE_RANK": str(node.index),
        "HANGAR_NUM_NODES": str(cluster.node_count),
        "HANGAR_HEAD_ADDR": head_addr,
        "HANGAR_NODE_ADDR": node_addr(cluster, node),
    }


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
    lines = OutputLines(offset=offset, max_chars=MAX_LINE_CHARS)
    interval = FIRST_READ_INTERVAL
    last_write = float("-inf")
    while True:
        progress = await session.read(lines.read_offset, READ_BYTES)
        texts = redactor.lines(lines.feed(progress.data, final=progress.complete))
        done, skipped = lines.offset, (0, 0)
        if len(progress.data) >= READ_BYTES and not progress.complete:
            # More is waiting than one read takes: beyond the limits, skip it.
            over = capped or len(texts) > MAX_LINES_PER_READ
            skip = await _skip(session, done, keep=0 if capped else KEEP_BYTES,
                               least=0 if over else MAX_BACKLOG_BYTES)
            if skip is not None:
                skipped = (skip[1], skip[0] - done)
                done = skip[0]
                lines = OutputLines(offset=done, max_chars=MAX_LINE_CHARS)
        quiet = not texts and not progress.complete and done == offset
        if quiet and time.monotonic() - last_write < w.settings.reconcile_grace_s / 2:
            # Nothing to record: skip the transaction (we hold the node's lease, so no other
            # job can move it; the reconciler deadline is refreshed well before it is due).
            if time.monotonic() >= deadline:
                return await _later(w, cluster_id, node_id, 0, None)
            interval = await _pause(progress.data, interval)
            continue
        last_write = time.monotonic()

        # Shared with the other nodes of the cluster writing at the same moment.
        stop, go_on, capped = await w.group.run(cluster_id, partial(
            _record, w, node_id, offset, done, texts, skipped, progress, pin))
        if stop:
            return go_on
        offset = done
        if time.monotonic() >= deadline:
            return await _later(w, cluster_id, node_id, 0, None)
        interval = await _pause(progress.data, interval)


# One round trip, run on the pod over the whole backlog (no byte of it is sent): the log's
# size; unless more than max(keep, least) bytes wait after `off`, nothing; else the offset
# just past the first newline in the last `keep` bytes (the newest lines, from a line
# start; the end of the log when there is none), and the newlines from `off` to it.
_SKIP_COMMAND = r"""f=@LOG@; off=@OFF@; keep=@KEEP@; least=@LEAST@
[ -f "$f" ] || { echo "$off 0"; exit 0; }
size=$(wc -c < "$f")
left=$((size - off))
if [ "$left" -le "$keep" ] || [ "$left" -le "$least" ]; then echo "$off 0"; exit 0; fi
target=$((size - keep))
adv=$(tail -c +$((target + 1)) "$f" | head -c "$keep" | head -n 1 | wc -c)
new=$((target + adv))
echo "$new $(tail -c +$((off + 1)) "$f" | head -c $((new - off)) | wc -l)"
"""


async def _skip(session: BootstrapSession, offset: int, *, keep: int,
                least: int) -> tuple[int, int] | None:
    """Skip the log from `offset` (a line start) to the newest `keep` bytes, if more than
    `least` bytes wait. Returns (the new offset, lines skipped), or None (nothing skipped)."""
    command = (_SKIP_COMMAND.replace("@LOG@", f'"{REMOTE_DIR}/output.log"')
               .replace("@OFF@", str(offset)).replace("@KEEP@", str(keep))
               .replace("@LEAST@", str(least)))
    status, out = await session.run(command)
    try:
        new, count = (int(x) for x in out.split())
    except ValueError:
        return None
    return (new, count) if status == 0 and new > offset else None


def _record(
    w: Work, node_id: uuid.UUID, offset: int, done: int, texts: list[str],
    skipped: tuple[int, int], progress: Progress, pin: str | None, tx: ClusterTx,
) -> tuple[bool, bool, bool]:
    """Under the cluster lock: one read's lines (`offset` to `done`, `skipped` = lines and
    bytes skipped unread within it), and the end if it came. Returns (stop, go_on, capped):
    stop reading, whether the job goes on with the node, and whether the node has shown all
    the lines it may."""
    node = tx.node(node_id)
    if node is None or node.status != N.BOOTSTRAPPING or node.output_offset != offset:
        return True, node is not None, False  # deleted, failed, or another job got here first
    node.host_key = node.host_key or pin
    _emit(tx, node, texts, *skipped, final=progress.complete)
    node.output_offset = done
    capped = node.output_lines >= MAX_LINES_PER_NODE
    if progress.complete:
        node.exit_code = progress.exit_code
        if progress.exit_code == 0:
            tx.set_node_status(node, N.READY)
            return True, False, capped
        tx.fail_node(node, Reason.BOOTSTRAP_FAILED,
                     f"setup exited with status {progress.exit_code}")
        return True, True, capped  # its teardown, now
    # This job keeps reading: only the reconciler's deadline moves on.
    tx.check_again(node, w.settings.reconcile_grace_s, wake=False)
    return False, False, capped


async def _pause(data: bytes, interval: float) -> float:
    """Wait before the next read: back off while the log is quiet; while it is busy, read at
    most every MIN_READ_GAP s, which with MAX_LINES_PER_READ bounds lines per second."""
    if data:
        await asyncio.sleep(MIN_READ_GAP)
        return FIRST_READ_INTERVAL
    await asyncio.sleep(interval)
    return min(interval * 2, 1.0)


def _emit(tx: ClusterTx, node: Node, texts: list[str], skipped_lines: int = 0,
          skipped_bytes: int = 0, *, final: bool = False) -> None:
    """Bounded `node.output` events (per read and per node), counting what is dropped.

    Drops are announced by an `output_dropped` notice (the lines dropped and bytes skipped
    since the previous one) at most once per node every NOTICE_EVERY_S, and, if any output
    was dropped, by an `output_summary` notice with the totals when the script ends."""
    room = max(min(MAX_LINES_PER_READ, MAX_LINES_PER_NODE - node.output_lines), 0)
    for text in texts[:room]:
        tx.event("node.output", {"node": node.index, "line": text})
    shown = min(len(texts), room)
    node.output_lines += shown
    node.output_dropped += len(texts) - shown + skipped_lines
    node.output_skipped_bytes += skipped_bytes
    lines = node.output_dropped - node.output_noticed_lines
    nbytes = node.output_skipped_bytes - node.output_noticed_bytes
    last = node.output_notice_at
    if (lines or nbytes) and (last is None or (tx.now - last).total_seconds() >= NOTICE_EVERY_S):
        unread = f", {nbytes} bytes of them skipped unread" if nbytes else ""
        tx.notice(f"dropped {lines} output lines of node {node.index}{unread} (limits: "
                  f"{MAX_LINES_PER_READ} lines per read, {MAX_LINES_PER_NODE} per node; "
                  f"at most one such notice per {NOTICE_EVERY_S:g} s)",
                  node=node, code="output_dropped", dropped=lines, skipped_bytes=nbytes)
        node.output_notice_at = tx.now
        node.output_noticed_lines, node.output_noticed_bytes = (
            node.output_dropped, node.output_skipped_bytes)
    if final and (node.output_dropped or node.output_skipped_bytes):
        tx.notice(f"node {node.index}'s setup output: {node.output_lines} lines shown, "
                  f"{node.output_dropped} dropped ({node.output_skipped_bytes} bytes skipped "
                  "unread)", node=node, code="output_summary", lines=node.output_lines,
                  dropped=node.output_dropped, skipped_bytes=node.output_skipped_bytes)


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
