"""Per-request plumbing, as one plain ASGI middleware (streaming responses pass through):
a request id (honoured from `X-Request-ID` or generated, bound to the logs, returned in
the response), the request body size limit (413 problem+json), an access log line and
the HTTP metrics labelled by route template."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.stdlib import ProcessorFormatter

from app import metrics
from app.api.errors import problem

ACCESS_LOGGER = "hangar.api.access"


class _AccessLog:
    """`structlog.get_logger(ACCESS_LOGGER).<level>(event, **kw)`, with the same output
    and filtering, a third of the CPU: the access line is written on every request, and
    the round trip through the stdlib logging machinery (LogRecord, caller lookup,
    handler dispatch, formatter) cost more than some whole requests.

    It runs the configured structlog processors, then the root handler's
    ProcessorFormatter processors, and writes to the handler's stream under its lock: what
    that round trip does under `app/logging_setup.py`'s configuration. Whenever logging is
    configured otherwise (several handlers, filters, another formatter...), it is the
    plain call."""

    _LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}

    def __init__(self, name: str) -> None:
        self.std = logging.getLogger(name)
        self.slow = structlog.get_logger(name)

    def __call__(self, level: str, event: str, **kw: Any) -> None:
        levelno = self._LEVELS[level]
        std = self.std
        if not std.isEnabledFor(levelno):
            return
        handler = self._only_handler()
        processors = structlog.get_config()["processors"]
        if handler is None or not processors or processors[-1] is not _WRAP:
            getattr(self.slow, level)(event, **kw)
            return
        if levelno < handler.level:
            return
        formatter = handler.formatter
        assert isinstance(formatter, ProcessorFormatter)
        ed: Any = {**kw, "event": event}
        for proc in processors[:-1]:
            ed = proc(std, level, ed)
        ed["_record"], ed["_from_structlog"] = None, True  # removed by the first processor
        logger = formatter.logger if formatter.logger is not None else std
        for proc in formatter.processors:
            ed = proc(logger, level, ed)
        handler.acquire()
        try:
            handler.stream.write(ed + handler.terminator)
            handler.flush()
        except Exception:  # as logging does: a failed log write must not fail the request
            pass
        finally:
            handler.release()

    def _only_handler(self) -> logging.StreamHandler | None:
        """The one handler the record would reach, if it is a plain StreamHandler with
        a ProcessorFormatter whose processors start by removing structlog's meta keys."""
        logger: logging.Logger | None = self.std
        handlers: list[logging.Handler] = []
        while logger is not None:
            if logger.filters:
                return None
            handlers += logger.handlers
            if not logger.propagate:
                break
            logger = logger.parent
        if len(handlers) != 1:
            return None
        handler = handlers[0]
        formatter = handler.formatter
        if (type(handler) is not logging.StreamHandler or handler.filters
                or not isinstance(formatter, ProcessorFormatter) or not formatter.processors
                or formatter.processors[0] is not ProcessorFormatter.remove_processors_meta):
            return None
        return handler


_WRAP = ProcessorFormatter.wrap_for_formatter
access_log = _AccessLog(ACCESS_LOGGER)

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
# An incoming id is kept only if it is short and plain: it ends up in every log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_BODY_BYTES = 1024 * 1024
# Routes whose access lines are logged at debug: probes and scrapes run every few seconds.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class _RequestIds:
    """32 hex digits like a uuid4's: a random prefix per process (new after a fork) and a
    counter. As unique as needed, without a random read per request."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


new_request_id = _RequestIds()


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
        # One pass over the raw headers for what this middleware needs.
        incoming = length = None
        has_body = False
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                if incoming is None:  # the first one, as Headers.get would
                    incoming = value.decode("latin-1")
            elif key == b"content-length":
                length, has_body = value.decode("latin-1"), True
            elif key == b"transfer-encoding":
                has_body = True
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        status = 500  # if the app raises before answering, the error handler sent a 500
        started = time.perf_counter()

        id_header = (_REQUEST_ID_KEY, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The raw header list, replacing an X-Request-ID the app may have set.
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() != _REQUEST_ID_KEY),
                    id_header,
                ]
            await send(message)

        try:
            # HTTP/1.1: a request with neither Content-Length nor Transfer-Encoding has no
            # body, so there is nothing to limit (most GETs).
            body_receive = (await self._read_body(receive, length) if has_body else receive)
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
            # Health checks and revalidations (304: nothing changed) are polling noise.
            quiet = status == 304 or (template in _QUIET_ROUTES and status < 400)
            level = "debug" if quiet else "info"
            access_log(level, "request", method=scope["method"], route=template,
                       status=status, duration_ms=round(elapsed * 1000, 1))

    async def _read_body(self, receive: Receive, length: str | None) -> Receive | None:
        """Read the whole body (at most the limit) and return a `receive` that replays it;
        None when the body is too large. Later calls go to the server (disconnects)."""
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
