"""Errors as `application/problem+json` (RFC 9457), mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.domain import errors as domain
from app.redaction import redact, redact_value

log = logging.getLogger("hangar.api")

PROBLEM = "application/problem+json"


class ApiError(Exception):
    """An error a caller can act on. `code` is machine-readable; `detail` says what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.title = title or code.replace("_", " ").capitalize()
        self.headers = headers or {}
        self.extra = extra


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://hangar.dev/problems/{code}",
        "title": redact(title),
        "status": status,
        # A detail may quote the caller's input, and a caller may paste a token anywhere.
        "detail": redact(detail),
        "code": code,
    }
    if instance:
        body["instance"] = instance
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        body["request_id"] = request_id  # quote it when reporting a problem
    body.update(redact_value(extra))
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# The one mapping of domain errors (raised by services) to HTTP statuses; a subclass not
# listed takes its nearest listed base's status.
DOMAIN_STATUS: dict[type[domain.HangarError], int] = {
    domain.InvalidRequest: 422,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Gone: 410,
    domain.LimitExceeded: 429,
    domain.ProviderUnavailable: 503,
    domain.HangarError: 400,
}


def status_of(exc: domain.HangarError) -> int:
    return next(status for cls, status in DOMAIN_STATUS.items() if isinstance(exc, cls))


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """`Retry-After` in whole seconds (at least 1), or nothing."""
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, int(-(-seconds // 1))))}


HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be read; send a JSON body that matches the schema."),
    401: ("unauthorized", "Send an API token as 'Authorization: Bearer <token>'."),
    404: ("not_found", "No such route; see /docs for the API."),
    405: ("method_not_allowed", "This route does not take that method; see the Allow header."),
    406: ("not_acceptable", "This route answers JSON; accept application/json."),
    413: ("body_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'."),
}


def _loc(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    """One validation error as `field` + `message`. Never the input value: a header or a
    body can carry secrets, and the caller has the value already."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid"))
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        where = loc[1] if len(loc) > 1 else "?"
        return {"field": "body", "message": f"the body is not valid JSON ({reason} at character {where})"}
    if kind == "missing" and loc == ("body",):
        return {"field": "body", "message": "a JSON object body is required"}
    if kind == "model_attributes_type" and loc == ("body",):
        return {"field": "body", "message": "the body must be a JSON object"}
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return {"field": _loc(loc), "message": message}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(domain.HangarError)
    async def _domain_error(request: Request, exc: domain.HangarError) -> JSONResponse:
        return problem(
            status_of(exc),
            exc.code,
            exc.code.replace("_", " ").capitalize(),
            exc.detail,
            instance=request.url.path,
            headers=retry_after_header(exc.retry_after),
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
        return problem(
            422,
            "invalid_request",
            "Invalid request",
            detail,
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, detail = HTTP_PROBLEMS.get(exc.status_code, ("http_error", str(exc.detail)))
        return problem(
            exc.status_code,
            code,
            str(exc.detail) if exc.status_code < 500 else "Server error",
            detail,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(asyncpg.PostgresError)  # the read path queries the driver itself
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # Safety net: a value the database refuses (SQLSTATE class 22: out of range, bad
        # encoding, ...) came from the request, so it is the caller's 422, not our 500.
        # Routes validate their inputs; reaching this is a validation gap worth fixing.
        orig = getattr(exc, "orig", exc)
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            log.warning("database refused a request value on %s %s (sqlstate %s)",
                        request.method, request.url.path, sqlstate)
            return problem(
                422, "invalid_value", "Invalid request",
                "A value in the request is out of range or not representable; check numbers "
                "and text for extreme values or NUL characters.",
                instance=request.url.path,
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged with the traceback; the response says nothing about the cause.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method,
                  request.url.path, exc_info=exc)
        return problem(
            500,
            "internal_error",
            "Internal server error",
            "Hangar hit an unexpected error; it has been logged. Retry, and report it if it persists.",
            instance=request.url.path,
            # Sent outside the request middleware, which would otherwise add it.
            headers={"X-Request-ID": request.scope.get("state", {}).get("request_id", "")},
        )
