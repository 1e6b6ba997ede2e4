"""`hangar gpu-types` and `hangar network-volumes`: what a cluster can be made of (the GPU
catalog with prices and availability, the account's network volumes), read over HTTP."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.arguments import as_json
from app.cli.common import connect, explained, out, print_json

GPU_TYPES_HELP = "The GPU catalog: per-GPU hourly prices and availability."
NETWORK_VOLUMES_HELP = ("Network volumes a cluster can mount (clusters create "
                        "--network-volume ID).")


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


@explained
def network_volumes(args: argparse.Namespace) -> int:
    with connect() as hangar:
        volumes = hangar.list_network_volumes()
    if args.json:
        print_json([v.raw for v in volumes])
        return 0
    from app.cli.text import columns

    out(columns(("ID", "NAME", "SIZE", "DATA CENTER", "TYPE"), [
        [v.id, v.name, f"{v.size_gb} GB" if v.size_gb is not None else "-",
         v.data_center_id or "-", v.type or "-"]
        for v in volumes
    ]))
    return 0


def add_commands(commands: Any) -> None:
    """`gpu-types` and `network-volumes` on the top-level parser of the client commands."""
    p = commands.add_parser("gpu-types", help=GPU_TYPES_HELP, description=GPU_TYPES_HELP)
    p.set_defaults(run=gpu_types)
    p.add_argument("--name", help="Only types whose id or name contains this (e.g. 4090).")
    as_json(p)

    p = commands.add_parser("network-volumes", help=NETWORK_VOLUMES_HELP,
                            description=NETWORK_VOLUMES_HELP)
    p.set_defaults(run=network_volumes)
    as_json(p)
