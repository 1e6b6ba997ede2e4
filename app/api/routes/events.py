"""A cluster's events: a JSON page, or a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event

from app.api.deps import CurrentCaller, Session
from app.api.errors import ApiError
from app.api.schemas import EventOut, EventPage
from app.services import events as svc
from app.services.clusters import get_cluster

router = APIRouter(tags=["events"])

FALLBACK_POLL_S = 2.0  # a missed notification delays an event by at most this
BATCH = 500


def _after(last_event_id: str | None, after: int | None) -> int:
    value = last_event_id if last_event_id not in (None, "") else after
    try:
        n = int(value or 0)
    except ValueError as exc:
        raise ApiError(422, "invalid_last_event_id",
                       "Last-Event-ID must be an event id this stream sent (an integer)") from exc
    if n < 0:
        raise ApiError(422, "invalid_last_event_id", "Last-Event-ID must not be negative")
    return n


@router.get(
    "/clusters/{cluster_id}/events",
    summary="The cluster's events: SSE with Accept: text/event-stream, else a JSON page",
    response_model=EventPage,
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: {"description": "Missing or unknown API token"},
        404: {"description": "No such cluster for your team"},
    },
)
async def cluster_events(
    cluster_id: uuid.UUID,
    request: Request,
    session: Session,
    caller: CurrentCaller,
    after: Annotated[int | None, Query(ge=0, description="Return events after this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    await get_cluster(session, caller.team_id, cluster_id)  # 404 for other teams
    start = _after(last_event_id, after)
    if "text/event-stream" not in (accept or ""):
        rows = await svc.events_after(session, cluster_id, start, limit)
        finished = len(rows) < limit and await svc.is_finished(session, cluster_id)
        page = EventPage(
            items=[EventOut(id=r.seq, type=r.type, data=r.data) for r in rows],
            last_id=rows[-1].seq if rows else start,
            finished=finished,
        )
        return JSONResponse(page.model_dump(mode="json"))
    await session.close()  # the stream opens short sessions of its own
    return EventSourceResponse(_stream(request, cluster_id, start))


async def _stream(request: Request, cluster_id: uuid.UUID, last: int) -> AsyncIterator[bytes]:
    hub = request.app.state.hub
    heartbeat_s = request.app.state.settings.sse_heartbeat_s
    sessionmaker = request.app.state.sessionmaker
    idle = 0.0
    with hub.subscribe(str(cluster_id)) as wake:
        yield format_sse_event(comment="connected", retry=2000)
        while True:
            wake.clear()
            async with sessionmaker() as session:
                rows = await svc.events_after(session, cluster_id, last, BATCH)
                finished = len(rows) < BATCH and await svc.is_finished(session, cluster_id)
            for r in rows:
                yield format_sse_event(
                    id=str(r.seq), event=r.type, data_str=json.dumps(r.data, separators=(",", ":"))
                )
                last = r.seq
            if rows:
                idle = 0.0
            if finished:
                return
            if len(rows) == BATCH:
                continue
            try:
                await asyncio.wait_for(wake.wait(), min(FALLBACK_POLL_S, heartbeat_s))
            except TimeoutError:
                idle += min(FALLBACK_POLL_S, heartbeat_s)
                if idle >= heartbeat_s:
                    idle = 0.0
                    yield format_sse_event(comment="heartbeat")
