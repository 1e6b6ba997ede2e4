"""One signed POST to a receiver, bounded in time and in what is read back.

The receiver's response is a stranger's bytes: at most `MAX_RESPONSE_BYTES` are read (to
let the connection be reused), none are kept, logged or shown; only the status code is.
Errors are described in our own words."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import httpx

from app.webhooks import signing
from app.webhooks.transport import AddressRefused

MAX_RESPONSE_BYTES = 4096


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    seconds: float


async def post(client: httpx.AsyncClient, url: str, key: bytes, msg_id: str, body: bytes,
               timeout_s: float) -> Outcome:
    """Send one delivery; 2xx is success, anything else (or no answer in `timeout_s`) not."""
    started = time.monotonic()
    headers = signing.headers(key, msg_id, int(time.time()), body)
    status: int | None = None
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                status = response.status_code
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break  # the rest is not ours to read; the connection is dropped
    except TimeoutError:
        return _done(started, status, f"no response within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        if status is not None:  # the status arrived; the body broke off
            return _done(started, status, None)
        return _done(started, None, describe(exc))
    except (OSError, ssl.SSLError) as exc:
        return _done(started, status, f"connection failed ({type(exc).__name__})")
    return _done(started, status, None)


def _done(started: float, status: int | None, error: str | None) -> Outcome:
    ok = error is None and status is not None and 200 <= status < 300
    if error is None and not ok:
        error = f"HTTP {status}" if status is not None else "no response"
    return Outcome(ok, status, error, time.monotonic() - started)


def describe(exc: httpx.HTTPError) -> str:
    """A transport error in our words (never the receiver's)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, httpx.ConnectError) and isinstance(cause, AddressRefused):
        return f"address refused: {cause}"
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "TLS certificate verification failed"
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        return "connection refused"
    names = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no response in time",
        httpx.WriteTimeout: "sending timed out",
        httpx.PoolTimeout: "no free connection in time",
        httpx.ConnectError: "connection failed",
        httpx.RemoteProtocolError: "the receiver broke the HTTP protocol",
        httpx.ReadError: "the connection broke while reading",
        httpx.WriteError: "the connection broke while sending",
    }
    for kind, text in names.items():
        if isinstance(exc, kind):
            return text
    return f"delivery failed ({type(exc).__name__})"
