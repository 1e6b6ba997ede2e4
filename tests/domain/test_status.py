"""The lifecycles as tables: legal moves, and what a cluster's nodes make of its status."""

from __future__ import annotations

import pytest

from app.domain.status import (
    CLUSTER_TRANSITIONS,
    NODE_TRANSITIONS,
    ClusterStatus,
    IllegalTransition,
    NodeStatus,
    RollUp,
    check_cluster_move,
    check_node_move,
    roll_up,
)

C, N = ClusterStatus, NodeStatus


def test_every_status_has_its_moves_listed() -> None:
    assert set(CLUSTER_TRANSITIONS) == set(C)
    assert set(NODE_TRANSITIONS) == set(N)


def test_terminal_statuses_go_nowhere() -> None:
    for status in C:
        assert (CLUSTER_TRANSITIONS[status] == frozenset()) == status.is_terminal
    assert NODE_TRANSITIONS[N.TERMINATED] == frozenset()


@pytest.mark.parametrize("old", list(C))
@pytest.mark.parametrize("new", list(C))
def test_cluster_moves(old: ClusterStatus, new: ClusterStatus) -> None:
    legal = new in CLUSTER_TRANSITIONS[old]
    if legal:
        check_cluster_move(old, new)
    else:
        with pytest.raises(IllegalTransition):
            check_cluster_move(old, new)


def test_every_live_cluster_can_fail_or_be_deleted() -> None:
    for status in (C.PENDING, C.PROVISIONING, C.BOOTSTRAPPING, C.READY):
        assert {C.FAILED, C.TERMINATING} <= CLUSTER_TRANSITIONS[status]
    assert CLUSTER_TRANSITIONS[C.TERMINATING] == {C.TERMINATED}


def test_every_node_ends_terminated_through_terminating() -> None:
    for status in (N.CREATING, N.STARTING, N.BOOTSTRAPPING, N.READY):
        assert N.TERMINATING in NODE_TRANSITIONS[status]
        assert N.TERMINATED not in NODE_TRANSITIONS[status]  # a pod is confirmed gone first
    assert NODE_TRANSITIONS[N.TERMINATING] == {N.TERMINATED}
    # Only a node that never asked the provider for anything skips the teardown.
    assert N.TERMINATED in NODE_TRANSITIONS[N.PENDING]
    with pytest.raises(IllegalTransition):
        check_node_move(N.READY, N.BOOTSTRAPPING)


@pytest.mark.parametrize(("cluster", "nodes", "torn_down", "move"), [
    (C.PENDING, {N.PENDING}, False, RollUp.NOTHING),
    (C.PENDING, {N.PENDING, N.CREATING}, False, RollUp.PROVISIONING),
    (C.PENDING, {N.STARTING}, False, RollUp.PROVISIONING),
    (C.PROVISIONING, {N.STARTING, N.BOOTSTRAPPING}, False, RollUp.NOTHING),
    (C.PROVISIONING, {N.BOOTSTRAPPING}, False, RollUp.BOOTSTRAPPING),
    (C.PENDING, {N.BOOTSTRAPPING}, False, RollUp.BOOTSTRAPPING),  # all created in one go
    (C.BOOTSTRAPPING, {N.BOOTSTRAPPING, N.READY}, False, RollUp.NOTHING),
    (C.BOOTSTRAPPING, {N.READY}, False, RollUp.READY),
    (C.READY, {N.READY}, False, RollUp.NOTHING),
    (C.TERMINATING, {N.TERMINATING, N.TERMINATED}, False, RollUp.NOTHING),
    (C.TERMINATING, {N.TERMINATED}, False, RollUp.TERMINATED),
    (C.FAILED, {N.TERMINATING, N.TERMINATED}, False, RollUp.NOTHING),
    (C.FAILED, {N.TERMINATED}, False, RollUp.TORN_DOWN),
    (C.FAILED, {N.TERMINATED}, True, RollUp.NOTHING),  # said once
    (C.TERMINATED, {N.TERMINATED}, False, RollUp.NOTHING),
])
def test_roll_up(cluster, nodes, torn_down, move) -> None:
    assert roll_up(cluster, nodes, torn_down) == move
