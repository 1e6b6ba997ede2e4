"""The outermost ASGI layer: request ids, auth, rate-limit headers, HTTP faults, recording.

It wraps the FastAPI app directly (not via `add_middleware`) so it receives uvicorn's own
`receive` callable. That is what makes the "lost create response" fault possible: the
callable is a bound method of uvicorn's per-request cycle object, whose `transport` we can
abort after the pod has been created, so the client gets no response bytes at all.

Order for a `/v2` request: record -> auth (401/403) -> count rate limit -> latency fault ->
429/5xx fault (or an enforced quota) -> handler -> lost-create fault on a 201 (pod or
cluster create).
`/_sim/...` admin requests only get an `x-request-id`; they are neither authenticated nor
recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from app.simulator.faults import CREATE_ENDPOINTS, Rule
from app.simulator.problems import problem_response
from app.simulator.records import RequestRecord

if TYPE_CHECKING:
    from app.simulator.server import Simulator

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/v2/pods$"), "create_pod"),
    ("GET", re.compile(r"^/v2/pods$"), "list_pods"),
    ("GET", re.compile(r"^/v2/pods/(?P<id>[^/]+)$"), "get_pod"),
    ("DELETE", re.compile(r"^/v2/pods/(?P<id>[^/]+)$"), "delete_pod"),
    ("POST", re.compile(r"^/v2/pods/(?P<id>[^/]+)/action$"), "pod_action"),
    ("GET", re.compile(r"^/v2/catalog/gpus$"), "list_gpus"),
    ("GET", re.compile(r"^/v2/catalog/gpus/(?P<id>[^/]+)$"), "get_gpu"),
    ("GET", re.compile(r"^/v2/catalog/datacenters$"), "list_datacenters"),
    ("GET", re.compile(r"^/v2/account/ssh-keys$"), "get_ssh_keys"),
    ("PUT", re.compile(r"^/v2/account/ssh-keys$"), "put_ssh_keys"),
    ("POST", re.compile(r"^/v2/clusters$"), "create_cluster"),
    ("GET", re.compile(r"^/v2/clusters$"), "list_clusters"),
    ("GET", re.compile(r"^/v2/clusters/(?P<id>[^/]+)$"), "get_cluster"),
    ("DELETE", re.compile(r"^/v2/clusters/(?P<id>[^/]+)$"), "delete_cluster"),
    ("GET", re.compile(r"^/v2/clusters/(?P<id>[^/]+)/pods$"), "list_cluster_pods"),
    ("GET", re.compile(r"^/v2/network-volumes$"), "list_network_volumes"),
    ("GET", re.compile(r"^/v2/network-volumes/(?P<id>[^/]+)$"), "get_network_volume"),
]

_POD_PATHS = ("get_pod", "delete_pod", "pod_action")
_CLUSTER_PATHS = ("get_cluster", "delete_cluster", "list_cluster_pods")


def classify(method: str, path: str) -> tuple[str, str | None]:
    """(endpoint name, path id) for a request; `other` when no route matches."""
    for route_method, pattern, name in _ROUTES:
        m = pattern.match(path)
        if m and method == route_method:
            return name, m.groupdict().get("id")
    return "other", None


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


def _with_headers(message: Message, extra: dict[str, str]) -> Message:
    headers = list(message.get("headers", []))
    present = {k.lower() for k, _ in headers}
    for key, value in extra.items():
        if key.lower().encode() not in present:
            headers.append((key.lower().encode(), value.encode("latin-1")))
    return {**message, "headers": headers}


class SimMiddleware:
    """Pure ASGI wrapper around the simulator's FastAPI app."""

    def __init__(self, app: Callable[..., Awaitable[None]], sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{uuid.uuid4().hex}"
        ids = {"x-request-id": request_id}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _with_headers(message, ids)
            await send(message)

        path = scope["path"]
        if path == "/_sim" or path.startswith("/_sim/"):
            await self.app(scope, receive, send_with_id)
            return

        endpoint, path_id = classify(scope["method"], path)
        record = RequestRecord(
            time=time.time(),
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            endpoint=endpoint,
            request_id=request_id,
            pod_id=path_id if endpoint in _POD_PATHS else None,
            cluster_id=path_id if endpoint in _CLUSTER_PATHS else None,
        )
        self.sim.request_log.add(record)
        started = time.monotonic()
        try:
            await self._handle(scope, receive, send_with_id, record, path_id)
        finally:
            record.duration = round(time.monotonic() - started, 6)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, record: RequestRecord, path_id: str | None
    ) -> None:
        sim = self.sim
        endpoint = record.endpoint

        async def answer(status: int, detail: str, headers: dict[str, str] | None = None) -> None:
            record.status = status
            await problem_response(status, detail, headers=headers)(scope, receive, send)

        token = _bearer(scope)
        if token is None:
            await answer(401, "missing bearer token")
            return
        if token in sim.forbidden_keys:
            rl = sim.rate_limiter.hit()
            await answer(403, "access denied", rl.headers)
            return
        if token != sim.api_key:
            await answer(401, "invalid bearer token")
            return

        rl = sim.rate_limiter.hit()
        body = await _read_body(receive)
        name = self._subject_name(endpoint, path_id, body)
        if endpoint == "create_cluster" or endpoint in _CLUSTER_PATHS:
            record.cluster_name = name
        else:
            record.pod_name = name

        delay = sim.faults.take_latency(endpoint, name)
        if delay > 0:
            record.fault = "latency"
            await asyncio.sleep(delay)

        rule = sim.faults.take_http_error(endpoint, name)
        if rule is not None:
            record.fault = rule.kind
            headers = dict(rl.headers)
            if rule.status == 429:
                retry = rule.retry_after or 1
                headers["Retry-After"] = str(retry)
                # Keep the headers consistent with the refusal: the window is used up.
                headers["RateLimit"] = _exhausted(headers["RateLimit"], retry)
            await answer(int(rule.status or 503), rule.detail or "error", headers)
            return
        if rl.exceeded:
            record.fault = "quota"
            headers = {**rl.headers, "Retry-After": str(rl.retry_after)}
            await answer(429, f"rate limit exceeded for the {rl.exceeded} window", headers)
            return

        lost: Rule | None = None
        ctx: dict[str, Any] = {}
        scope["sim"] = ctx  # handlers report the pod or cluster id of a create here

        async def respond(message: Message) -> None:
            nonlocal lost
            if message["type"] == "http.response.start":
                record.status = message["status"]
                if endpoint in CREATE_ENDPOINTS and message["status"] == 201:
                    lost = sim.faults.take_lost_create(name, endpoint)
                if lost is not None:
                    return  # swallowed: the client must never see it
                message = _with_headers(message, rl.headers)
            elif lost is not None:
                return
            await send(message)

        await self.app(scope, _replay(body, receive), respond)
        record.pod_id = record.pod_id or ctx.get("pod_id")
        record.cluster_id = record.cluster_id or ctx.get("cluster_id")
        if lost is not None:
            record.fault = f"lost_create:{lost.mode}"
            record.delivered = False
            if lost.mode == "hang":
                await self._hang(receive, lost.seconds or 600.0)
            await self._drop(receive)

    def _subject_name(self, endpoint: str, path_id: str | None, body: bytes) -> str | None:
        """The pod or cluster name a request concerns, for name-prefix fault rules."""
        if endpoint in CREATE_ENDPOINTS:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                parsed = json.loads(body or b"null")
                if isinstance(parsed, dict) and isinstance(parsed.get("name"), str):
                    return parsed["name"]
            return None
        if path_id and endpoint in _POD_PATHS:
            pod = self.sim.pods.get_any(path_id)
            return pod.name if pod else None
        if path_id and endpoint in _CLUSTER_PATHS:
            cluster = self.sim.clusters.get_any(path_id)
            return cluster.name if cluster else None
        return None

    async def _hang(self, receive: Receive, seconds: float) -> None:
        """Send nothing until the client disconnects, `seconds` pass or the sim stops."""
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        stopping = asyncio.ensure_future(self.sim.stopping.wait())
        try:
            await asyncio.wait({disconnected, stopping}, timeout=seconds)
        finally:
            disconnected.cancel()
            stopping.cancel()

    async def _drop(self, receive: Receive) -> None:
        """Close the TCP connection without sending a response."""
        cycle = getattr(receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            # Not served by uvicorn: the best remaining option is an error before any byte.
            raise ConnectionAbortedError("lost create response (connection dropped)")
        transport.abort()
        # uvicorn marks the cycle disconnected from connection_lost; waiting for that keeps
        # it from logging "returned without starting response" or sending a 500.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_wait_disconnect(receive), 2.0)


def _exhausted(ratelimit: str, retry_after: int) -> str:
    """`RateLimit` with its first (minute) window at r=0, resetting in `retry_after` s."""
    first, sep, rest = ratelimit.partition(", ")
    name = first.split(";", 1)[0]
    return f"{name};r=0;t={retry_after}{sep}{rest}"


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
