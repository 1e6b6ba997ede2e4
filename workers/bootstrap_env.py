"""What a node's setup script gets: the cluster's SSH private key and secrets, decrypted (or
None when this process holds another HANGAR_SECRET_KEY than the API that stored them),
and its environment (the cluster's env, Hangar's rank and address variables, and those
torchrun-style launchers read)."""

from __future__ import annotations

from app.db.models import Cluster, Node
from app.domain.crypto import decrypt
from app.domain.secrets import decrypt_secrets
from workers.context import Work

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
