"""The `hangar` command line.

- server.py: run Hangar (`api`, `worker`, `migrate`, `dev`, `keys`, `teams`, `simulator`),
  on typer.
- clusters.py: use it over HTTP (`clusters …`, `gpu-types`, `network-volumes`) through
  `hangar_client`, and spend.py likewise (`usage`, `team`). Those take a fast path from
  `main`: no typer, nothing of the server.
"""


import sys


def app():
    """The typer application: the server's commands, and the client's listed for --help."""
    import typer

    from app.cli import clusters, server, spend

    cli = typer.Typer(help="Hangar: GPU clusters on demand.", no_args_is_help=True)
    cli.add_typer(server.cli)
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True,
                   "help_option_names": []}

    helps = {"clusters": clusters.CLUSTERS_HELP, "gpu-types": clusters.GPU_TYPES_HELP,
             "network-volumes": clusters.NETWORK_VOLUMES_HELP, "usage": spend.USAGE_HELP,
             "team": spend.TEAM_HELP}

    def passing_through(name: str) -> None:
        @cli.command(name, help=helps[name], context_settings=passthrough)
        def _client_command(ctx: typer.Context) -> None:
            raise typer.Exit(clusters.main([name, *ctx.args]))

    for name in clusters.COMMANDS:
        passing_through(name)
    return cli


def main() -> None:
    args = sys.argv[1:]
    from app.cli import clusters

    if args and args[0] in clusters.COMMANDS:
        sys.exit(clusters.main(args))
    app()()
