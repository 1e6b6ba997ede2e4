"""The HTTP server's own bounds, for `hangar api` (uvicorn with httptools).

uvicorn closes a keep-alive connection idle for `timeout_keep_alive` after a response, but
it has no bound on how long a client may take to send a request's headers (a connection
that sends nothing, or a byte now and then, is held for ever: slowloris), and httptools
accepts headers of any size. `BoundedHttpToolsProtocol` adds both:

- **Time to headers** (`HANGAR_HTTP_HEADER_TIMEOUT`, 10 s): from the connection, or from the
  end of the previous response, to the end of the next request's headers. Past it the
  server answers 408 and closes the connection.
- **Header size** (`HANGAR_HTTP_MAX_HEADER_BYTES`, 16 KiB, passed as uvicorn's
  `h11_max_incomplete_event_size`): the request line and headers together; larger is a 431,
  and the connection is closed.

Idle keep-alive connections close after `HANGAR_HTTP_KEEPALIVE` seconds (uvicorn's
`timeout_keep_alive`). Request bodies are bounded by the app (1 MiB,
`app/api/middleware.py`). Everything else a public endpoint needs (TLS, connection counts
per client, slow bodies, request rates) is the proxy's job (README.md, "Deployment").
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

DEFAULT_MAX_HEADER_BYTES = 16 * 1024


def _answer(status: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a time-to-headers bound and a header size bound."""

    # None: HANGAR_HTTP_HEADER_TIMEOUT (a subclass may set it, e.g. in tests).
    header_timeout_s: float | None = None

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout = (self.header_timeout_s if self.header_timeout_s is not None
                                else _settings().http_header_timeout_s)
        self._max_header_bytes = (config.h11_max_incomplete_event_size
                                  or DEFAULT_MAX_HEADER_BYTES)
        self._header_bytes = 0
        self._too_large = False
        # When the connection started waiting for a request's headers (None: it is not).
        # One timer per connection checks it, not one per request: a keep-alive connection
        # serving thousands of requests costs two assignments each, not a timer each.
        self._waiting_since: float | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    # --- time to headers ------------------------------------------------------------

    def _wait_for_headers(self) -> None:
        self._waiting_since = self.loop.time()
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_timeout, self._check)

    def _check(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._waiting_since is None:  # a request is being read or answered
            self._header_timer = self.loop.call_later(self._header_timeout, self._check)
            return
        late = self.loop.time() - self._waiting_since - self._header_timeout
        if late >= 0:
            self.transport.write(_answer(b"408 Request Timeout"))
            self.transport.close()
            return
        self._header_timer = self.loop.call_later(-late, self._check)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait_for_headers()  # the next request's headers are due in time too

    def on_headers_complete(self) -> None:
        self._waiting_since = None
        super().on_headers_complete()

    # --- header size ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        if self._waiting_since is None:
            self._wait_for_headers()  # a pipelined request
        super().on_message_begin()

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self._max_header_bytes:
            self._too_large = True
            # Raised inside a parser callback: httptools stops parsing and uvicorn answers
            # (send_400_response, below) and closes the connection.
            raise ValueError("request headers too large")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        self._waiting_since = None
        self.transport.write(_answer(b"431 Request Header Fields Too Large"))
        self.transport.close()


_cached: Settings | None = None


def _settings() -> Settings:
    global _cached
    if _cached is None:
        from app.settings import get_settings

        _cached = get_settings()
    return _cached


def uvicorn_bounds(settings: Settings) -> dict[str, Any]:
    """uvicorn options bounding what one connection may hold (see the module doc)."""
    return {
        "http": "app.api.server:BoundedHttpToolsProtocol",
        "timeout_keep_alive": settings.http_keepalive_s,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
    }
