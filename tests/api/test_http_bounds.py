"""What one connection may hold (app/api/server.py): request headers must arrive in time and
within a size, and idle keep-alive connections are closed. Raw sockets, as a slow or
hostile client would use them, against the API served as `hangar api` serves it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from app.api.app import create_app
from app.api.server import BoundedHttpToolsProtocol, uvicorn_bounds
from tests.support.stack import serve_app


class QuickHeaders(BoundedHttpToolsProtocol):
    header_timeout_s = 1.5  # longer than the keep-alive (1 s), as by default (10 s, 5 s)


@pytest.fixture
async def bounded(app_settings):
    settings = app_settings.model_copy(update={"http_max_header_bytes": 4096,
                                               "http_keepalive_s": 1})
    options = {**uvicorn_bounds(settings), "http": QuickHeaders}
    served = await serve_app(create_app(settings), **options)
    yield urlsplit(served.url)
    await served.stop()


async def _connect(url):
    return await asyncio.open_connection(url.hostname, url.port)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded wait)."""
    return await asyncio.wait_for(reader.read(), 10)


async def test_a_connection_that_sends_nothing_is_closed(bounded) -> None:
    reader, writer = await _connect(bounded)
    answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_headers_sent_a_byte_at_a_time_are_cut_off(bounded) -> None:
    reader, writer = await _connect(bounded)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

    async def trickle() -> None:
        for _ in range(50):
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)

    dribbler = asyncio.create_task(trickle())
    try:
        answer = await _until_closed(reader)
    finally:
        dribbler.cancel()
        await asyncio.gather(dribbler, return_exceptions=True)
    assert answer.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_headers_too_large_are_431(bounded) -> None:
    reader, writer = await _connect(bounded)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 431")
    writer.close()


async def test_requests_in_bounds_are_served_and_idle_keep_alive_is_closed(bounded) -> None:
    reader, writer = await _connect(bounded)
    for _ in range(2):  # two requests on one connection
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
    assert await _until_closed(reader) == b"", "closed once idle (1 s here), nothing sent"
    writer.close()
