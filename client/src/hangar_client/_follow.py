"""Following a cluster's event stream: resume on a new connection with Last-Event-ID whenever
one drops (no gap, no duplicate), stop when a test matches, the stream ends or a deadline
passes, and say which (`Followed`). `StreamUnavailable` tells the waiting plans to fall
back to polling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from hangar_client._calls import Calls
from hangar_client._commands import Close, Emit, OnEvent, Open, Plan, Read, Sleep
from hangar_client._problems import api_error, worth_retrying
from hangar_client._sse import Comment, SSEDecoder
from hangar_client.errors import ApiError, Unreachable
from hangar_client.models import ClusterStatusChanged, Event


class StreamUnavailable(Exception):
    """The event stream cannot be followed here (an old server, or a proxy in between that
    does not pass it through): waiting falls back to polling."""


@dataclass(frozen=True)
class Followed:
    """How following a stream ended: "stopped" (the `stop` test matched `event`), "ended"
    (the server ended the stream: the cluster is finished) or "timeout"."""

    outcome: str
    last_id: int
    event: Event | None = None


def follow(
    calls: Calls,
    cluster_id: str,
    after: int,
    *,
    emit: bool,
    on_event: OnEvent = None,
    stop: Callable[[Event], bool] | None = None,
    deadline: float | None = None,
) -> Plan:
    """Follow the cluster's event stream from after `after`, resuming on a new connection
    with Last-Event-ID whenever one drops (no gap: the server replays from there; no
    duplicate: ids at or below the last one are skipped)."""
    last, failures = after, 0
    path = calls.path(cluster_id) + "/events"
    while True:
        read_timeout = calls.stream_read_timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return Followed("timeout", last)
            read_timeout = max(min(read_timeout, left), 0.05)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last:
            headers["Last-Event-ID"] = str(last)
        request = calls.request("GET", path, headers=headers, read_timeout=read_timeout)
        try:
            stream = yield Open(request)
        except httpx.TransportError as exc:
            failures += 1
            yield from _backoff(calls, failures, exc, None)
            continue
        response = stream.response
        if response.status_code == 204:  # a finished stream with nothing left to send
            yield Close(stream)
            return Followed("ended", last)
        if not response.is_success:
            body = b""
            try:
                while chunk := (yield Read(stream)):
                    body += chunk
            except httpx.TransportError:
                pass  # the status says enough
            yield Close(stream)
            error = api_error(response, body)
            if worth_retrying(error):
                failures += 1
                yield from _backoff(calls, failures, error, error.retry_after)
                continue
            if error.status in (405, 406, 501):
                raise StreamUnavailable(str(error)) from error
            raise error
        if "text/event-stream" not in response.headers.get("content-type", ""):
            yield Close(stream)
            raise StreamUnavailable(f"the events route answered "
                                    f"{response.headers.get('content-type')!r}")
        decoder, delivered, terminal = SSEDecoder(), 0, False
        while True:
            try:
                chunk = yield Read(stream)
            except httpx.TransportError as exc:  # dropped, or silent past the heartbeats
                yield Close(stream)
                if deadline is not None and time.monotonic() >= deadline:
                    return Followed("timeout", last)
                failures += 1
                yield from _backoff(calls, failures, exc, None)
                break
            if not chunk:
                yield Close(stream)
                # The server ends the stream once the cluster is finished. A stream that
                # ends after events but before the cluster's terminal one was cut by
                # something in between: ask again (a finished one answers at once).
                if terminal or delivered == 0:
                    return Followed("ended", last)
                break
            for item in decoder.feed(chunk):
                failures = 0
                if isinstance(item, Comment):
                    continue
                try:
                    event_id = int(item.id or "")
                except ValueError:
                    continue
                if event_id <= last:
                    continue
                try:
                    data = json.loads(item.data)
                except ValueError:
                    data = {}
                event = Event.parse(event_id, item.event, data)
                last, delivered = event_id, delivered + 1
                terminal = terminal or (isinstance(event, ClusterStatusChanged)
                                        and event.status.terminal)
                if on_event is not None:
                    on_event(event)
                if emit:
                    yield Emit(event)
                if stop is not None and stop(event):
                    yield Close(stream)
                    return Followed("stopped", last, event)
            if deadline is not None and time.monotonic() >= deadline:
                yield Close(stream)
                return Followed("timeout", last)


def _backoff(calls: Calls, failures: int, cause: Exception, retry_after: float | None) -> Plan:
    if failures > calls.stream_retries:
        if isinstance(cause, ApiError):
            raise cause
        raise Unreachable(f"event stream: {type(cause).__name__}: {cause}") from cause
    yield Sleep(calls.delay(failures - 1, retry_after))
