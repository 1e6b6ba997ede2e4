"""Errors as `application/problem+json` bodies shaped like the spec's `ErrorResponse`."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"

# The one capacity text observed on the live API (V2-NOTES §6); clients match on it.
CAPACITY_DETAIL = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)


class ApiError(Exception):
    """Raised by handlers to answer with a problem+json error."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.title = title


def title_for(status: int) -> str:
    """The standard reason phrase, which is what the spec's examples use as `title`."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int, detail: str, errors: list[str] | None = None, title: str | None = None
) -> dict[str, Any]:
    """`{title, status, detail[, errors]}`."""
    body: dict[str, Any] = {"title": title or title_for(status), "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
) -> JSONResponse:
    """A ready-to-send problem+json response (also usable as a raw ASGI app)."""
    return JSONResponse(
        problem_body(status, detail, errors, title),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def from_error(error: ApiError) -> JSONResponse:
    """The response for a raised `ApiError`."""
    return problem_response(
        error.status, error.detail, errors=error.errors, headers=error.headers, title=error.title
    )
