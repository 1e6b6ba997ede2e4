"""The server's commands: api, worker, migrate, dev, keys, simulator."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import typer

cli = typer.Typer()
keys = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
cli.add_typer(keys, name="keys")
teams = typer.Typer(help="Manage teams and their limits.", no_args_is_help=True)
cli.add_typer(teams, name="teams")

SIM_KEY = "sim-key"


def _settings():
    from app.logging_setup import configure_logging
    from app.settings import get_settings

    settings = get_settings()
    secrets = [settings.secret_key.get_secret_value()]
    if settings.runpod_api_key is not None:
        secrets.append(settings.runpod_api_key.get_secret_value())
    configure_logging(settings.log_level, settings.log_json, secrets=secrets)
    return settings


def _database_url() -> str:
    """DATABASE_URL, or the embedded server under HANGAR_DATA_DIR (started or attached)."""
    settings = _settings()
    if settings.database_url:
        return settings.database_url
    from app.embedded import start_postgres

    return start_postgres(settings.data_dir)


@cli.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, help="uvicorn worker processes."),
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    settings = _settings()
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
    )


@cli.command()
def worker() -> None:
    """Run an arq worker: provisioning jobs and the reconciler cron."""
    settings = _settings()
    from arq.worker import run_worker

    from workers.settings import worker_options

    run_worker(worker_options(settings))


@cli.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from app.db.migrate import upgrade_head

    upgrade_head(_database_url())
    typer.echo("database is at head")


@keys.command("create")
def keys_create(
    team: str = typer.Option(..., "--team", help="Team name; created if needed."),
) -> None:
    """Create an API token for a team. The token is printed once, alone on the last line."""
    import asyncio

    from app.db.session import make_engine, make_sessionmaker
    from app.services.teams import create_token

    async def run() -> str:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                token, plaintext = await create_token(session, team)
                typer.echo(
                    f"Created token {token.prefix}… for team {team!r}. It is shown only once:"
                )
                return plaintext
        finally:
            await engine.dispose()

    typer.echo(asyncio.run(run()))


def _limit(value: str | None, kind: type) -> tuple[bool, float | int | None]:
    """(given, value) of a limit option: unset, "default" (back to the setting) or a number."""
    if value is None:
        return False, None
    if value.strip().lower() in ("default", "none", "null"):
        return True, None
    try:
        number = kind(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number (or 'default')") from None
    if number < 0:
        raise typer.BadParameter(f"{value!r} is negative")
    return True, number


@teams.command("set-limits")
def teams_set_limits(
    team: str = typer.Option(..., "--team", help="Team name; created if needed."),
    max_live_clusters: str = typer.Option(None, help="A number, or 'default'."),
    max_live_nodes: str = typer.Option(None, help="A number, or 'default'."),
    max_hourly_spend: str = typer.Option(None, help="USD per hour, or 'default'."),
    monthly_budget: str = typer.Option(
        None, help="USD per UTC month (creates are refused once it is spent; running "
        "clusters are not stopped), or 'default' (HANGAR_TEAM_MONTHLY_BUDGET)."),
) -> None:
    """Set a team's own limits (the rest keep theirs). 'default' clears an override."""
    from sqlalchemy import update

    from app.db.models import Team
    from app.db.session import make_engine, make_sessionmaker
    from app.services.limits import effective_limits
    from app.services.teams import get_or_create_team

    changes = {}
    for name, value, kind in (("max_live_clusters", max_live_clusters, int),
                              ("max_live_nodes", max_live_nodes, int),
                              ("max_hourly_spend", max_hourly_spend, float),
                              ("monthly_budget", monthly_budget, float)):
        given, number = _limit(value, kind)
        if given:
            changes[name] = number
    settings = _settings()

    async def run() -> dict:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                row = await get_or_create_team(session, team)
                if changes:
                    await session.execute(update(Team).where(Team.id == row.id).values(**changes))
                    await session.refresh(row)
                return effective_limits(row, settings)
        finally:
            await engine.dispose()

    limits = asyncio.run(run())
    for name, limit in limits.items():
        shown = "none" if limit.value is None else f"{limit.value:g}"
        typer.echo(f"{name} {shown} ({limit.source})")


@keys.command("revoke")
def keys_revoke(
    token: str = typer.Argument(..., help="The token, or its displayed prefix."),
) -> None:
    """Revoke an API token, and tell the running API processes (through REDIS_URL) to drop
    it from their token caches."""
    import asyncio

    from app.db.session import make_engine, make_sessionmaker
    from app.services.teams import announce_revoked, revoke_tokens

    settings = _settings()

    async def run() -> tuple[int, str]:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                hashes = await revoke_tokens(session, token)
        finally:
            await engine.dispose()
        if not hashes:
            return 0, ""
        bound = (f"API processes may still accept it for up to {settings.auth_cache_s:g} s "
                 "(HANGAR_AUTH_CACHE_SECONDS), until their token caches expire.")
        if not settings.redis_url:
            return len(hashes), f"REDIS_URL is not set, so it was not announced: {bound}"
        try:
            heard = await announce_revoked(settings.redis_url, settings.redis_names.tokens,
                                           hashes)
        except Exception as exc:  # Redis down or unreachable: the revocation still holds
            return len(hashes), f"could not announce it on Redis ({exc}): {bound}"
        return len(hashes), (f"announced to {heard} API process(es), which refuse it from "
                             "now on.")

    n, note = asyncio.run(run())
    typer.echo(f"revoked {n} token(s)" + (f"; {note}" if note else ""))
    if n == 0:
        raise typer.Exit(1)


@cli.command()
def simulator(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8765),
    api_key: str = typer.Option(SIM_KEY, help="Bearer key the simulator accepts."),
    start_delay: float = typer.Option(2.0, help="Seconds from create to RUNNING."),
) -> None:
    """Serve the RunPod v2 simulator alone (real HTTP, pods are real SSH servers)."""
    _settings()
    from app.simulator import serve

    serve(host=host, port=port, api_key=api_key, start_delay=start_delay)


@cli.command()
def dev(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    simulator_port: int = typer.Option(8765),
) -> None:
    """API + worker in one command; embedded Postgres/Redis and the simulator when unset."""
    settings = _settings()
    started = time.monotonic()
    from app.embedded import ensure_services

    db_url, redis_url = ensure_services(settings.data_dir)
    from app.db.migrate import upgrade_head

    upgrade_head(db_url)
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url)
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
