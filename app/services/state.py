"""The one place that changes cluster and node status.

Every change happens inside `locked_cluster(...)`: the cluster row is locked FOR UPDATE,
the change is checked against the lifecycle, an event row is appended with the next
per-cluster sequence number (so event ids grow in commit order, docs/ARCHITECTURE.md, invariant 5),
and after the commit the event is announced on Redis and follow-up jobs are enqueued.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Cluster, ClusterEvent, Node
from app.domain.status import (
    ClusterStatus,
    NodeStatus,
    Reason,
    RollUp,
    check_cluster_move,
    check_node_move,
    roll_up,
)
from app.services.dispatch import Dispatcher

C, N = ClusterStatus, NodeStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class ClusterGone(Exception):
    """The cluster row no longer exists."""


@dataclass
class ClusterTx:
    """A cluster locked for one transaction, with its nodes."""

    session: AsyncSession
    cluster: Cluster
    now: datetime = field(default_factory=utcnow)
    last_seq: int = 0
    wake_nodes: dict[uuid.UUID, float] = field(default_factory=dict)  # node id -> delay s
    wake_poll: float | None = None
    expiry: datetime | None = None  # check the cluster's TTL then (after the commit)

    @property
    def nodes(self) -> list[Node]:
        return self.cluster.nodes

    def node(self, node_id: uuid.UUID) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    # --- events ---------------------------------------------------------------

    def event(self, type_: str, data: dict[str, Any]) -> int:
        """Append an event; its seq is the cluster's next, assigned under the row lock."""
        self.cluster.last_event_seq += 1
        seq = self.cluster.last_event_seq
        body = {"cluster_id": str(self.cluster.id), "at": self.now.isoformat(), **data}
        self.session.add(ClusterEvent(cluster_id=self.cluster.id, seq=seq, type=type_, data=body))
        self.last_seq = seq
        return seq

    def notice(self, message: str, node: Node | None = None, **extra: Any) -> None:
        data: dict[str, Any] = {"message": message, **extra}
        if node is not None:
            data["node"] = node.index
        self.event("cluster.notice", data)

    # --- when a node is looked at next -------------------------------------------

    def check_again(self, node: Node, delay: float | None, *, wake: bool = True) -> None:
        """The one way to say when this node is next looked at: in `delay` seconds, or
        never (None: nothing is due; it waits for its siblings, or it is done).

        It records the deadline (`next_check_at`): the reconciler re-enqueues a node whose
        deadline passed without a look. With `wake`, whoever looks is woken after the
        commit: the node's own job, or for a `starting` node the batched readiness poll.
        Without it, something else is known to look (the job holding the node's lease is
        still at work on it, or a sibling's job covers it) and only the deadline is set."""
        if delay is None:
            node.next_check_at = None
            return
        delay = max(delay, 0.0)
        node.next_check_at = self.now + timedelta(seconds=delay)
        if not wake:
            return
        if node.status == NodeStatus.STARTING:
            self.poll_soon(delay)
            return
        prev = self.wake_nodes.get(node.id)
        self.wake_nodes[node.id] = delay if prev is None else min(prev, delay)

    def poll_soon(self, delay: float) -> None:
        self.wake_poll = delay if self.wake_poll is None else min(self.wake_poll, delay)

    # --- status changes -------------------------------------------------------

    def set_cluster_status(
        self, new: ClusterStatus, reason: str | None = None, message: str | None = None
    ) -> None:
        c = self.cluster
        old = ClusterStatus(c.status)
        if old == new:
            return
        check_cluster_move(old, new)
        c.status = new
        if reason is not None:
            c.reason, c.message = reason, message
        if new == C.READY:
            c.ready_at = self.now
            self._arm_expiry()
        if new == C.TERMINATED:
            c.terminated_at = self.now
        data: dict[str, Any] = {"status": str(new)}
        if reason:
            data.update(reason=reason, message=message)
        self.event(f"cluster.{new}", data)

    def set_node_status(
        self, node: Node, new: NodeStatus, reason: str | None = None, message: str | None = None
    ) -> None:
        old = NodeStatus(node.status)
        if old == new:
            return
        check_node_move(old, new)
        node.status = new
        if reason is not None:
            node.reason, node.message = reason, message
        if new == N.READY:
            node.ready_at = self.now
        if new == N.TERMINATED:
            node.terminated_at = self.now
        if new in (N.READY, N.TERMINATED):
            self.check_again(node, None)  # nothing more to do for it
        data: dict[str, Any] = {"status": str(new), "node": node.index}
        if reason:
            data.update(reason=reason, message=message)
        if node.pod_id:
            data["pod_id"] = node.pod_id
        self.event(f"node.{new}", data)

    # --- lifetime -----------------------------------------------------------------

    def _arm_expiry(self) -> None:
        """`expires_at` from `ready_at` and the TTL; the check is scheduled after commit."""
        c = self.cluster
        c.expires_at = (c.ready_at + timedelta(seconds=c.ttl_seconds)
                        if c.ready_at is not None and c.ttl_seconds else None)
        self.expiry = c.expires_at

    def set_ttl(self, ttl_seconds: int | None) -> None:
        """Extend, shorten or clear the TTL of a live cluster, counted from `ready_at` as
        on create (a cluster not ready yet keeps it for then). An expiry already past
        tears the cluster down now."""
        c = self.cluster
        before = c.ttl_seconds
        c.ttl_seconds = ttl_seconds
        self._arm_expiry()
        said = "no TTL" if ttl_seconds is None else f"a TTL of {ttl_seconds}s"
        if c.expires_at is not None:
            said += f", expiring at {c.expires_at.isoformat()}"
        self.notice(f"TTL changed to {said}", code="ttl_changed", ttl_seconds=ttl_seconds,
                    previous_ttl_seconds=before,
                    expires_at=c.expires_at.isoformat() if c.expires_at else None)
        if c.expires_at is not None and c.expires_at <= self.now:
            self.request_delete(Reason.TTL_EXPIRED, f"ttl of {ttl_seconds}s expired")

    # --- composite moves ------------------------------------------------------

    def fail_node(self, node: Node, reason: str, message: str) -> None:
        """A node failed: it is torn down, and so is the whole cluster (it fails)."""
        if NodeStatus(node.status) in (N.TERMINATING, N.TERMINATED):
            return
        self.set_node_status(node, N.TERMINATING, reason, message)
        self.check_again(node, 0)
        if not ClusterStatus(self.cluster.status).is_terminal and self.cluster.status != C.TERMINATING:
            self.set_cluster_status(C.FAILED, reason, f"node {node.index}: {message}")
        self.terminate_all(Reason.CLUSTER_FAILED, f"node {node.index} failed: {reason}")

    def terminate_all(self, reason: str, message: str) -> None:
        """Move every live node to terminating (and schedule its teardown)."""
        for n in self.nodes:
            if NodeStatus(n.status) in (N.TERMINATING, N.TERMINATED):
                continue
            if n.status == N.PENDING and not n.pod_name:
                # Never asked the provider for anything: nothing to tear down.
                self.set_node_status(n, N.TERMINATED, reason, message)
                continue
            self.set_node_status(n, N.TERMINATING, reason, message)
            self.check_again(n, 0)

    def request_delete(self, reason: str = Reason.DELETED, message: str = "deleted") -> None:
        c = self.cluster
        status = ClusterStatus(c.status)
        if status.is_terminal or status == C.TERMINATING:
            return
        c.delete_requested_at = c.delete_requested_at or self.now
        self.set_cluster_status(C.TERMINATING, reason, message)
        self.terminate_all(reason, message)

    def roll_up(self) -> None:
        """Derive the cluster's status from its nodes after node changes (the decision is
        `app.domain.status.roll_up`; this applies it)."""
        c = self.cluster
        move = roll_up(ClusterStatus(c.status), {NodeStatus(n.status) for n in self.nodes},
                       torn_down=c.terminated_at is not None)
        if move == RollUp.TERMINATED:
            self.set_cluster_status(C.TERMINATED)
        elif move == RollUp.TORN_DOWN:
            c.terminated_at = self.now
            self.event("cluster.torn_down", {"status": str(c.status)})
        elif move == RollUp.READY:
            self.set_cluster_status(C.READY)
        elif move == RollUp.BOOTSTRAPPING:
            if c.status == C.PENDING:
                self.set_cluster_status(C.PROVISIONING)
            self.set_cluster_status(C.BOOTSTRAPPING)
            # Every node now has an address (HANGAR_HEAD_ADDR is known): bootstrap them
            # all; the bootstrap timeout counts from here, not from when each pod started.
            for n in self.nodes:
                if n.status == N.BOOTSTRAPPING:
                    n.bootstrap_started_at = self.now
                    self.check_again(n, 0)
        elif move == RollUp.PROVISIONING:
            self.set_cluster_status(C.PROVISIONING)


@asynccontextmanager
async def locked_cluster(
    sessionmaker: async_sessionmaker[AsyncSession],
    cluster_id: uuid.UUID,
    dispatcher: Dispatcher | None,
) -> AsyncIterator[ClusterTx]:
    """Lock the cluster row, yield it with its nodes; commit, then notify and enqueue."""
    async with sessionmaker() as session:
        async with session.begin():
            # The nodes are read by a second statement, after the lock is granted: joined to
            # this one, they would come from the snapshot taken before waiting for the lock.
            cluster = await session.scalar(
                select(Cluster)
                .where(Cluster.id == cluster_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if cluster is None:
                raise ClusterGone(str(cluster_id))
            tx = ClusterTx(session=session, cluster=cluster)
            yield tx
            tx.roll_up()
    if dispatcher is not None:
        await dispatcher.after_commit(tx)


T = TypeVar("T")


class GroupCommit:
    """Many small changes to one cluster, one locked transaction (per process).

    `await run(cluster_id, change)` queues `change(tx)`; while a transaction of that cluster
    is in flight here, the changes queued meanwhile wait and then go together in the next
    one. Each caller gets its change's return value once its transaction committed (and
    its notifications went out), or the transaction's exception. Without it, the last
    writes of 64 nodes bootstrapping together were 64 transactions queueing on the cluster
    row lock, each holding it across several round trips of a busy event loop.
    `change` must only touch `tx` (no awaits): it runs inside the transaction."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher | None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dispatcher = dispatcher
        self._queued: dict[uuid.UUID, list[tuple[Callable[[ClusterTx], Any], asyncio.Future]]] = {}
        self._draining: set[uuid.UUID] = set()
        self._tasks: set[asyncio.Task] = set()

    async def run(self, cluster_id: uuid.UUID, change: Callable[[ClusterTx], T]) -> T:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queued.setdefault(cluster_id, []).append((change, future))
        if cluster_id not in self._draining:
            self._draining.add(cluster_id)
            task = asyncio.create_task(self._drain(cluster_id), name=f"group-commit-{cluster_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(future)

    async def _drain(self, cluster_id: uuid.UUID) -> None:
        try:
            while batch := self._queued.pop(cluster_id, None):
                results: list[Any] = []
                try:
                    async with locked_cluster(self._sessionmaker, cluster_id,
                                              self._dispatcher) as tx:
                        results = [change(tx) for change, _ in batch]
                except Exception as exc:  # every change of the batch shares its fate
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining.discard(cluster_id)
            for _, future in self._queued.pop(cluster_id, []):  # cancelled mid-drain
                future.cancel()
