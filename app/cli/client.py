"""The client commands, parsed and run here: `hangar clusters …` (clusters.py), `hangar
gpu-types` and `hangar network-volumes` (catalog.py), `hangar usage` and `hangar team`
(spend.py): the API over HTTP, through `hangar_client`.

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
from collections.abc import Sequence

from app.cli import catalog, clusters, spend
from app.cli.common import Exit, err

# `hangar <these>` are parsed here (clusters in clusters.py, gpu-types and network-volumes in
# catalog.py, usage and team in spend.py).
COMMANDS = ("clusters", "gpu-types", "network-volumes", "usage", "team")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hangar", description=__doc__.split("\n\n")[1],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    clusters.add_commands(commands)
    catalog.add_commands(commands)
    spend.add_commands(commands)
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
        if args.run is not clusters.ssh:
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
