"""The `hangar` command line.

- server.py: run Hangar (`api`, `worker`, `migrate`, `dev`, `simulator`), and admin.py:
  administer it (`keys`, `teams`), on typer; startup.py: what they do first (settings,
  logging, the secret key, the database URL).
- client.py: use it over HTTP through `hangar_client`, on argparse: clusters.py
  (`clusters …`), catalog.py (`gpu-types`, `network-volumes`), spend.py (`usage`, `team`),
  sharing common.py (connection, output, errors) and arguments.py (option values). Those
  take a fast path from `main`: no typer, nothing of the server.
"""


import sys


def app():
    """The typer application: the server's commands, and the client's listed for --help."""
    import typer

    from app.cli import catalog, client, clusters, server, spend

    cli = typer.Typer(help="Hangar: GPU clusters on demand.", no_args_is_help=True)
    cli.add_typer(server.cli)
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True,
                   "help_option_names": []}

    helps = {"clusters": clusters.CLUSTERS_HELP, "gpu-types": catalog.GPU_TYPES_HELP,
             "network-volumes": catalog.NETWORK_VOLUMES_HELP, "usage": spend.USAGE_HELP,
             "team": spend.TEAM_HELP}

    def passing_through(name: str) -> None:
        @cli.command(name, help=helps[name], context_settings=passthrough)
        def _client_command(ctx: typer.Context) -> None:
            raise typer.Exit(client.main([name, *ctx.args]))

    for name in client.COMMANDS:
        passing_through(name)
    return cli


def main() -> None:
    args = sys.argv[1:]
    from app.cli import client

    if args and args[0] in client.COMMANDS:
        sys.exit(client.main(args))
    app()()
