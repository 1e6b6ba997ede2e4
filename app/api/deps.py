"""Request dependencies: database session, Redis, the calling team (bearer token)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Annotated
from uuid import UUID

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.errors import ApiError
from app.db.models import ApiToken
from app.domain.crypto import hash_token

bearer = HTTPBearer(auto_error=False, description="An API token from `hangar keys create`.")

# last_used_at is written at most this often per token, to keep auth off the write path.
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def bind_log_context(request: Request) -> None:
    """Every log line of the request carries the cluster id it is about (app-wide
    dependency: path parameters are known once the route matched)."""
    cluster_id = request.path_params.get("cluster_id")
    if cluster_id is not None:
        structlog.contextvars.bind_contextvars(cluster_id=str(cluster_id))


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


@dataclass(frozen=True)
class Caller:
    team_id: UUID
    team_name: str
    token_id: UUID


def _unauthorized(detail: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        detail,
        title="Unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="hangar"'},
    )


async def get_caller(
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The calling team. Uses the request's session (FastAPI caches it per request), so
    authentication and the route share one connection."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    digest = hash_token(credentials.credentials)
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or token.revoked_at is not None:
        raise _unauthorized("The API token is unknown or revoked.")
    caller = Caller(team_id=token.team_id, team_name=token.team.name, token_id=token.id)
    now = datetime.now(UTC)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(
            update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
        )
    # End the read (and the write) now: routes start their own transactions on this session.
    await session.commit()
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]
