"""Exceptions. Every one the client raises is a `HangarError`.

An error response (`application/problem+json`) becomes an `ApiError` subclass chosen by
its status; `code` is the stable, machine-readable name of the problem and `detail` says
what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hangar_client.models import Cluster


class HangarError(Exception):
    """Base class of everything this package raises."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request: `field` is a dotted path (`env.MY_VAR`)."""

    field: str
    message: str


class ApiError(HangarError):
    """The API answered with an error status."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        limit: str | None = None,
        candidates: list[str] | None = None,
        errors: list[FieldError] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.limit = limit  # the team limit that was hit (429)
        self.candidates = candidates  # GPU types that match, or the catalog (422)
        self.errors = errors or []  # invalid fields (422 invalid_request)
        self.request_id = request_id  # quote it when reporting a problem
        self.retry_after = retry_after  # seconds, from the Retry-After header
        self.problem = problem or {}  # the whole problem document, unknown members included


class BadRequest(ApiError):
    """400: the request could not be read."""


class Unauthorized(ApiError):
    """401: no token, or a token the API does not accept."""


class Forbidden(ApiError):
    """403: the token may not do this."""


class NotFound(ApiError):
    """404: no such cluster for your team (another team's cluster is a 404 too)."""


class Conflict(ApiError):
    """409: e.g. a request with the same Idempotency-Key is still in flight."""


class Gone(ApiError):
    """410: the resource existed and no longer does."""


class InvalidRequest(ApiError):
    """422: invalid fields (`errors`), an unknown or ambiguous GPU type (`candidates`), a
    price above `max_hourly_cost`, ..."""


class RateLimited(ApiError):
    """429: too many requests, or a team limit (`limit` names it) would be exceeded."""


class ServerError(ApiError):
    """5xx other than 503."""


class ServiceUnavailable(ServerError):
    """503: a dependency (e.g. the GPU catalog) is unavailable; retry after `retry_after`."""


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status: int) -> type[ApiError]:
    if status in ERRORS_BY_STATUS:
        return ERRORS_BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


class Unreachable(HangarError):
    """The API could not be reached (connection refused, timed out, dropped), after the
    client's retries. The transport's exception is the `__cause__`."""


class UnexpectedResponse(HangarError):
    """A success status with a body that is not what the API sends (e.g. a proxy's page)."""


class ClusterFailed(HangarError):
    """A cluster awaited with `wait_until_ready` failed or was torn down instead.
    `reason` is machine-readable (`no_capacity`, `bootstrap_failed`, `deleted`, ...)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.reason = cluster.reason
        self.message = cluster.message
        what = f"cluster {cluster.name} ({cluster.id}) is {cluster.status}"
        super().__init__(f"{what}: {self.reason or 'no reason given'}"
                         + (f": {self.message}" if self.message else ""))


class WaitTimeout(HangarError, TimeoutError):
    """The cluster did not get where it was awaited within the timeout. `cluster` is its
    last known state."""

    def __init__(self, cluster: Cluster, timeout: float, awaited: str) -> None:
        self.cluster, self.timeout = cluster, timeout
        super().__init__(f"cluster {cluster.name} ({cluster.id}) is still {cluster.status} "
                         f"after {timeout:g} s waiting for it to be {awaited}")
