"""`hangar keys …` (create, revoke, rotate-secrets) and `hangar teams set-limits`: a
deployment's tokens, the encryption of its stored secrets, and its teams' limits, changed
directly in the database."""

from __future__ import annotations

import asyncio

import typer

from app.cli.startup import database_url, load_settings, require_secret_key

keys = typer.Typer(help="Manage API tokens and the encryption of stored secrets.",
                   no_args_is_help=True)
teams = typer.Typer(help="Manage teams and their limits.", no_args_is_help=True)


@keys.command("create")
def keys_create(
    team: str = typer.Option(..., "--team", help="Team name; created if needed."),
) -> None:
    """Create an API token for a team. The token is printed once, alone on the last line."""
    import asyncio

    from app.db.session import make_engine, make_sessionmaker
    from app.services.teams import create_token

    async def run() -> str:
        engine = make_engine(database_url(), pool_size=1)
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
    settings = load_settings()

    async def run() -> dict:
        engine = make_engine(database_url(), pool_size=1)
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

    settings = load_settings()

    async def run() -> tuple[int, str]:
        engine = make_engine(database_url(), pool_size=1)
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


@keys.command("rotate-secrets")
def keys_rotate_secrets(
    batch: int = typer.Option(200, min=1, help="Clusters re-encrypted per transaction."),
) -> None:
    """Re-encrypt every stored SSH private key and cluster secret with HANGAR_SECRET_KEY
    (reading them with it or with HANGAR_SECRET_KEY_OLD). Run after setting the new key
    everywhere (old one in HANGAR_SECRET_KEY_OLD); then HANGAR_SECRET_KEY_OLD can go."""
    settings = load_settings()
    require_secret_key(settings)
    from app.db.session import make_engine, make_sessionmaker
    from app.services.rotation import rotate_secrets

    async def run():
        engine = make_engine(database_url(), pool_size=1)
        try:
            return await rotate_secrets(make_sessionmaker(engine), settings.keyring,
                                        batch=batch)
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    typer.echo(f"re-encrypted {result.rotated} cluster(s) with HANGAR_SECRET_KEY")
    if result.failed:
        shown = ", ".join(str(c) for c in result.failed[:20])
        typer.echo(f"error: {len(result.failed)} cluster(s) could not be decrypted with "
                   f"HANGAR_SECRET_KEY or HANGAR_SECRET_KEY_OLD: {shown}", err=True)
        raise typer.Exit(1)
