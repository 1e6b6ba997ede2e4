"""Errors a caller can act on, raised by services; the API maps each class to an HTTP
status once (in the API package's `errors.py`), so nothing below the API knows about HTTP.

`code` is machine-readable and stable; `detail` says what to change; `extra` carries the
fields a caller may act on (`limit`, `candidates`, `hourly_rate`, ...); `retry_after` is
how long to wait before trying again, when that helps."""

from __future__ import annotations

from typing import Any


class HangarError(Exception):
    def __init__(
        self, code: str, detail: str, *, retry_after: float | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail
        self.retry_after = retry_after
        self.extra = extra


class NotFound(HangarError):
    """No such thing belongs to the caller's team (another team's looks the same)."""

    def __init__(self, what: str = "cluster") -> None:
        super().__init__("not_found", f"No {what} with that id belongs to your team.")


class InvalidRequest(HangarError):
    """The request cannot be carried out as sent (an unknown GPU type, a price above the
    caller's maximum, ...)."""


class Conflict(HangarError):
    """The request clashes with the state of things (a request still in flight, a cluster
    that has already ended)."""


class Gone(HangarError):
    """It existed and is no longer kept (a finished cluster's events, after retention)."""


class LimitExceeded(HangarError):
    """A team limit would be exceeded; `limit` names it."""

    def __init__(self, code: str, detail: str, *, limit: str, **extra: Any) -> None:
        super().__init__(code, detail, limit=limit, **extra)
        self.limit = limit


class ProviderUnavailable(HangarError):
    """The GPU provider could not be reached or read; worth retrying shortly."""
