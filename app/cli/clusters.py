"""`hangar clusters …` (create, ls, get, watch, rm, ttl, ssh): a team's clusters over HTTP
through `hangar_client`, with live progress and bootstrap output while waiting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.arguments import (
    as_json,
    duration,
    key_values,
    positive_money,
    positive_seconds,
    public_keys,
)
from app.cli.common import (
    connect,
    err,
    explain,
    explained,
    fail,
    failure,
    load_client,
    out,
    print_json,
)

if TYPE_CHECKING:
    from hangar_client import Cluster, HangarClient

WAIT_TIMEOUT_S = 3600.0
DELETE_TIMEOUT_S = 600.0
CLUSTERS_HELP = ("Create, follow, list, delete and log into clusters through the API at "
                 "HANGAR_URL with HANGAR_TOKEN.")


@explained
def create(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {"nodes": args.nodes, "gpu_count": args.gpu_count,
                              "ttl_seconds": args.ttl, "network": args.network,
                              "network_volume_id": args.network_volume,
                              "max_hourly_cost": args.max_hourly_cost}
    if args.setup is not None:
        try:
            fields["setup"] = (sys.stdin.read() if args.setup == "-"
                               else Path(args.setup).read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"--setup {args.setup}: {exc}", 2) from None
    if args.ssh_key:
        fields["ssh_public_keys"] = public_keys(args.ssh_key)
    if args.env:
        fields["env"] = key_values(args.env, "--env")
    if args.secret:
        fields["secrets"] = key_values(args.secret, "--secret")
    hc = load_client()
    with connect() as hangar:
        cluster = hangar.create_cluster(args.name, args.gpu_type, **fields)
        if args.json:
            print_json(cluster.raw)
        if not args.wait:
            if not args.json:
                out(cluster.id)
                err(f"cluster {cluster.name} is {cluster.status}; follow it with "
                    f"`hangar clusters watch {cluster.id}`")
            return 0
        try:
            cluster = follow_until_ready(hangar, cluster, args.timeout)
        except hc.ClusterFailed as exc:
            if args.json:
                print_json(exc.cluster.raw)
            raise
    report(cluster, args.json)
    return 0


def follow_until_ready(hangar: HangarClient, cluster: Cluster, timeout: float) -> Cluster:
    """Live progress while waiting: the ready cluster, or ClusterFailed / WaitTimeout."""
    hc = load_client()
    from app.cli.progress import Progress

    with Progress(cluster, refresh=lambda: hangar.get_cluster(cluster.id)) as progress:
        try:
            ready = hangar.wait_until_ready(cluster.id, timeout, on_event=progress.event)
        except hc.ClusterFailed as exc:
            progress.show(exc.cluster)
            raise
        progress.show(ready)
    return ready


def report(cluster: Cluster, as_json: bool) -> None:
    if as_json:
        print_json(cluster.raw)
    else:
        from app.cli.text import summary

        out(summary(cluster))


@explained
def watch(args: argparse.Namespace) -> int:
    hc = load_client()
    S = hc.ClusterStatus
    from app.cli.progress import Progress

    with connect() as hangar:
        cluster = hangar.get_cluster(args.id)
        going_up = cluster.status in (S.PENDING, S.PROVISIONING, S.BOOTSTRAPPING)
        if cluster.status != S.READY and not cluster.finished:
            with Progress(cluster, refresh=lambda: hangar.get_cluster(args.id)) as progress:
                for event in hangar.events(args.id):
                    progress.event(event)
                    if (going_up and isinstance(event, hc.ClusterStatusChanged)
                            and event.status in (S.READY, S.FAILED)):
                        break
                cluster = hangar.get_cluster(args.id)
                progress.show(cluster)
    report(cluster, False)
    if cluster.status == S.FAILED or (going_up and cluster.status != S.READY):
        raise fail(failure(cluster))
    return 0


@explained
def list_clusters(args: argparse.Namespace) -> int:
    with connect() as hangar:
        clusters = list(hangar.list_clusters(status=args.status or None))
    if args.json:
        print_json([c.raw for c in clusters])
        return 0
    from app.cli.text import columns, elapsed, money

    out(columns(("ID", "NAME", "STATUS", "GPU", "NODES", "$/H", "ACCRUED", "AGE"), [
        [c.id, c.name, c.status, f"{c.gpu_count} × {c.gpu_type}", c.node_count,
         money(c.hourly_rate), money(c.accrued_cost), elapsed(c.created_at)]
        for c in clusters
    ]))
    return 0


@explained
def get(args: argparse.Namespace) -> int:
    with connect() as hangar:
        cluster = hangar.get_cluster(args.id)
    report(cluster, args.json)
    return 0


@explained
def remove(args: argparse.Namespace) -> int:
    """Every DELETE first (several clusters tear down together), then, with --wait, each
    followed until its pods are gone. One that cannot be deleted is reported and the others
    go on; the exit code is then 1."""
    hc = load_client()
    if len(args.ids) == 1:  # its errors as any command's (explained)
        return _remove_one(args, args.ids[0])
    code, results = 0, []
    with connect() as hangar:
        deleted = []
        for cid in args.ids:
            try:
                deleted.append(hangar.delete_cluster(cid))
            except hc.HangarError as exc:
                err(f"error: {cid}: {explain(exc)}")
                code = 1
        for cluster in deleted:
            try:
                results.append(_wait_gone(hangar, args, cluster.id) if args.wait else cluster)
            except hc.HangarError as exc:
                err(f"error: {cluster.id}: {explain(exc)}")
                code = 1
    for cluster in results:
        _show_removed(args, cluster)
    return code


def _remove_one(args: argparse.Namespace, cluster_id: str) -> int:
    with connect() as hangar:
        cluster = (_wait_gone(hangar, args, cluster_id) if args.wait
                   else hangar.delete_cluster(cluster_id))
    _show_removed(args, cluster)
    return 0


def _wait_gone(hangar: HangarClient, args: argparse.Namespace, cluster_id: str) -> Cluster:
    """Delete the cluster (again: a no-op if it is going already) and follow it until every
    pod is confirmed gone, with the live panel."""
    from app.cli.progress import Progress

    cluster = hangar.get_cluster(cluster_id)
    with Progress(cluster, refresh=lambda: hangar.get_cluster(cluster_id)) as progress:
        cluster = hangar.delete_cluster(cluster_id, wait=True, timeout=args.timeout,
                                        on_event=progress.event)
        progress.show(cluster)
    return cluster


def _show_removed(args: argparse.Namespace, cluster: Cluster) -> None:
    if args.json:
        print_json(cluster.raw)
    else:
        out(f"cluster {cluster.name} ({cluster.id}) is {cluster.status}")


@explained
def set_ttl(args: argparse.Namespace) -> int:
    with connect() as hangar:
        cluster = hangar.update_cluster(args.id, ttl_seconds=args.seconds)
    if args.json:
        print_json(cluster.raw)
        return 0
    what = f"cluster {cluster.name} ({cluster.id})"
    if cluster.ttl_seconds is None:
        out(f"{what}: no TTL, it runs until deleted")
    elif cluster.status not in ("pending", "provisioning", "bootstrapping", "ready"):
        out(f"{what} is {cluster.status}: its new TTL ({cluster.ttl_seconds} s after ready) "
            "has passed")
    elif cluster.expires_at is not None:
        out(f"{what} expires at {cluster.expires_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(ttl {cluster.ttl_seconds} s after ready)")
    else:
        out(f"{what} expires {cluster.ttl_seconds} s after it is ready")
    return 0


@explained
def ssh(args: argparse.Namespace) -> int:
    import shutil
    import signal
    import subprocess
    import tempfile

    from app.cli.ssh import NotReachable, ssh_argv, target

    with connect() as hangar:
        cluster = hangar.get_cluster(args.id)
    nodes = [n for n in cluster.nodes if n.index == args.node]
    if not nodes:
        raise fail(f"cluster {cluster.name} has no node {args.node} (it has "
                   f"{len(cluster.nodes)})", 2)
    node = nodes[0]
    try:
        t = target(node.public_ip, node.ssh_port, node.ssh_host_key)
    except NotReachable as exc:
        raise fail(f"cannot log into node {node.index} of {cluster.name} ({node.status}): "
                   f"{exc}") from None
    if shutil.which("ssh") is None:
        raise fail("OpenSSH's `ssh` is not on PATH")
    with tempfile.TemporaryDirectory(prefix="hangar-ssh-") as tmp:
        known_hosts = Path(tmp) / "known_hosts"
        known_hosts.write_text(t.known_hosts_line)
        argv = ssh_argv(t, known_hosts, args.command, identity=args.identity)
        # Ctrl-C belongs to ssh (and the remote shell) while it runs, not to us.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.call(argv)
        finally:
            signal.signal(signal.SIGINT, previous)


def add_commands(commands: Any) -> None:
    """`clusters` and its commands on the top-level parser of the client commands."""
    clusters = commands.add_parser("clusters", help=CLUSTERS_HELP, description=CLUSTERS_HELP)
    actions = clusters.add_subparsers(dest="action", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., Any], summary: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=summary, description=summary)
        p.set_defaults(run=run)
        return p

    p = command("create", create, "Ask for a cluster; prints its id (or its JSON).")
    p.add_argument("--name", required=True, help="1-63 characters of a-z, 0-9 and -.")
    p.add_argument("--gpu-type", required=True,
                   help="A catalog id or a name: 'RTX 4090', '4090', 'h100'.")
    p.add_argument("--nodes", type=int, help="Pods in the cluster (1).")
    p.add_argument("--gpu-count", type=int, help="GPUs per node (1).")
    p.add_argument("--setup", metavar="FILE",
                   help="Bash script run on every node at bootstrap, as root ('-': stdin).")
    p.add_argument("--ssh-key", action="append", default=[], metavar="PUBFILE_OR_LINE",
                   help="An OpenSSH public key to install on every node, so you can "
                   "`hangar clusters ssh`; repeatable.")
    p.add_argument("--network", choices=("public", "private", "cluster"),
                   help="How the nodes reach each other (public).")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="For the pods and the setup script; repeatable.")
    p.add_argument("--secret", action="append", default=[], metavar="NAME[=VALUE]",
                   help="For the setup script only, never shown again; NAME alone takes "
                   "the value from your environment; repeatable.")
    p.add_argument("--network-volume", metavar="ID",
                   help="Mount this network volume (hangar network-volumes) at "
                   "/workspace on every node; the cluster runs in its data center.")
    p.add_argument("--ttl", type=positive_seconds, metavar="SECONDS",
                   help="Tear the cluster down this long after it is ready (3600, 2h).")
    p.add_argument("--max-hourly-cost", type=positive_money, metavar="USD",
                   help="Refuse (or stop before) a price above this many USD per hour.")
    p.add_argument("--wait", action="store_true",
                   help="Follow it with live progress until ready (exit 0) or failed (1).")
    p.add_argument("--timeout", type=float, default=WAIT_TIMEOUT_S, metavar="SECONDS",
                   help=f"How long --wait waits ({WAIT_TIMEOUT_S:g}).")
    as_json(p, "Print the API's JSON (with --wait, the final cluster last).")

    p = command("ls", list_clusters, "Your team's clusters, newest first.")
    p.add_argument("--status", action="append", default=[],
                   help="Only clusters in this status; repeatable.")
    as_json(p, "Print a JSON list of the API's cluster objects.")

    p = command("get", get, "One cluster with its nodes, price and cost.")
    p.add_argument("id", metavar="ID")
    as_json(p)

    p = command("watch", watch, "Live progress and bootstrap output until the cluster is "
                "ready (a cluster going away: until it is gone); exit 1 if it fails.")
    p.add_argument("id", metavar="ID")

    p = command("rm", remove, "Tear clusters down (deleting twice is fine); with several, "
                "every DELETE is sent first and one that fails does not stop the others "
                "(exit 1).")
    p.add_argument("ids", metavar="ID", nargs="+")
    p.add_argument("--wait", action="store_true",
                   help="Return once every pod is confirmed gone.")
    p.add_argument("--timeout", type=float, default=DELETE_TIMEOUT_S, metavar="SECONDS",
                   help=f"How long --wait waits ({DELETE_TIMEOUT_S:g}).")
    as_json(p)

    p = command("ttl", set_ttl, "Change a live cluster's TTL, counted from when it was "
                "ready (an expiry already past tears it down now); 'none' clears it.")
    p.add_argument("id", metavar="ID")
    p.add_argument("seconds", type=duration, metavar="SECONDS|none",
                   help="3600, or 90m, 2h, 1d; 'none': no TTL.")
    as_json(p)

    p = command("ssh", ssh, "Log into a node with OpenSSH as root, trusting only the host "
                "key Hangar pinned; your key must be on it (create --ssh-key).")
    p.add_argument("id", metavar="ID")
    p.add_argument("--node", type=int, default=0, help="The node's index (0).")
    p.add_argument("-i", "--identity", metavar="FILE",
                   help="Your private key (else ssh's default keys and agent).")
    p.set_defaults(command=())
    p.usage = "hangar clusters ssh [-h] [--node NODE] [-i FILE] ID [-- COMMAND...]"
