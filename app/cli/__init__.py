"""The `hangar` command line.

- server.py: run Hangar (`api`, `worker`, `migrate`, `dev`, `keys`, `simulator`), on typer.
- clusters.py: use it over HTTP (`clusters …`, `gpu-types`) through `hangar_client`. Those
  take a fast path from `main`: no typer, nothing of the server.
"""


import sys


def app():
    """The typer application: the server's commands, and the client's listed for --help."""
    import typer

    from app.cli import clusters, server

    cli = typer.Typer(help="Hangar: GPU clusters on demand.", no_args_is_help=True)
    cli.add_typer(server.cli)
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True,
                   "help_option_names": []}

    @cli.command("clusters", help=clusters.CLUSTERS_HELP, context_settings=passthrough)
    def _clusters(ctx: typer.Context) -> None:
        raise typer.Exit(clusters.main(["clusters", *ctx.args]))

    @cli.command("gpu-types", help=clusters.GPU_TYPES_HELP, context_settings=passthrough)
    def _gpu_types(ctx: typer.Context) -> None:
        raise typer.Exit(clusters.main(["gpu-types", *ctx.args]))

    return cli


def main() -> None:
    args = sys.argv[1:]
    from app.cli import clusters

    if args and args[0] in clusters.COMMANDS:
        sys.exit(clusters.main(args))
    app()()
