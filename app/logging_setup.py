"""Structured logs: JSON lines (structlog renders stdlib records too)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

import structlog

from app import redaction


def configure_logging(
    level: str = "INFO", json: bool = True, secrets: Iterable[str | None] = ()
) -> None:
    """JSON lines on stderr for structlog and stdlib loggers alike, with the request
    context (request_id, cluster_id) merged in and secrets redacted (`secrets` adds
    values known to this process, such as the RunPod key)."""
    redaction.register_secrets(secrets)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redaction.structlog_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("asyncssh", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # arq logs two lines per job (several jobs per node): below DEBUG, only its warnings.
    # Job counts and durations are in the worker's metrics (hangar_job_duration_seconds).
    if root.level > logging.DEBUG:
        logging.getLogger("arq.worker").setLevel(logging.WARNING)
