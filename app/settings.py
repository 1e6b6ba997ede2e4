"""Every setting Hangar reads, in one typed place (environment variables)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.domain.crypto import Keyring, keyring, parse_old_keys
from app.redis_names import RedisNames

DEFAULT_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
# What `hangar dev` runs on when HANGAR_SECRET_KEY is unset (and says so). Never for real use.
DEV_SECRET_KEY = "hangar-dev-insecure-secret"
MISSING_SECRET_KEY = (
    "HANGAR_SECRET_KEY is not set. It encrypts the SSH private keys and secrets Hangar "
    "stores: set it to a Fernet key (python -c \"from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())\") or a long passphrase, the same in every API "
    "and worker process. Only `hangar dev` runs without it, on a development key."
)


class MissingSecretKey(RuntimeError):
    """HANGAR_SECRET_KEY is needed and not set."""


# scheme://host[:port], as a browser sends it in `Origin` (no path, no trailing slash).
_ORIGIN = re.compile(r"(?i)^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def parse_origins(value: Any) -> list[str]:
    """`HANGAR_CORS_ORIGINS`: comma-separated origins (or a JSON list of them), `*` for any."""
    if isinstance(value, str) and value.strip().startswith("["):
        value = json.loads(value)
    items = value.split(",") if isinstance(value, str) else list(value or [])
    origins: list[str] = []
    for item in items:
        origin = str(item).strip().rstrip("/")
        if not origin:
            continue
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port] "
                             "(e.g. https://dash.example.com), without a path")
        scheme, _, rest = origin.partition("://")
        origins.append(origin if origin == "*" else f"{scheme.lower()}://{rest.lower()}")
    return origins


def async_database_url(url: str) -> str:
    """Accept a plain `postgresql://` URL and use the asyncpg driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def parse_schedule(text: str) -> list[float]:
    """"5,300,1800" -> [5.0, 300.0, 1800.0]; empty: no retries."""
    try:
        delays = [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError(f"expected comma-separated seconds, e.g. 5,300,1800; got {text!r}") from None
    if any(not 0 <= d <= 7 * 86400 for d in delays):
        raise ValueError("each delay must be between 0 and 604800 seconds")
    return delays


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Unset: `hangar dev` and the tests start embedded servers of their own.
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")

    runpod_api_key: SecretStr | None = Field(default=None, alias="RUNPOD_API_KEY")
    runpod_api_url: str = Field(default="https://api.runpod.io/v2", alias="RUNPOD_API_URL")
    runpod_read_timeout_s: float = Field(default=30.0, gt=0, alias="HANGAR_RUNPOD_READ_TIMEOUT")
    runpod_backoff_base_s: float = Field(default=0.5, ge=0, alias="HANGAR_RUNPOD_BACKOFF_BASE")
    # One RunPod call, its retries and waits included, never takes longer than this: it has
    # to fit in the worker job that makes it (docs/PIPELINE.md, "Retries").
    runpod_call_deadline_s: float = Field(default=20.0, gt=0, le=50,
                                          alias="HANGAR_RUNPOD_CALL_DEADLINE")
    catalog_ttl_s: float = Field(default=60.0, alias="HANGAR_CATALOG_TTL")

    # Encrypts stored SSH private keys and cluster secrets: a Fernet key (urlsafe base64 of
    # 32 bytes), used as it is, or a passphrase, stretched with scrypt (app/domain/crypto.py).
    # Required by `hangar api` and `hangar worker`; only `hangar dev` runs on DEV_SECRET_KEY.
    secret_key: SecretStr | None = Field(default=None, alias="HANGAR_SECRET_KEY")
    # Earlier keys, comma-separated: decryption only, until `hangar keys rotate-secrets` has
    # re-encrypted the stored rows with HANGAR_SECRET_KEY.
    secret_key_old: SecretStr | None = Field(default=None, alias="HANGAR_SECRET_KEY_OLD")

    data_dir: Path = Field(default=Path(".hangar"), alias="HANGAR_DATA_DIR")
    # Prefix of every Redis key, queue, job id and channel of this deployment: deployments
    # (or test runs) sharing one Redis keep out of each other's way with different ones.
    redis_namespace: str = Field(default="hangar", pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                                 alias="HANGAR_REDIS_NAMESPACE")
    log_level: str = Field(default="INFO", alias="HANGAR_LOG_LEVEL")
    log_json: bool = Field(default=True, alias="HANGAR_LOG_JSON")

    # Pods
    pod_name_prefix: str = Field(default="hangar", alias="HANGAR_POD_PREFIX")
    default_image: str = Field(default=DEFAULT_IMAGE, alias="HANGAR_DEFAULT_IMAGE")
    provision_timeout_s: float = Field(default=300.0, alias="HANGAR_PROVISION_TIMEOUT")
    bootstrap_timeout_s: float = Field(default=600.0, alias="HANGAR_BOOTSTRAP_TIMEOUT")
    ssh_connect_timeout_s: float = Field(default=10.0, alias="HANGAR_SSH_CONNECT_TIMEOUT")

    # Work scheduling
    poll_interval_s: float = Field(default=1.0, alias="HANGAR_POLL_INTERVAL")
    poll_interval_max_s: float = Field(default=5.0, alias="HANGAR_POLL_INTERVAL_MAX")
    reconcile_interval_s: int = Field(default=5, alias="HANGAR_RECONCILE_INTERVAL")
    orphan_grace_s: float = Field(default=120.0, alias="HANGAR_ORPHAN_GRACE")
    reconcile_grace_s: float = Field(default=15.0, alias="HANGAR_RECONCILE_GRACE")
    lease_s: float = Field(default=60.0, alias="HANGAR_LEASE_SECONDS")
    bootstrap_step_s: float = Field(default=10.0, alias="HANGAR_BOOTSTRAP_STEP")
    worker_max_jobs: int = Field(default=50, alias="HANGAR_WORKER_MAX_JOBS")
    # Serve the worker's own /metrics (job durations, RunPod calls) on this port; unset: off.
    worker_metrics_port: int | None = Field(default=None, alias="HANGAR_WORKER_METRICS_PORT")

    # Per-team limits (defaults for every team)
    max_live_nodes: int = Field(default=64, alias="HANGAR_MAX_LIVE_NODES")
    max_live_clusters: int = Field(default=100, alias="HANGAR_MAX_LIVE_CLUSTERS")
    max_hourly_spend: float = Field(default=500.0, alias="HANGAR_MAX_HOURLY_SPEND")
    # USD per UTC month; unset: no budget. Creates are refused once the month's cost reaches it.
    team_monthly_budget: float | None = Field(default=None, ge=0,
                                              alias="HANGAR_TEAM_MONTHLY_BUDGET")
    # Days a finished cluster's events are kept (then deleted; the cluster and its cost stay).
    event_retention_days: float = Field(default=30, gt=0, alias="HANGAR_EVENT_RETENTION_DAYS")
    sse_heartbeat_s: float = Field(default=15.0, alias="HANGAR_SSE_HEARTBEAT")

    # API read path (docs/read-path.md)
    # Seconds an API process trusts a token it has checked; a revocation reaches running
    # processes at once through Redis, and within this bound when Redis misses it. 0: off.
    auth_cache_s: float = Field(default=10.0, ge=0, alias="HANGAR_AUTH_CACHE_SECONDS")
    # Max age of a cluster's rows in an API process's read cache (GET /clusters/{id}).
    # Commits announced on Redis invalidate at once; this bounds a missed one. 0: off.
    read_cache_s: float = Field(default=1.0, ge=0, alias="HANGAR_READ_CACHE_SECONDS")
    # Database connections per API or worker process: the pool holds this many; requests
    # and jobs beyond it wait for one (overflow connections are opened and closed per burst).
    db_pool_size: int = Field(default=20, ge=1, alias="HANGAR_DB_POOL_SIZE")
    db_max_overflow: int = Field(default=0, ge=0, alias="HANGAR_DB_MAX_OVERFLOW")
    idempotency_ttl_s: int = Field(default=24 * 3600, alias="HANGAR_IDEMPOTENCY_TTL")

    # Abuse limits, per API process (app/api/abuse.py), and the HTTP server's bounds
    # (app/api/server.py). A proxy in front enforces the rest (README.md, "Deployment").
    # Unknown or revoked tokens from one client address per minute before its requests
    # get 429 (a token this process accepted recently still works).
    auth_failures_per_minute: int = Field(default=30, ge=1,
                                          alias="HANGAR_AUTH_FAILURES_PER_MINUTE")
    # Event streams (SSE) one team may hold open on one API process; one more is a 429.
    max_streams_per_team: int = Field(default=100, ge=1, alias="HANGAR_MAX_STREAMS_PER_TEAM")
    # Seconds a client has to send a request's headers, from connecting or from the end of
    # its previous response; then the connection is closed.
    http_header_timeout_s: float = Field(default=10.0, gt=0, alias="HANGAR_HTTP_HEADER_TIMEOUT")
    # Largest request line plus headers, in bytes; larger is a 431.
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024,
                                       alias="HANGAR_HTTP_MAX_HEADER_BYTES")
    # Seconds an idle keep-alive connection stays open after a response.
    http_keepalive_s: int = Field(default=5, ge=1, alias="HANGAR_HTTP_KEEPALIVE")
    # Webhooks (docs/webhooks.md)
    # Allow URLs that resolve to loopback or private addresses, and plain http (link-local
    # and cloud metadata addresses are refused always).
    webhook_allow_private: bool = Field(default=False, alias="HANGAR_WEBHOOK_ALLOW_PRIVATE")
    # Seconds between delivery attempts after a failure; after the last, the event is failed.
    webhook_retry_schedule: str = Field(default="5,300,1800,7200,18000,36000",
                                        alias="HANGAR_WEBHOOK_RETRY_SCHEDULE")
    webhook_timeout_s: float = Field(default=10.0, gt=0, alias="HANGAR_WEBHOOK_TIMEOUT")
    # An endpoint failing (no success) for this long is disabled.
    webhook_disable_after_s: float = Field(default=3 * 86400, gt=0,
                                           alias="HANGAR_WEBHOOK_DISABLE_AFTER")
    # One delivery job per endpoint holds this lease (renewed while it runs); a killed
    # worker's endpoint is taken over once it lapses.
    webhook_lease_s: float = Field(default=30.0, ge=2, alias="HANGAR_WEBHOOK_LEASE_SECONDS")

    # Browsers (docs/browser.md): origins a page may call the API from (none by default).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                         alias="HANGAR_CORS_ORIGINS")

    # Seconds a stream token (a browser's read-only grant to one event stream) is valid.
    stream_token_ttl_s: int = Field(default=300, ge=1, le=24 * 3600,
                                    alias="HANGAR_STREAM_TOKEN_TTL")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> list[str]:
        return parse_origins(v)

    @field_validator("database_url")
    @classmethod
    def _asyncpg(cls, v: str | None) -> str | None:
        return async_database_url(v) if v else v

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        parse_schedule(v)
        return v

    @property
    def webhook_retry_delays(self) -> list[float]:
        return parse_schedule(self.webhook_retry_schedule)

    @model_validator(mode="after")
    def _calls_fit_in_jobs(self) -> Settings:
        # A node's job ends 5 s before its lease and may make two RunPod calls in a row.
        if 2 * self.runpod_call_deadline_s >= self.lease_s - 5:
            raise ValueError(
                f"HANGAR_RUNPOD_CALL_DEADLINE ({self.runpod_call_deadline_s:g} s) must be less "
                f"than half of HANGAR_LEASE_SECONDS minus 5 s ({self.lease_s:g} s): a worker "
                "job makes up to two RunPod calls in a row and must end within its lease")
        return self

    @property
    def redis_names(self) -> RedisNames:
        return RedisNames(self.redis_namespace)

    @property
    def has_secret_key(self) -> bool:
        return bool(self.secret_key and self.secret_key.get_secret_value())

    @property
    def keyring(self) -> Keyring:
        """HANGAR_SECRET_KEY (encrypts and decrypts) and HANGAR_SECRET_KEY_OLD (decrypts)."""
        if self.secret_key is None or not self.secret_key.get_secret_value():
            raise MissingSecretKey(MISSING_SECRET_KEY)
        old = self.secret_key_old.get_secret_value() if self.secret_key_old else None
        return keyring(self.secret_key.get_secret_value(), parse_old_keys(old))

    @property
    def simulated(self) -> bool:
        """No RunPod key: `hangar dev` serves the simulator instead."""
        return self.runpod_api_key is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
