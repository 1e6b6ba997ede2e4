"""What a server command does first: load the settings and configure logging (with every
secret it knows redacted), refuse to start without HANGAR_SECRET_KEY where secrets are
stored or read, and find the database (DATABASE_URL, or the embedded server)."""

from __future__ import annotations

import typer


def load_settings():
    from app.logging_setup import configure_logging
    from app.settings import get_settings

    settings = get_settings()
    secrets = [s.get_secret_value() for s in (settings.runpod_api_key, settings.secret_key)
               if s is not None]
    if settings.secret_key_old is not None:
        from app.domain.crypto import parse_old_keys

        secrets += parse_old_keys(settings.secret_key_old.get_secret_value())
    configure_logging(settings.log_level, settings.log_json, secrets=secrets)
    return settings


def require_secret_key(settings) -> None:
    """`hangar api` and `hangar worker` store and read encrypted secrets: no key, no start."""
    if not settings.has_secret_key:
        from app.settings import MISSING_SECRET_KEY

        typer.echo(f"error: {MISSING_SECRET_KEY}", err=True)
        raise typer.Exit(2)


def database_url() -> str:
    """DATABASE_URL, or the embedded server under HANGAR_DATA_DIR (started or attached)."""
    settings = load_settings()
    if settings.database_url:
        return settings.database_url
    from app.embedded import start_postgres

    return start_postgres(settings.data_dir)
