"""Per-request plumbing, as one plain ASGI middleware (streaming responses pass through):
a request id (honoured from `X-Request-ID` or generated, bound to the logs, returned in
the response), the request body size limit (413 problem+json), an access log line and
the HTTP metrics labelled by route template."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import metrics
from app.api.errors import problem

log = structlog.get_logger("hangar.api.access")

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is short and plain: it ends up in every log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_BODY_BYTES = 1024 * 1024
# Routes whose access lines are logged at debug: probes and scrapes run every few seconds.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def request_id_of(scope: Scope) -> str | None:
    return scope.get("state", {}).get("request_id")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        status = 500  # if the app raises before answering, the error handler sent a 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            body_receive = await self._read_body(scope, receive, headers)
            if body_receive is None:
                response = problem(
                    413, "body_too_large", "Request body too large",
                    f"The request body is larger than {self.max_body_bytes} bytes.",
                    instance=scope.get("path"),
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, body_receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or metrics.UNMATCHED_ROUTE
            elapsed = time.perf_counter() - started
            metrics.observe_request(scope["method"], template, status, elapsed)
            level = "debug" if template in _QUIET_ROUTES and status < 400 else "info"
            getattr(log, level)(
                "request", method=scope["method"], route=template, status=status,
                duration_ms=round(elapsed * 1000, 1),
            )

    async def _read_body(self, scope: Scope, receive: Receive, headers: Headers) -> Receive | None:
        """Read the whole body (at most the limit) and return a `receive` that replays it;
        None when the body is too large. Later calls go to the server (disconnects)."""
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away: pass it on
                first: Message = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        return replay
