"""RunPod REST v2 over HTTP: one shared client, bearer auth, typed errors, each attempt
bounded by the call's deadline, metrics per attempt. The calls themselves are in
`client.py` (pods, catalog) and `clusters.py` (Instant Clusters, network volumes)."""


from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.providers.base import (
    InvalidRequest,
    ProviderError,
)

from . import types as v2
from .catalog import CatalogCache
from .config import RunPodConfig
from .errors import (
    UnexpectedResponse,
    error_from_response,
    error_from_transport,
    outcome_of,
)
from .retry import Backoff, Jitter, Sleep, retry_reads, time_left

log = logging.getLogger("hangar.runpod")

_M = TypeVar("_M", bound=BaseModel)
_Listing = TypeVar("_Listing", v2.ListClustersResponse, v2.ListPodsResponse,
                   v2.ListNetworkVolumesResponse)

OnRequest = Callable[[str, str, float], None]
"""`on_request(endpoint, outcome, seconds)`: called once per HTTP attempt.

`endpoint` is a template such as "GET /pods/{id}"; `outcome` is one of ok, capacity,
bad_request, unauthorized, payment_required, forbidden, not_found, conflict,
unprocessable, rate_limited, client_error, server_error, transport_error.
"""

_GONE = "gone"
_CONFLICT = "conflict"



class RunPodHTTP:
    """What every call needs: the HTTP client, the retry loop, sending and reading."""


    def __init__(
        self,
        config: RunPodConfig,
        http_client: httpx.AsyncClient | None = None,
        *,
        on_request: OnRequest | None = None,
        sleep: Sleep | None = None,
        jitter: Jitter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=config.timeout(), headers={"User-Agent": "hangar-runpod/1"}
        )
        self._on_request = on_request
        backoff: dict[str, Any] = {
            "attempts": config.retry_attempts,
            "base": config.backoff_base,
            "max_delay": config.backoff_max,
            "deadline": config.call_deadline,
        }
        if sleep is not None:
            backoff["sleep"] = sleep
        if jitter is not None:
            backoff["jitter"] = jitter
        self._backoff = Backoff(**backoff)
        self._catalog = CatalogCache(self._fetch_catalog, ttl=config.catalog_ttl, clock=clock)

    def __repr__(self) -> str:
        return f"RunPodProvider(api_url={self.config.api_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_http and not self._http.is_closed:
            await self._http.aclose()


    async def _list_all(
        self, path: str, endpoint: str, model: type[_Listing], what: str
    ) -> list[_Listing]:
        """Every page of a listing: [S] has no pagination on these, but should a
        `pagination.nextCursor` appear (as on pods), it is followed. 404 -> `NotFound`."""
        pages: list[_Listing] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(self.config.list_max_pages):
            params = {"cursor": cursor} if cursor else None

            async def attempt(params: dict[str, Any] | None = params) -> _Listing:
                resp = await self._send("GET", path, endpoint, params=params)
                if resp.is_success:
                    return self._parse(resp, model, endpoint)
                raise self._error(resp, endpoint)

            page = await self._backoff.run(what, attempt, retry_reads)
            pages.append(page)
            paging = page.pagination
            if paging is None or not paging.has_next_page:
                break
            cursor = paging.next_cursor
            if not cursor or cursor in seen:
                log.warning("runpod: %s gave no new cursor for its next page; stopping", endpoint)
                break
            seen.add(cursor)
        return pages

    # --- HTTP -------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.api_key.get_secret_value()}",
            "Accept": "application/json",
        }

    @staticmethod
    def _resource_path(prefix: str, resource_id: str, what: str) -> str:
        if not resource_id or not resource_id.strip():
            raise InvalidRequest(f"{what} must not be empty")
        return prefix + quote(resource_id, safe="")

    @staticmethod
    def _pod_path(pod_id: str) -> str:
        if not pod_id or not pod_id.strip():
            raise InvalidRequest("pod id must not be empty")
        return "/pods/" + quote(pod_id, safe="")

    async def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One HTTP attempt. Transport failures become typed errors; statuses are returned."""
        started = time.perf_counter()
        try:
            resp = await self._http.request(
                method,
                self.config.base_url + path,
                json=json,
                params=params,
                headers=self._headers(),
                timeout=self.config.timeout(time_left(self.config.read_timeout)),
            )
        except httpx.TransportError as exc:
            self._record(endpoint, "transport_error", started)
            err = error_from_transport(exc, endpoint)
            log.warning("runpod %s: %s", endpoint, err.message)
            raise err from exc
        self._record(endpoint, outcome_of(resp), started)
        return resp

    def _record(self, endpoint: str, outcome: str, started: float) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(endpoint, outcome, time.perf_counter() - started)
        except Exception:  # metrics must never break provisioning
            log.debug("runpod: on_request hook failed", exc_info=True)

    def _error(self, resp: httpx.Response, endpoint: str) -> ProviderError:
        err = error_from_response(resp)
        log.warning(
            "runpod %s -> %s %s (request id %s)",
            endpoint,
            resp.status_code,
            err.message,
            resp.headers.get("x-request-id", "-"),
        )
        return err

    @staticmethod
    def _json(resp: httpx.Response, endpoint: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise UnexpectedResponse(
                f"{endpoint}: RunPod answered {resp.status_code} with a body that is not JSON",
                status=resp.status_code,
            ) from exc

    def _parse(self, resp: httpx.Response, model: type[_M], endpoint: str) -> _M:
        data = self._json(resp, endpoint)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise UnexpectedResponse(
                f"{endpoint}: unexpected response shape: {_short(exc)}", status=resp.status_code
            ) from exc



def _short(exc: ValidationError) -> str:
    # Locations and messages only: never the input values (a pod's env holds keys).
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])

