"""An error answer as a typed exception (problem+json or not: a proxy's HTML 502 too), the
seconds a Retry-After asks for, and which answers are worth retrying."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hangar_client.errors import ApiError, FieldError, error_class


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def api_error(response: httpx.Response, content: bytes | None = None) -> ApiError:
    """The error response as a typed exception, problem+json or not (a proxy's HTML 502)."""
    status = response.status_code
    raw = response.content if content is None else content
    body: Any = None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        pass
    reason = response.reason_phrase or f"HTTP {status}"
    if not isinstance(body, dict):
        text = raw.decode("utf-8", "replace").strip()[:200] if raw else ""
        body, detail = {}, text or reason
    else:
        detail = str(body.get("detail") or body.get("title") or reason)
    errors = [FieldError(str(e.get("field", "")), str(e.get("message", "")))
              for e in body.get("errors") or [] if isinstance(e, dict)]
    candidates = body.get("candidates")
    return error_class(status)(
        status,
        str(body.get("code") or f"http_{status}"),
        str(body.get("title") or reason),
        detail,
        limit=body.get("limit") if isinstance(body.get("limit"), str) else None,
        candidates=[str(c) for c in candidates] if isinstance(candidates, list) else None,
        errors=errors,
        request_id=body.get("request_id") or response.headers.get("x-request-id"),
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        problem=body,
    )


def worth_retrying(error: ApiError) -> bool:
    """Transient answers: an unavailable dependency or gateway, a rate limit, a request with
    the same Idempotency-Key still in flight. A team limit (a 429 naming its `limit`) is a
    quota, not a rate: waiting seconds does not lift it."""
    if error.status in (502, 503, 504):
        return True
    if error.status == 429:
        return error.limit is None
    return error.status == 409 and error.retry_after is not None
