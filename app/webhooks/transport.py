"""The HTTP client deliveries go through: it connects only to addresses the URL policy
allows, checked on the addresses it resolves itself at connect time, so a name that
resolved to a public address at create and to 127.0.0.1 now (DNS rebinding) is refused.

httpx resolves names inside httpcore's network backend; `GuardedBackend` is that backend:
it resolves the host, checks every address (`urls.refusal`), and opens the TCP connection
to one of exactly those addresses. TLS is then started by httpcore as usual, with the URL's
host name for SNI and certificate verification. No proxies from the environment (they
would connect on our behalf to anything), no redirects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from app.webhooks import urls


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address the policy refuses (never connected)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await urls.allowed_addresses(host, port, self.allow_private)
        except urls.RefusedUrl as exc:
            raise AddressRefused(str(exc)) from None
        error: Exception | None = None
        for ip in addresses:  # the checked addresses, and nothing else
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None):
        raise AddressRefused("unix sockets are not webhook receivers")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with `GuardedBackend` under its connection pool."""

    def __init__(self, allow_private: bool, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        ssl_context = self._pool._ssl_context  # the one httpx built (certifi, verification on)
        # httpx offers no argument for the network backend: replace the pool it made with
        # the same pool over ours (tests/webhooks cover that deliveries still work).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private),
        )


def make_client(allow_private: bool, timeout_s: float,
                max_connections: int = 1000) -> httpx.AsyncClient:
    """One per process: keep-alive connections per receiver, bounded in number."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=200,
                          keepalive_expiry=30)
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private, limits),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )
