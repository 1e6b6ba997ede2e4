"""Turn a RunPod v2 HTTP failure into one of the typed provider errors."""

from __future__ import annotations

import email.utils
import re
import time

import httpx
from pydantic import ValidationError

from app.providers.base import (
    AccessDenied,
    CapacityError,
    InsufficientBalance,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
    ServerError,
    TransportError,
)

from .types import ErrorResponse

# v2 has no machine-readable capacity code: only `detail` says it (V2-NOTES §6).
_CAPACITY = re.compile(
    r"no longer any instances available"
    r"|no instances (?:are )?(?:currently )?available"
    r"|no (?:gpus?|machines?|hosts?) (?:are )?(?:currently )?available"
    r"|(?:insufficient|not enough|out of|no) (?:gpu )?capacity"
    r"|could not be placed"
    r"|does not have the resources to deploy",
    re.IGNORECASE,
)


class ConnectFailed(TransportError):
    """The connection could not be opened: not one byte of the request was sent.

    The only transport failure after which a create may be retried without risking
    a duplicate pod.
    """


class Conflict(InvalidRequest):
    """409: the action is not valid for the pod's status, or the pod is a cluster member."""


class UnexpectedResponse(ServerError):
    """A success status whose body could not be read as the documented schema."""


def is_capacity_message(text: str) -> bool:
    return bool(_CAPACITY.search(text or ""))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: integer/decimal seconds (what v2 sends) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def parse_problem(response: httpx.Response) -> ErrorResponse:
    """The problem+json body, or a stand-in built from the status when it is not one."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        try:
            return ErrorResponse.model_validate(data)
        except ValidationError:
            pass
    text = response.text.strip()[:300] if response.content else ""
    return ErrorResponse(
        title=response.reason_phrase or "", status=response.status_code, detail=text
    )


def _describe(status: int, problem: ErrorResponse) -> str:
    parts = [f"RunPod {status}"]
    head = problem.title.strip()
    if head:
        parts.append(head)
    text = " ".join(parts)
    if problem.detail.strip():
        text += f": {problem.detail.strip()}"
    if problem.errors:
        text += " [" + "; ".join(problem.errors) + "]"
    return text


def error_from_response(response: httpx.Response) -> ProviderError:
    """The typed error for a non-2xx response. 404 gives `NotFound`; callers decide."""
    status = response.status_code
    problem = parse_problem(response)
    message = _describe(status, problem)
    if status == 400:
        if is_capacity_message(problem.detail) or is_capacity_message(problem.title):
            return CapacityError(message, status=status)
        return InvalidRequest(message, status=status)
    if status == 401:
        return InvalidCredentials(message, status=status)
    if status == 402:
        return InsufficientBalance(message, status=status)
    if status == 403:
        return AccessDenied(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    if status == 409:
        return Conflict(message, status=status)
    if status == 429:
        return RateLimited(
            message, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500:
        return ServerError(message, status=status)
    if 400 <= status < 500:
        return InvalidRequest(message, status=status)
    return ProviderError(message, status=status)


def error_from_transport(exc: httpx.TransportError, what: str) -> TransportError:
    """`ConnectFailed` when nothing was sent; otherwise a plain `TransportError`."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectFailed(
            f"{what}: could not connect to RunPod ({type(exc).__name__}: {detail})"
        )
    return TransportError(
        f"{what}: request to RunPod failed, outcome unknown ({type(exc).__name__}: {detail})"
    )


def outcome_of(response: httpx.Response) -> str:
    """A low-cardinality label for metrics."""
    status = response.status_code
    if 200 <= status < 300:
        return "ok"
    if status == 400 and is_capacity_message(parse_problem(response).detail):
        return "capacity"
    return {
        400: "bad_request",
        401: "unauthorized",
        402: "payment_required",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        422: "unprocessable",
        429: "rate_limited",
    }.get(status, "server_error" if status >= 500 else "client_error")
