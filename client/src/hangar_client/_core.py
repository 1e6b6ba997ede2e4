"""The client's logic, written once for both transports.

Each operation is a *plan*: a generator that yields commands (send this request, open
this stream, read a chunk, sleep, hand this item to the caller) and receives their
results. `HangarClient` carries the commands out with blocking calls and
`AsyncHangarClient` with awaits; neither knows anything about retries, pagination,
problem documents, the event stream or waiting. Transport failures are thrown back into
the plan, which decides whether to retry.
"""

from __future__ import annotations

import json
import random
import ssl
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from hangar_client._sse import Comment, SSEDecoder
from hangar_client.errors import (
    ApiError,
    ClusterFailed,
    FieldError,
    UnexpectedResponse,
    Unreachable,
    WaitTimeout,
    error_class,
)
from hangar_client.models import (
    Cluster,
    ClusterStatus,
    ClusterStatusChanged,
    Event,
    GpuType,
)

VERSION = "0.1.0"
DEFAULT_TIMEOUT = 30.0
# The server sends a heartbeat every 15 s on an idle stream (HANGAR_SSE_HEARTBEAT): three
# missed ones mean the connection is dead, and the stream is resumed on a new one.
STREAM_READ_TIMEOUT = 45.0
POLL_INTERVAL = 1.0  # GET polling, only where the event stream is unavailable
POLL_INTERVAL_MAX = 5.0
SETTLE_INTERVAL = 0.2  # a status seen in an event and not yet in GET (a read cache's lag)

DECISIVE = (ClusterStatus.READY, ClusterStatus.FAILED, ClusterStatus.TERMINATING,
            ClusterStatus.TERMINATED)


# --- commands ------------------------------------------------------------------------------


class Stream:
    """An open streaming response; `chunks` is the transport's iterator over its body."""

    def __init__(self, response: httpx.Response, chunks: Any) -> None:
        self.response, self.chunks = response, chunks


@dataclass(frozen=True)
class Send:
    """Send the request, read the whole response; returns the httpx.Response."""

    request: httpx.Request


@dataclass(frozen=True)
class Open:
    """Send the request, return a `Stream` with the body unread."""

    request: httpx.Request


@dataclass(frozen=True)
class Read:
    """The stream's next chunk of body, b"" at its end."""

    stream: Stream


@dataclass(frozen=True)
class Close:
    stream: Stream


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit:
    """An item for the caller of an iterating operation."""

    item: Any


Plan = Generator[Any, Any, Any]
OnEvent = Callable[[Event], None] | None


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


# --- errors and retries --------------------------------------------------------------------


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def api_error(response: httpx.Response, content: bytes | None = None) -> ApiError:
    """The error response as a typed exception, problem+json or not (a proxy's HTML 502)."""
    status = response.status_code
    raw = response.content if content is None else content
    body: Any = None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        pass
    reason = response.reason_phrase or f"HTTP {status}"
    if not isinstance(body, dict):
        text = raw.decode("utf-8", "replace").strip()[:200] if raw else ""
        body, detail = {}, text or reason
    else:
        detail = str(body.get("detail") or body.get("title") or reason)
    errors = [FieldError(str(e.get("field", "")), str(e.get("message", "")))
              for e in body.get("errors") or [] if isinstance(e, dict)]
    candidates = body.get("candidates")
    return error_class(status)(
        status,
        str(body.get("code") or f"http_{status}"),
        str(body.get("title") or reason),
        detail,
        limit=body.get("limit") if isinstance(body.get("limit"), str) else None,
        candidates=[str(c) for c in candidates] if isinstance(candidates, list) else None,
        errors=errors,
        request_id=body.get("request_id") or response.headers.get("x-request-id"),
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        problem=body,
    )


def worth_retrying(error: ApiError) -> bool:
    """Transient answers: an unavailable dependency or gateway, a rate limit, a request with
    the same Idempotency-Key still in flight. A team limit (a 429 naming its `limit`) is a
    quota, not a rate: waiting seconds does not lift it."""
    if error.status in (502, 503, 504):
        return True
    if error.status == 429:
        return error.limit is None
    return error.status == 409 and error.retry_after is not None


# --- the plans -----------------------------------------------------------------------------


class Core:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        stream_read_timeout: float = STREAM_READ_TIMEOUT,
        stream_retries: int = 8,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, not {url!r}")
        if not token:
            raise ValueError("a token is required (create one with `hangar keys create`)")
        self.base = url.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": f"hangar-client/{VERSION}",
        }
        self.timeout, self.retries = timeout, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.stream_read_timeout, self.stream_retries = stream_read_timeout, stream_retries

    # building blocks

    def request(self, method: str, path: str, *, params: Any = None, body: Any = None,
                headers: dict[str, str] | None = None,
                read_timeout: float | None = None) -> httpx.Request:
        request = httpx.Request(method, self.base + path, params=params, json=body,
                                headers={**self.headers, **(headers or {})})
        timeout = httpx.Timeout(self.timeout, read=read_timeout or self.timeout)
        request.extensions["timeout"] = timeout.as_dict()
        return request

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter (half fixed, half random), at least Retry-After,
        never more than `max_backoff`."""
        step = min(self.max_backoff, self.backoff * 2**attempt)
        wait = step / 2 + random.random() * step / 2
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff)

    def call(self, request: httpx.Request) -> Plan:
        """Send with retries; the successful response, or a typed exception. Every request
        this client sends is safe to repeat (reads, DELETE, and the create, which carries an
        Idempotency-Key)."""
        attempt = 0
        while True:
            try:
                response = yield Send(request)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise Unreachable(f"{request.method} {request.url.copy_with(query=None)}: "
                                      f"{type(exc).__name__}: {exc}") from exc
                yield Sleep(self.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            error = api_error(response)
            if attempt >= self.retries or not worth_retrying(error):
                raise error
            yield Sleep(self.delay(attempt, error.retry_after))
            attempt += 1

    def json(self, request: httpx.Request, shape: type = dict) -> Plan:
        response = yield from self.call(request)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, shape):
            raise UnexpectedResponse(
                f"{request.method} {request.url.path} answered {response.status_code} with "
                f"{response.headers.get('content-type') or 'no content type'}, not a JSON "
                f"{'object' if shape is dict else 'list'}: is HANGAR_URL the API's address?")
        return body

    @staticmethod
    def path(cluster_id: str) -> str:
        return "/clusters/" + quote(str(cluster_id), safe="")

    # operations

    def create_cluster(self, name: str, gpu_type: str, idempotency_key: str | None,
                       fields: dict[str, Any]) -> Plan:
        body = {"name": name, "gpu_type": gpu_type,
                **{k: v for k, v in fields.items() if v is not None}}
        key = idempotency_key or str(uuid.uuid4())  # one per call, the same on its retries
        request = self.request("POST", "/clusters", body=body, headers={"Idempotency-Key": key})
        return Cluster.from_json((yield from self.json(request)))

    def get_cluster(self, cluster_id: str) -> Plan:
        return Cluster.from_json((yield from self.json(self.request("GET",
                                                                    self.path(cluster_id)))))

    def list_clusters(self, status: Any, name: str | None, page_size: int | None) -> Plan:
        params: dict[str, Any] = {}
        if status is not None:
            params["status"] = [str(status)] if isinstance(status, str) else [
                str(s) for s in status]
        if name is not None:
            params["name"] = name
        if page_size is not None:
            params["limit"] = page_size
        while True:
            page = yield from self.json(self.request("GET", "/clusters", params=params))
            for item in page.get("items") or []:
                yield Emit(Cluster.from_json(item))
            nxt = page.get("next")
            if not nxt:
                return None
            # The next page's query on our own base URL: a proxy in front of the API may
            # have a path or scheme the API does not see.
            params = httpx.URL(nxt).params

    def gpu_types(self, name: str | None, cloud_type: str | None) -> Plan:
        params = {k: v for k, v in (("name", name), ("cloud_type", cloud_type)) if v}
        items = yield from self.json(self.request("GET", "/gpu-types", params=params), list)
        return [GpuType.from_json(g) for g in items if isinstance(g, dict)]

    def delete_cluster(self, cluster_id: str, wait: bool, timeout: float,
                       on_event: OnEvent) -> Plan:
        deadline = time.monotonic() + timeout
        cluster = Cluster.from_json(
            (yield from self.json(self.request("DELETE", self.path(cluster_id)))))
        if not wait:
            return cluster
        # The caller hears from the teardown on, not the cluster's whole history again.
        teardown = False

        def forward(event: Event) -> None:
            nonlocal teardown
            teardown = teardown or (isinstance(event, ClusterStatusChanged)
                                    and event.status in DECISIVE[1:])
            if teardown and on_event is not None:
                on_event(event)

        last = 0
        while not cluster.finished:
            if time.monotonic() >= deadline:
                raise WaitTimeout(cluster, timeout, "terminated")
            ended = False
            try:
                followed = yield from self.follow(cluster_id, last, emit=False, on_event=forward,
                                                  deadline=deadline)
                last, ended = followed.last_id, followed.outcome == "ended"
            except StreamUnavailable:
                yield Sleep(POLL_INTERVAL)
            cluster = yield from self.get_cluster(cluster_id)
            if ended and not cluster.finished:
                yield Sleep(SETTLE_INTERVAL)  # the stream ended: GET catches up within moments
        return cluster

    def wait_until_ready(self, cluster_id: str, timeout: float, on_event: OnEvent) -> Plan:
        deadline = time.monotonic() + timeout
        cluster = yield from self.get_cluster(cluster_id)
        last, poll, moved, streaming = 0, POLL_INTERVAL, False, True
        while True:
            if cluster.status == ClusterStatus.READY:
                return cluster
            if cluster.status in DECISIVE:
                raise ClusterFailed(cluster)
            if time.monotonic() >= deadline:
                raise WaitTimeout(cluster, timeout, "ready")
            if moved:
                # An event said the cluster moved; GET catches up within moments.
                yield Sleep(SETTLE_INTERVAL)
            elif streaming:
                try:
                    followed = yield from self.follow(
                        cluster_id, last, emit=False, on_event=on_event, deadline=deadline,
                        stop=lambda e: isinstance(e, ClusterStatusChanged)
                        and e.status in DECISIVE)
                    last, moved = followed.last_id, followed.outcome != "timeout"
                except StreamUnavailable:
                    streaming = False
            if not streaming:
                yield Sleep(min(poll, max(deadline - time.monotonic(), 0)))
                poll = min(poll * 1.5, POLL_INTERVAL_MAX)
            cluster = yield from self.get_cluster(cluster_id)

    def events(self, cluster_id: str, after: int | None) -> Plan:
        yield from self.follow(cluster_id, after or 0, emit=True)

    def follow(
        self,
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
        path = self.path(cluster_id) + "/events"
        while True:
            read_timeout = self.stream_read_timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return Followed("timeout", last)
                read_timeout = max(min(read_timeout, left), 0.05)
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last:
                headers["Last-Event-ID"] = str(last)
            request = self.request("GET", path, headers=headers, read_timeout=read_timeout)
            try:
                stream = yield Open(request)
            except httpx.TransportError as exc:
                failures += 1
                yield from self._backoff(failures, exc, None)
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
                    yield from self._backoff(failures, error, error.retry_after)
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
                    yield from self._backoff(failures, exc, None)
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

    def _backoff(self, failures: int, cause: Exception, retry_after: float | None) -> Plan:
        if failures > self.stream_retries:
            if isinstance(cause, ApiError):
                raise cause
            raise Unreachable(f"event stream: {type(cause).__name__}: {cause}") from cause
        yield Sleep(self.delay(failures - 1, retry_after))


def tls_verify(url: str, verify: Any) -> Any:
    """What to give httpx as `verify`. On a plain-HTTP URL no certificate is ever checked,
    and loading the CA bundle costs ~70 ms of a command's start-up: a verifying context that
    trusts nothing stands in (an https request through it would fail, not pass)."""
    if verify is True and url.startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return verify
