"""Cluster and node lifecycles: the statuses and which moves between them are legal."""

from __future__ import annotations

from enum import StrEnum


class ClusterStatus(StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (ClusterStatus.TERMINATED, ClusterStatus.FAILED)


# A cluster that may still hold (or get) pods: it counts against the team's limits.
LIVE_CLUSTER_STATUSES = (
    ClusterStatus.PENDING,
    ClusterStatus.PROVISIONING,
    ClusterStatus.BOOTSTRAPPING,
    ClusterStatus.READY,
    ClusterStatus.TERMINATING,
)


class NodeStatus(StrEnum):
    PENDING = "pending"
    CREATING = "creating"
    STARTING = "starting"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"

    @property
    def is_terminal(self) -> bool:
        return self is NodeStatus.TERMINATED


class Reason(StrEnum):
    """Machine-readable failure and stop reasons, on clusters and nodes."""

    NO_CAPACITY = "no_capacity"
    PROVISION_TIMEOUT = "provision_timeout"
    BOOTSTRAP_FAILED = "bootstrap_failed"
    BOOTSTRAP_TIMEOUT = "bootstrap_timeout"
    HOST_KEY_CHANGED = "host_key_changed"
    POD_EXITED = "pod_exited"
    PROVIDER_ERROR = "provider_error"
    INVALID_CREDENTIALS = "invalid_credentials"
    BUDGET_EXCEEDED = "budget_exceeded"
    TTL_EXPIRED = "ttl_expired"
    DELETED = "deleted"
    CLUSTER_FAILED = "cluster_failed"  # a sibling node failed, this one is torn down


C, N = ClusterStatus, NodeStatus

CLUSTER_TRANSITIONS: dict[ClusterStatus, frozenset[ClusterStatus]] = {
    C.PENDING: frozenset({C.PROVISIONING, C.TERMINATING, C.FAILED}),
    C.PROVISIONING: frozenset({C.BOOTSTRAPPING, C.TERMINATING, C.FAILED}),
    C.BOOTSTRAPPING: frozenset({C.READY, C.TERMINATING, C.FAILED}),
    C.READY: frozenset({C.TERMINATING, C.FAILED}),
    C.TERMINATING: frozenset({C.TERMINATED}),
    C.TERMINATED: frozenset(),
    # A failed cluster keeps tearing its pods down; it stays `failed`.
    C.FAILED: frozenset(),
}

NODE_TRANSITIONS: dict[NodeStatus, frozenset[NodeStatus]] = {
    N.PENDING: frozenset({N.CREATING, N.TERMINATING, N.TERMINATED}),
    N.CREATING: frozenset({N.STARTING, N.PENDING, N.TERMINATING}),
    N.STARTING: frozenset({N.BOOTSTRAPPING, N.TERMINATING}),
    N.BOOTSTRAPPING: frozenset({N.READY, N.TERMINATING}),
    N.READY: frozenset({N.TERMINATING}),
    N.TERMINATING: frozenset({N.TERMINATED}),
    N.TERMINATED: frozenset(),
}


class RollUp(StrEnum):
    """What a cluster's nodes say its status should become (`roll_up`)."""

    NOTHING = "nothing"
    PROVISIONING = "provisioning"  # a node asked the provider for a pod
    BOOTSTRAPPING = "bootstrapping"  # every node has an address: bootstrap them all
    READY = "ready"  # every node is ready
    TERMINATED = "terminated"  # torn down on request: every pod confirmed gone
    TORN_DOWN = "torn_down"  # failed, and now every pod confirmed gone (stays failed)


def roll_up(cluster: ClusterStatus, nodes: set[NodeStatus], torn_down: bool) -> RollUp:
    """The move a cluster in status `cluster` makes when its nodes are in `nodes`;
    `torn_down`: a failed cluster's teardown was already recorded."""
    if cluster in (C.TERMINATING, C.FAILED):
        if nodes <= {N.TERMINATED}:
            if cluster == C.TERMINATING:
                return RollUp.TERMINATED
            if not torn_down:
                return RollUp.TORN_DOWN
        return RollUp.NOTHING
    if cluster.is_terminal:
        return RollUp.NOTHING
    if nodes == {N.READY} and cluster != C.READY:
        return RollUp.READY
    if cluster in (C.PENDING, C.PROVISIONING) and nodes <= {N.BOOTSTRAPPING, N.READY}:
        return RollUp.BOOTSTRAPPING
    if cluster == C.PENDING and nodes & {N.CREATING, N.STARTING}:
        return RollUp.PROVISIONING
    return RollUp.NOTHING


class IllegalTransition(Exception):
    pass


def check_cluster_move(old: ClusterStatus, new: ClusterStatus) -> None:
    if new not in CLUSTER_TRANSITIONS[old]:
        raise IllegalTransition(f"cluster cannot move from {old} to {new}")


def check_node_move(old: NodeStatus, new: NodeStatus) -> None:
    if new not in NODE_TRANSITIONS[old]:
        raise IllegalTransition(f"node cannot move from {old} to {new}")
