"""`hangar clusters …` and `hangar gpu-types`: the API over HTTP, through `hangar_client`.

HANGAR_URL (default http://127.0.0.1:8000) and HANGAR_TOKEN say where and as whom.
Results (and `--json`: the API's JSON, one document a line) go to standard output;
progress and errors to standard error. Exit codes: 0 success (or ready), 1 failed
(the reason is printed), 2 usage error (a missing token included).

These commands start fast (a person types them, scripts loop over them): they load
nothing of the server, parse their arguments with argparse (typer builds a pydantic
validator per parameter), and import httpx and rich only when they use them.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hangar_client import Cluster, HangarClient

COMMANDS = ("clusters", "gpu-types")  # `hangar <these>` are parsed here
DEFAULT_URL = "http://127.0.0.1:8000"
WAIT_TIMEOUT_S = 3600.0
DELETE_TIMEOUT_S = 600.0
CLUSTERS_HELP = ("Create, follow, list, delete and log into clusters through the API at "
                 "HANGAR_URL with HANGAR_TOKEN.")
GPU_TYPES_HELP = "The GPU catalog: per-GPU hourly prices and availability."


class Exit(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def fail(message: str, code: int = 1) -> Exit:
    return Exit(code, message)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def out(text: str) -> None:
    print(text, flush=True)


def print_json(document: Any) -> None:
    import json

    # Compact, one document a line, as the API writes it.
    out(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


# --- the client ----------------------------------------------------------------------------


def load_client() -> Any:
    # httpx imports its own command line (click, rich, pygments: ~90 ms) whenever they are
    # installed, which they are beside Hangar; nothing here uses it.
    sys.modules.setdefault("httpx._main", type(sys)("httpx._main"))
    import hangar_client

    return hangar_client


def connect() -> HangarClient:
    token = os.environ.get("HANGAR_TOKEN", "").strip()
    if not token:
        raise fail("HANGAR_TOKEN is not set: create a token with `hangar keys create --team "
                   "<team>` and `export HANGAR_TOKEN=<token>`", 2)
    url = os.environ.get("HANGAR_URL", "").strip() or DEFAULT_URL
    try:
        return load_client().HangarClient(url, token)
    except ValueError as exc:
        raise fail(f"HANGAR_URL: {exc}", 2) from None


def explained(run: Callable[[argparse.Namespace], int | None]) -> Callable[..., int | None]:
    """The client's exceptions as a message on standard error and exit code 1."""

    @functools.wraps(run)
    def command(args: argparse.Namespace) -> int | None:
        hc = load_client()
        try:
            return run(args)
        except hc.ClusterFailed as exc:
            raise fail(failure(exc.cluster)) from None
        except hc.WaitTimeout as exc:
            raise fail(str(exc)) from None
        except hc.ApiError as exc:
            # With field errors the detail is their summary: list them instead.
            lines = [f"{exc.title if exc.errors else exc.detail} ({exc.status} {exc.code})"]
            lines += [f"  {e.field}: {e.message}" for e in exc.errors]
            if exc.candidates and not all(c in exc.detail for c in exc.candidates):
                lines.append("  candidates: " + ", ".join(exc.candidates[:30]))
            raise fail("\n".join(lines)) from None
        except hc.Unreachable as exc:
            url = os.environ.get("HANGAR_URL") or DEFAULT_URL
            raise fail(f"cannot reach Hangar at {url} (HANGAR_URL): {exc}") from None
        except hc.HangarError as exc:
            raise fail(str(exc)) from None

    return command


def failure(cluster: Cluster) -> str:
    return (f"cluster {cluster.name} ({cluster.id}) is {cluster.status}: "
            f"{cluster.reason or 'no reason given'}"
            + (f": {cluster.message}" if cluster.message else ""))


def key_values(pairs: Sequence[str], option: str) -> dict[str, str]:
    """`NAME=VALUE` pairs; a bare `NAME` takes the value of the environment variable NAME
    (so a secret need not appear on a command line or in shell history)."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name:
            raise fail(f"{option} {pair!r}: expected NAME=VALUE or NAME", 2)
        if not sep:
            if name not in os.environ:
                raise fail(f"{option} {name}: no value given, and no environment variable "
                           f"{name} to take it from", 2)
            value = os.environ[name]
        values[name] = value
    return values


def public_keys(values: Sequence[str]) -> list[str]:
    """`--ssh-key` values: a public key line, or a file of them (`~/.ssh/id_ed25519.pub`)."""
    keys: list[str] = []
    for value in values:
        if value.startswith(("ssh-", "ecdsa-", "sk-")):
            keys.append(value.strip())
            continue
        try:
            text = Path(value).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"--ssh-key {value!r} is neither a public key line nor a file of them "
                       f"({exc})", 2) from None
        if "PRIVATE KEY" in text:
            raise fail(f"--ssh-key {value}: that is a private key; pass the public one "
                       f"({value}.pub)", 2)
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise fail(f"--ssh-key {value}: the file holds no key", 2)
        keys += lines
    return keys


# --- commands ------------------------------------------------------------------------------


@explained
def create(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {"nodes": args.nodes, "gpu_count": args.gpu_count,
                              "ttl_seconds": args.ttl, "network": args.network}
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
    with connect() as hangar:
        if args.wait:
            from app.cli.progress import Progress

            cluster = hangar.get_cluster(args.id)
            with Progress(cluster, refresh=lambda: hangar.get_cluster(args.id)) as progress:
                cluster = hangar.delete_cluster(args.id, wait=True, timeout=args.timeout,
                                                on_event=progress.event)
                progress.show(cluster)
        else:
            cluster = hangar.delete_cluster(args.id)
    if args.json:
        print_json(cluster.raw)
    else:
        out(f"cluster {cluster.name} ({cluster.id}) is {cluster.status}")
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


@explained
def gpu_types(args: argparse.Namespace) -> int:
    with connect() as hangar:
        types = hangar.gpu_types(name=args.name)
    if args.json:
        print_json([g.raw for g in types])
        return 0
    from app.cli.text import columns, money

    out(columns(("ID", "NAME", "MEMORY", "SECURE $/H", "COMMUNITY $/H", "AVAILABILITY"), [
        [g.id, g.display_name, f"{g.memory_gb} GB" if g.memory_gb else "-",
         money(g.price_secure), money(g.price_community), g.availability or "-"]
        for g in types
    ]))
    return 0


# --- arguments -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hangar", description=__doc__.split("\n\n")[1],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    clusters = commands.add_parser("clusters", help=CLUSTERS_HELP, description=CLUSTERS_HELP)
    actions = clusters.add_subparsers(dest="action", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., Any], summary: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=summary, description=summary)
        p.set_defaults(run=run)
        return p

    def as_json(p: argparse.ArgumentParser, what: str = "Print the API's JSON.") -> None:
        p.add_argument("--json", action="store_true", help=what)

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
    p.add_argument("--ttl", type=int, metavar="SECONDS",
                   help="Tear the cluster down this long after it is ready.")
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

    p = command("rm", remove, "Tear a cluster down (deleting twice is fine).")
    p.add_argument("id", metavar="ID")
    p.add_argument("--wait", action="store_true",
                   help="Return once every pod is confirmed gone.")
    p.add_argument("--timeout", type=float, default=DELETE_TIMEOUT_S, metavar="SECONDS",
                   help=f"How long --wait waits ({DELETE_TIMEOUT_S:g}).")
    as_json(p)

    p = command("ssh", ssh, "Log into a node with OpenSSH as root, trusting only the host "
                "key Hangar pinned; your key must be on it (create --ssh-key).")
    p.add_argument("id", metavar="ID")
    p.add_argument("--node", type=int, default=0, help="The node's index (0).")
    p.add_argument("-i", "--identity", metavar="FILE",
                   help="Your private key (else ssh's default keys and agent).")
    p.set_defaults(command=())
    p.usage = "hangar clusters ssh [-h] [--node NODE] [-i FILE] ID [-- COMMAND...]"

    p = commands.add_parser("gpu-types", help=GPU_TYPES_HELP, description=GPU_TYPES_HELP)
    p.set_defaults(run=gpu_types)
    p.add_argument("--name", help="Only types whose id or name contains this (e.g. 4090).")
    as_json(p)
    return top


def main(argv: Sequence[str]) -> int:
    """Run `hangar <argv>` for argv starting with one of COMMANDS; the exit code."""
    argv = list(argv)
    remote: list[str] = []
    if "--" in argv:  # `ssh ID -- COMMAND...`: the rest is the remote command, verbatim
        cut = argv.index("--")
        argv, remote = argv[:cut], argv[cut + 1:]
    args = parser().parse_args(argv)
    if remote:
        if args.run is not ssh:
            err("error: only `hangar clusters ssh ID -- COMMAND` takes arguments after --")
            return 2
        args.command = remote
    try:
        return args.run(args) or 0
    except Exit as exc:
        if exc.message:
            err(f"error: {exc.message}")
        return exc.code
    except KeyboardInterrupt:
        return 130
