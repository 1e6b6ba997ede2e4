"""RunPod Instant Clusters (`network: cluster`): one create, one delete and one read per poll
tick for the whole cluster, whatever its size (docs/PIPELINE.md, "Instant Clusters").

Node 0 (the lead) carries the cluster's provider work in its own job and lease: it creates
the Instant Cluster (its name committed on the cluster row first), and deletes it at
teardown. The other nodes have no provider work of their own: they wait, with no deadline,
and are moved together with the lead (creating, starting, terminated). The readiness poll
(workers/poll.py) reads each starting Instant Cluster once per tick and, once every rank
runs with an SSH address and an overlay address, copies member `rank` onto node `rank`;
from there each node bootstraps on its own, as independent pods do.

This package holds the names its modules share; `steps.py` routes a node to its step,
`create.py` creates or adopts, `poll.py` reads the starting clusters, `teardown.py` deletes
one, `sweep.py` deletes those nobody owns.
"""

from __future__ import annotations

import uuid

NETWORK = "cluster"
LEAD = 0  # the node whose job and lease carry the Instant Cluster's provider calls


def cluster_name(prefix: str, cluster_id: uuid.UUID, attempt: int) -> str:
    """Unique per cluster and attempt; the deployment's prefix marks it as Hangar's."""
    return f"{prefix}-{cluster_id.hex}-ic-a{attempt}"
