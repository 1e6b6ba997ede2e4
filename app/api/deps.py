"""Request dependencies: database session, Redis, the calling team (bearer token)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import Message
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import Caller
from app.api.errors import ApiError
from app.domain.crypto import hash_token

__all__ = ["Caller", "CurrentCaller", "Session", "get_caller", "get_session"]

bearer = HTTPBearer(auto_error=False, description="An API token from `hangar keys create`.")


async def require_json_body(request: Request) -> None:
    """415 for a body that is not JSON (instead of a confusing 'not an object' 422)."""
    if not await request.body():
        return  # validation reports the missing body
    content_type = request.headers.get("content-type", "")
    msg = Message()
    msg["content-type"] = content_type
    subtype = msg.get_content_subtype()
    if not content_type or msg.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        raise ApiError(
            415, "unsupported_media_type",
            "Send the body as JSON with 'Content-Type: application/json'.",
            title="Unsupported media type",
        )


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def _unauthorized(detail: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        detail,
        title="Unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="hangar"'},
    )


async def get_caller(request: Request) -> Caller:
    """The calling team, from the process's token cache (app/api/auth.py): a cached token
    costs no query; a lookup uses a connection of its own, only as long as the lookup.

    The header is parsed here rather than by `bearer` as a sub-dependency: FastAPI's
    handling of a security dependency costs ~0.1 ms per request on a small machine. The
    OpenAPI still declares `bearer` on every route that depends on this
    (`app/api/docs.py`).

    It also binds the request's `cluster_id` (a path parameter, known once the route
    matched) to the log context, so every log line of the request carries it: every
    route about a cluster depends on this (an app-wide dependency cost more)."""
    cluster_id = request.path_params.get("cluster_id")
    if cluster_id is not None:
        structlog.contextvars.bind_contextvars(cluster_id=cluster_id)
    query = request.scope.get("query_string", b"")
    if b"access_token" in query and _ACCESS_TOKEN.search(query):
        raise _unauthorized("A token in the URL (access_token) is accepted only by GET "
                            "/clusters/{id}/events, and only a stream token from POST "
                            "/clusters/{id}/stream-tokens. Send your API token as "
                            "'Authorization: Bearer <token>'.")
    # What `bearer` (HTTPBearer(auto_error=False)) accepts, without building its model.
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    digest = hash_token(token)
    state = request.app.state
    tokens = state.tokens
    caller = tokens.hit(digest)  # a token this process accepted recently: no query
    if caller is not None:
        return caller
    throttle = state.auth_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        # Too many unknown tokens from this address (app/api/abuse.py): no more lookups for
        # a while (a token this process accepted recently still works, above).
        raise ApiError(
            429, "too_many_failed_authentications",
            f"Too many requests with unknown or revoked tokens from your address; retry "
            f"after {wait} s with a valid token.",
            title="Too many failed authentications", headers={"Retry-After": str(wait)},
            limit="failed_authentications")
    caller = await tokens.lookup(digest)
    if caller is None:
        throttle.failed(address)
        raise _unauthorized("The API token is unknown or revoked.")
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]

# A token in a URL ends up in logs, histories and Referer headers: only stream tokens, and
# only on the event stream (app/api/routes/stream_tokens.py), which does not call this.
_ACCESS_TOKEN = re.compile(rb"(?:^|&)access_token=")
