"""The server's commands: api, worker, migrate, dev, simulator (and keys and teams, from
admin.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import typer

from app.cli.admin import keys, teams
from app.cli.startup import database_url, load_settings, require_secret_key

cli = typer.Typer()
cli.add_typer(keys, name="keys")
cli.add_typer(teams, name="teams")

SIM_KEY = "sim-key"


@cli.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, help="uvicorn worker processes."),
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from app.api.server import uvicorn_bounds

    settings = load_settings()
    require_secret_key(settings)
    uvicorn.run(
        "app.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level.lower(),
        # Header size, time to headers, idle keep-alive (app/api/server.py).
        **uvicorn_bounds(settings),
    )


@cli.command()
def worker() -> None:
    """Run an arq worker: provisioning jobs and the reconciler cron."""
    settings = load_settings()
    require_secret_key(settings)
    from workers.runner import HangarWorker
    from workers.settings import worker_options

    HangarWorker(**worker_options(settings)).run()


@cli.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from app.db.migrate import upgrade_head

    upgrade_head(database_url())
    typer.echo("database is at head")



@cli.command()
def simulator(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8765),
    api_key: str = typer.Option(SIM_KEY, help="Bearer key the simulator accepts."),
    start_delay: float = typer.Option(2.0, help="Seconds from create to RUNNING."),
) -> None:
    """Serve the RunPod v2 simulator alone (real HTTP, pods are real SSH servers)."""
    load_settings()
    from app.simulator import serve

    serve(host=host, port=port, api_key=api_key, start_delay=start_delay)


@cli.command()
def dev(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    simulator_port: int = typer.Option(8765),
) -> None:
    """API + worker in one command; embedded Postgres/Redis and the simulator when unset."""
    settings = load_settings()
    started = time.monotonic()
    from app.embedded import ensure_services

    db_url, redis_url = ensure_services(settings.data_dir)
    from app.db.migrate import upgrade_head

    upgrade_head(db_url)
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url)
    if not settings.has_secret_key:
        from app.settings import DEV_SECRET_KEY

        env["HANGAR_SECRET_KEY"] = DEV_SECRET_KEY
        typer.echo("HANGAR_SECRET_KEY is not set: running on the development key, which "
                   "protects nothing. Set HANGAR_SECRET_KEY before storing real secrets.",
                   err=True)
    children: list[subprocess.Popen] = []
    exe = [sys.executable, "-m", "app.cli"]
    if settings.simulated:
        env["RUNPOD_API_URL"] = f"http://127.0.0.1:{simulator_port}/v2"
        env["RUNPOD_API_KEY"] = SIM_KEY
        children.append(
            subprocess.Popen([*exe, "simulator", "--port", str(simulator_port)], env=env)
        )
        typer.echo(f"RunPod simulator at {env['RUNPOD_API_URL']} (no RUNPOD_API_KEY set)")
    children.append(subprocess.Popen([*exe, "worker"], env=env))
    children.append(subprocess.Popen([*exe, "api", "--host", host, "--port", str(port)], env=env))
    typer.echo(f"database {db_url}\nredis {redis_url}")
    if _wait_ready(f"http://{host}:{port}/readyz", children, timeout=120):
        typer.echo(f"Hangar API at http://{host}:{port} (docs at /docs), ready "
                   f"{time.monotonic() - started:.1f}s after `hangar dev` started.")
        typer.echo("Create a token with: uv run hangar keys create --team dev")

    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        for c in children:
            if c.poll() is None:
                c.terminate()
        for c in children:
            try:
                c.wait(10)
            except subprocess.TimeoutExpired:
                c.kill()
    failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    if failed and not stop:
        raise typer.Exit(1)


def _wait_ready(url: str, children: list[subprocess.Popen], timeout: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(c.poll() is None for c in children):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False
