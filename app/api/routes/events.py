"""A cluster's events: a JSON page, or a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse, format_sse_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from app.api.deps import Session
from app.api.errors import ApiError
from app.api.hub import BATCH, EventHub, Frame, encode
from app.api.negotiation import quality
from app.api.routes.stream_tokens import EventsReader
from app.domain.errors import Gone
from app.schemas.events import EventOut, EventPage
from app.services import events as svc
from app.services.clusters import get_cluster

router = APIRouter(tags=["events"])

RECONNECT_MS = 2000  # what EventSource clients wait before reconnecting
CONNECTED = format_sse_event(comment="connected", retry=RECONNECT_MS)
HEARTBEAT = format_sse_event(comment="heartbeat")
CHUNK_FRAMES = 64  # most events sent in one write
MAX_EVENT_ID = 2**63 - 1  # event ids are BIGINT
SSE_TYPE, JSON_TYPE = "text/event-stream", "application/json"
VARY = {"Vary": "Accept"}  # one URL, two representations


def _after(last_event_id: str | None, after: int | None) -> int:
    value = last_event_id if last_event_id not in (None, "") else after
    try:
        n = int(value or 0)
    except ValueError as exc:
        raise ApiError(422, "invalid_last_event_id",
                       "Last-Event-ID must be an event id this stream sent (an integer)") from exc
    if not 0 <= n <= MAX_EVENT_ID:
        raise ApiError(422, "invalid_last_event_id",
                       f"Last-Event-ID must be an event id between 0 and {MAX_EVENT_ID}")
    return n


def wants_stream(accept: str | None) -> bool:
    """The stream when `Accept` prefers it to JSON, or names it explicitly as much (as
    EventSource does); JSON otherwise, and by default. A 406 when neither is acceptable."""
    sse, json_ = quality(accept, SSE_TYPE), quality(accept, JSON_TYPE)
    if sse.q > 0 and (sse.q > json_.q or (sse.q == json_.q and sse.explicit)):
        return True
    if json_.q > 0:
        return False
    raise ApiError(406, "not_acceptable",
                   f"This route answers {JSON_TYPE} or {SSE_TYPE}; the Accept header refuses "
                   "both.", title="Not acceptable")


@router.get(
    "/clusters/{cluster_id}/events",
    summary="The cluster's events: SSE with Accept: text/event-stream, else a JSON page",
    description=(
        "With `Accept: text/event-stream`: every event after `Last-Event-ID` (or `after`), "
        "then the new ones as they commit, as `id:` / `event:` / `data:` (JSON) frames, with "
        "a comment line as heartbeat when idle; the stream ends once the cluster is "
        "terminal and every node terminated, and a reconnect to a finished stream with "
        "nothing left to send is a 204 (EventSource stops on it). Otherwise a JSON page of "
        "the events after `after`. `Accept` q-values are honoured (`q=0`: not acceptable); "
        "responses vary on it.\n\n"
        "Browsers: `EventSource` cannot send an Authorization header; pass a stream token "
        "(`POST /clusters/{id}/stream-tokens`) as `access_token` instead."
    ),
    response_model=EventPage,
    responses={
        200: {"content": {"text/event-stream": {}}},
        204: {"description": "The stream is finished and the client has all of it "
              "(Last-Event-ID): nothing left to send"},
        401: {"description": "Missing or unknown API token, or a stream token that is "
              "expired or another cluster's"},
        404: {"description": "No such cluster for your team"},
        406: {"description": "The Accept header refuses both JSON and text/event-stream"},
        410: {"description": "The cluster ended long ago and its events were deleted "
              "(HANGAR_EVENT_RETENTION_DAYS)"},
    },
)
async def cluster_events(
    cluster_id: uuid.UUID,
    request: Request,
    session: Session,
    team_id: EventsReader,  # the API token, or a stream token of this cluster
    after: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="Return events after this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    cluster = await get_cluster(session, team_id, cluster_id)  # 404 for other teams
    if cluster.events_purged_at is not None:
        raise Gone(
            "events_purged",
            f"This cluster ended on {cluster.terminated_at:%Y-%m-%d} and its events were "
            f"deleted after the retention period; the cluster and its cost remain at "
            f"/clusters/{cluster_id}.")
    start = _after(last_event_id, after)
    if not wants_stream(accept):
        # The state first, so `finished` never claims a page that misses the final events.
        state = await svc.stream_state(session, cluster_id)
        rows = await svc.events_after(session, cluster_id, start, limit)
        last_id = rows[-1].seq if rows else start
        page = EventPage(
            items=[EventOut(id=r.seq, type=r.type, data=r.data) for r in rows],
            last_id=last_id,
            finished=state.complete_at(last_id),
        )
        return JSONResponse(page.model_dump(mode="json"), headers=VARY)
    if (await svc.stream_state(session, cluster_id)).complete_at(start):
        # A reconnect after the last event: nothing will follow. A 200 that ends at once
        # would make EventSource reconnect for ever; a 204 makes it stop.
        return Response(status_code=204, headers={**VARY, "Cache-Control": "no-cache"})
    await session.close()  # the stream opens short sessions of its own
    app = request.app
    return EventStream(
        _stream(app.state.hub, app.state.sessionmaker, cluster_id, start,
                app.state.settings.sse_heartbeat_s)
    )


class EventStream(EventSourceResponse):
    """An SSE response whose generator is closed the moment the response ends, client
    disconnects included, so the client's place in the hub is released at once (not when
    the generator is garbage-collected, e.g. after a client that stopped reading)."""

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", **VARY,
                                           "X-Accel-Buffering": "no"})  # nginx: don't buffer
        self._content = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._content.aclose()  # type: ignore[attr-defined]


class _Heartbeat:
    """Flags `due` and sets `wake` once `every` seconds passed with nothing sent. One timer
    per period per client, rather than a timeout around every wait (that is a timer
    scheduled and cancelled per event per client: a sixth of the CPU with 1,000 clients)."""

    def __init__(self, every: float, wake: asyncio.Event) -> None:
        self.every, self.wake, self.due = every, wake, False
        self.sent_at = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(every, self._check)

    def sent(self) -> None:
        self.sent_at, self.due = time.monotonic(), False

    def _check(self) -> None:
        idle = time.monotonic() - self.sent_at
        if idle >= self.every:
            self.due, idle = True, 0.0
            self.wake.set()
        self._timer = self._loop.call_later(self.every - idle, self._check)

    def cancel(self) -> None:
        self._timer.cancel()


async def _stream(
    hub: EventHub,
    sessionmaker: async_sessionmaker[AsyncSession],
    cluster_id: uuid.UUID,
    last: int,
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    """Pull-based: nothing is read or encoded ahead of what the client takes, so a client
    that stops reading just stops this generator (the socket's buffers fill up)."""
    with hub.follow(cluster_id, sessionmaker, last) as follower:
        feed, wake = follower.feed, follower.wake
        heartbeat = _Heartbeat(max(heartbeat_s, 0.1), wake)
        try:
            yield CONNECTED
            heartbeat.sent()
            while True:
                wake.clear()  # before looking: a change after the look ends the wait below
                frames: list[Frame] = []
                if feed.ready:
                    kept = feed.after(follower.last)
                    if kept is None:  # behind what the feed keeps: replay from the database
                        async with sessionmaker() as session:
                            rows = await svc.events_after(session, cluster_id,
                                                          follower.last, BATCH)
                        kept = [encode(r) for r in rows]
                    frames = kept
                if frames:
                    # One write for all that is ready: a client (or a process) that fell
                    # behind catches up in a few large writes rather than one per event.
                    for i in range(0, len(frames), CHUNK_FRAMES):
                        chunk = frames[i : i + CHUNK_FRAMES]
                        yield b"".join(f.data for f in chunk)
                        follower.last = chunk[-1].seq
                    heartbeat.sent()
                    continue
                if feed.complete_at(follower.last):
                    return
                if heartbeat.due:
                    yield HEARTBEAT
                    heartbeat.sent()
                    continue
                await wake.wait()
        finally:
            heartbeat.cancel()
