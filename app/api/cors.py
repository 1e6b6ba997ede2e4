"""CORS for dashboards on other origins (`HANGAR_CORS_ORIGINS`; docs/browser.md).

Only the origins named may call the API from a browser; preflights answer for them. The
team token travels in `Authorization` (never a cookie), so no credentials mode is needed:
another site's page gets nothing by being visited by a signed-in person.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

ALLOW_METHODS = ["GET", "POST", "PATCH", "DELETE"]
# What a dashboard sends: the token, JSON bodies, retries, resuming streams, revalidation.
ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID",
                 "If-None-Match", "X-Request-ID"]
# What it may read beyond the CORS-safelisted response headers.
EXPOSE_HEADERS = ["Location", "X-Request-ID", "Retry-After", "Idempotent-Replayed", "ETag"]
PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


def install(app: FastAPI, origins: list[str]) -> None:
    """Add the middleware when any origin is allowed (none: no CORS headers at all)."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=ALLOW_METHODS,
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE,
    )
