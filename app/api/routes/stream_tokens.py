"""Stream tokens for browsers (docs/browser.md): `POST /clusters/{id}/stream-tokens`, and
who may read a cluster's events (a bearer token, or a stream token in `access_token`)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from app.api.deps import CurrentCaller, get_caller
from app.api.docs import problems
from app.api.errors import ApiError
from app.db.session import driver_connection
from app.domain.errors import NotFound
from app.domain.stream_tokens import InvalidStreamToken, derive_key, verify
from app.services import stream_tokens as svc

router = APIRouter(tags=["events"])

ACCESS_TOKEN = "access_token"
SCHEME = "StreamToken"
EVENTS_ROUTE = "cluster_events"  # the events route's name, for its URL


class StreamTokenOut(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "token": "hgs_AQ…", "expires_at": "2026-11-29T10:05:00Z",
        "events_url": "https://hangar.example.com/clusters/6f1c1f52-4a57-4bb8-9d43-2f0f4f0f3c11"
                      "/events?access_token=hgs_AQ…",
    }]}}

    token: str = Field(description="Read-only: this cluster's event stream, until expires_at")
    expires_at: datetime
    events_url: str = Field(description="The event stream with the token in its query, "
                            "ready for `new EventSource(events_url)`")


def _key(request: Request) -> bytes:
    return derive_key(request.app.state.settings.secret_key.get_secret_value())


@router.post(
    "/clusters/{cluster_id}/stream-tokens",
    status_code=201,
    operation_id="create_stream_token",
    response_model=StreamTokenOut,
    summary="A short-lived token to follow one cluster's events from a browser",
    description=(
        "Browsers cannot send an Authorization header with `EventSource`, and an API token "
        "must never be put in a URL. This token may: it is accepted only as `?access_token=` "
        "on this cluster's `GET /clusters/{id}/events`, only for reading, until `expires_at` "
        "(`HANGAR_STREAM_TOKEN_TTL` seconds, 300 by default), reconnects included. It is "
        "refused (401) anywhere else and for any other cluster. Ask for a new one when a "
        "reconnect is refused."
    ),
    responses=problems(401, 404, 422),
)
async def create_stream_token(cluster_id: uuid.UUID, request: Request,
                              caller: CurrentCaller) -> StreamTokenOut:
    state = request.app.state
    try:
        async with driver_connection(state.engine) as conn:
            token, expires = await svc.grant(conn, _key(request), caller.team_id, cluster_id,
                                             state.settings.stream_token_ttl_s, time.time())
    except svc.ClusterNotFound:
        raise NotFound() from None
    url = request.url_for(EVENTS_ROUTE, cluster_id=str(cluster_id))
    return StreamTokenOut(token=token, expires_at=datetime.fromtimestamp(expires, UTC),
                          events_url=str(url.include_query_params(**{ACCESS_TOKEN: token})))


def _refused(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, title="Unauthorized",
                    headers={"WWW-Authenticate": 'Bearer realm="hangar"'})


async def events_reader(
    request: Request,
    cluster_id: Annotated[uuid.UUID, Path()],
    access_token: Annotated[str | None, Query(
        alias=ACCESS_TOKEN, max_length=200,
        description="A stream token of this cluster (POST /clusters/{id}/stream-tokens), "
        "for EventSource, which cannot send an Authorization header. Never an API token.",
    )] = None,
) -> uuid.UUID:
    """The team reading a cluster's events: a stream token for this very cluster in
    `access_token`, else the API token in the Authorization header."""
    if access_token is None:
        return (await get_caller(request)).team_id
    structlog.contextvars.bind_contextvars(cluster_id=str(cluster_id))
    try:
        grant = verify(_key(request), access_token, time.time())
    except InvalidStreamToken as exc:
        raise _refused(f"access_token is {exc}. Ask POST /clusters/{{id}}/stream-tokens (with "
                       "your API token) for a new stream token; never put an API token in a "
                       "URL.") from None
    if grant.cluster_id != cluster_id:
        raise _refused("access_token is a stream token of another cluster.")
    return grant.team_id


EventsReader = Annotated[uuid.UUID, Depends(events_reader)]


def declare(app: FastAPI) -> None:
    """In the OpenAPI document: the event stream takes the bearer token or a stream token."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if SCHEME not in schemes:
            schemes[SCHEME] = {"type": "apiKey", "in": "query", "name": ACCESS_TOKEN,
                               "description": "A stream token (POST /clusters/{id}/"
                               "stream-tokens), on GET /clusters/{id}/events only"}
            bearer = next((k for k in schemes if k != SCHEME), None)
            for path_item in schema.get("paths", {}).values():
                for op in path_item.values():
                    if _takes_access_token(op):
                        op["security"] = [*([{bearer: []}] if bearer else []), {SCHEME: []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _takes_access_token(op: dict[str, Any]) -> bool:
    return any(p.get("name") == ACCESS_TOKEN and p.get("in") == "query"
               for p in op.get("parameters", []))
