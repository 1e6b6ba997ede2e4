"""The building blocks of every plan: a request on the client's base URL with its headers and
timeouts, sent with retries and backoff (at least Retry-After), and its body read as JSON or
text with a clear error when the answer is not the API's. Also what to give httpx as
`verify`."""

from __future__ import annotations

import random
import ssl
from typing import Any
from urllib.parse import quote

import httpx

from hangar_client._commands import Plan, Send, Sleep
from hangar_client._problems import api_error, worth_retrying
from hangar_client.errors import UnexpectedResponse, Unreachable

VERSION = "0.2.0"
DEFAULT_TIMEOUT = 30.0
# The server sends a heartbeat every 15 s on an idle stream (HANGAR_SSE_HEARTBEAT): three
# missed ones mean the connection is dead, and the stream is resumed on a new one.
STREAM_READ_TIMEOUT = 45.0


class Calls:
    """A client's address, token, timeouts and retry policy, and the plans every operation
    is built from."""

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

    def text(self, request: httpx.Request, media_type: str) -> Plan:
        response = yield from self.call(request)
        if media_type not in response.headers.get("content-type", ""):
            raise UnexpectedResponse(
                f"{request.method} {request.url.path} answered {response.status_code} with "
                f"{response.headers.get('content-type') or 'no content type'}, not "
                f"{media_type}: is HANGAR_URL the API's address?")
        return response.text


def tls_verify(url: str, verify: Any) -> Any:
    """What to give httpx as `verify`. On a plain-HTTP URL no certificate is ever checked,
    and loading the CA bundle costs ~70 ms of a command's start-up: a verifying context that
    trusts nothing stands in (an https request through it would fail, not pass)."""
    if verify is True and url.startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return verify
