"""arq WorkerSettings: job functions, the reconciler cron, startup/shutdown hooks."""

from __future__ import annotations

from arq.connections import RedisSettings

from app.settings import get_settings
from workers.context import shutdown, startup

_settings = get_settings()


class WorkerSettings:
    functions: list = []
    cron_jobs: list = []
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(_settings.redis_url or "redis://127.0.0.1:6379/0")
    max_jobs = _settings.worker_max_jobs
    job_timeout = _settings.job_timeout_s
    # Jobs are idempotent and re-enqueued by the reconciler; arq's own retries stay short.
    max_tries = 3
    health_check_interval = 10
