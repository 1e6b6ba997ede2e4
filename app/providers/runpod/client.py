"""`RunPodProvider`: the `Provider` protocol over RunPod's REST v2 API."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.providers import base
from app.providers.base import (
    CloudType,
    Cluster,
    ClusterSpec,
    GpuType,
    InvalidRequest,
    NetworkVolume,
    NotFound,
    Pod,
    PodSpec,
    PodState,
    ProviderError,
)

from . import types as v2
from .allocation import AllocationChoice, on_demand_only
from .catalog import CatalogCache, resolve
from .config import RunPodConfig
from .errors import (
    Conflict,
    UnexpectedResponse,
    error_from_response,
    error_from_transport,
    outcome_of,
)
from .mapping import (
    cluster_body,
    create_body,
    describe_body,
    to_cluster,
    to_gpu_type,
    to_network_volume,
    to_pod,
)
from .retry import Backoff, Jitter, Sleep, retry_create, retry_reads

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


class RunPodProvider:
    """RunPod GPU pods through REST v2. Create one per process and share it."""

    name = "runpod"
    supports_spot = False

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
            timeout=config.timeout, headers={"User-Agent": "hangar-runpod/1"}
        )
        self._on_request = on_request
        backoff: dict[str, Any] = {
            "attempts": config.retry_attempts,
            "base": config.backoff_base,
            "max_delay": config.backoff_max,
            "retry_after_max": config.retry_after_max,
            "budget": config.retry_budget,
        }
        if sleep is not None:
            backoff["sleep"] = sleep
        if jitter is not None:
            backoff["jitter"] = jitter
        self._backoff = Backoff(**backoff)
        self._catalog = CatalogCache(self._fetch_catalog, ttl=config.catalog_ttl, clock=clock)

    def __repr__(self) -> str:
        return f"RunPodProvider(api_url={self.config.api_url!r})"

    async def __aenter__(self) -> RunPodProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_http and not self._http.is_closed:
            await self._http.aclose()

    # --- pods -----------------------------------------------------------------

    async def create_pod(self, spec: PodSpec) -> Pod:
        """`POST /pods`. Retried only on 429 and on a connection that never opened.

        A 5xx, a read timeout or a dropped connection is raised as is (`ServerError`,
        `TransportError`): the pod may exist, so the caller looks it up by name
        (`find_pod_by_name`) before trying again.
        """
        body = create_body(spec)
        endpoint = "POST /pods"
        log.debug("runpod: creating pod %s", describe_body(body))

        async def attempt() -> Pod:
            resp = await self._send("POST", "/pods", endpoint, json=body)
            if resp.is_success:
                return to_pod(self._parse(resp, v2.Pod, endpoint))
            err = self._error(resp, endpoint)
            if isinstance(err, NotFound):  # e.g. an unknown template/GPU: the request's fault
                err = InvalidRequest(err.message, status=404)
            raise err

        pod = await self._backoff.run("create_pod", attempt, retry_create)
        log.info("runpod: created pod %s (%s), status %s", pod.id, pod.name, pod.status)
        return pod

    async def get_pod(self, pod_id: str) -> Pod | None:
        """`GET /pods/{id}`; None on 404. A TERMINATED pod is returned as such."""
        path = self._pod_path(pod_id)
        endpoint = "GET /pods/{id}"

        async def attempt() -> Pod | None:
            resp = await self._send("GET", path, endpoint)
            if resp.status_code == 404:
                return None
            if resp.is_success:
                return to_pod(self._parse(resp, v2.Pod, endpoint))
            raise self._error(resp, endpoint)

        return await self._backoff.run("get_pod", attempt, retry_reads)

    async def list_pods(self, name_prefix: str | None = None) -> list[Pod]:
        """Every pod of the account: follows `pagination.nextCursor` while `hasNextPage`."""
        endpoint = "GET /pods"
        pods: dict[str, Pod] = {}
        seen_cursors: set[str] = set()
        cursor: str | None = None
        for page in range(1, self.config.list_max_pages + 1):
            params: dict[str, Any] = {"limit": self.config.list_page_limit}
            if cursor is not None:
                params["cursor"] = cursor

            async def attempt(params: dict[str, Any] = params) -> v2.ListPodsResponse:
                resp = await self._send("GET", "/pods", endpoint, params=params)
                if resp.is_success:
                    return self._parse(resp, v2.ListPodsResponse, endpoint)
                raise self._error(resp, endpoint)

            result = await self._backoff.run("list_pods", attempt, retry_reads)
            for raw in result.pods:
                pods.setdefault(raw.id, to_pod(raw))
            paging = result.pagination
            if paging is None or not paging.has_next_page:
                break
            cursor = paging.next_cursor
            if not cursor:
                log.warning("runpod: list_pods page %d says hasNextPage but gives no cursor", page)
                break
            if cursor in seen_cursors:
                log.warning("runpod: list_pods cursor %r came back twice; stopping", cursor)
                break
            seen_cursors.add(cursor)
        else:
            log.warning(
                "runpod: list_pods stopped after %d pages; the listing may be incomplete",
                self.config.list_max_pages,
            )
        found = list(pods.values())
        if name_prefix:
            found = [p for p in found if p.name.startswith(name_prefix)]
        return found

    async def find_pod_by_name(self, name: str) -> Pod | None:
        """The non-terminated pod with exactly this name; the oldest if there are several."""
        live = [
            p
            for p in await self.list_pods(name_prefix=name)
            if p.name == name and p.status is not PodState.TERMINATED
        ]
        if not live:
            return None
        if len(live) > 1:
            live.sort(key=_age_key)
            log.warning(
                "runpod: %d live pods are named %r (%s); using the oldest, %s",
                len(live),
                name,
                ", ".join(p.id for p in live),
                live[0].id,
            )
        return live[0]

    async def stop_pod(self, pod_id: str) -> None:
        """`POST /pods/{id}/action {"action":"stop"}`. Already stopped is fine.

        Raises `NotFound` when the pod does not exist.
        """
        result = await self._action(pod_id, "stop")
        if result == _GONE:
            raise NotFound(f"RunPod pod {pod_id} not found", status=404)
        if result == _CONFLICT:
            pod = await self.get_pod(pod_id)
            if pod is None or pod.status in (PodState.EXITED, PodState.TERMINATED):
                return
            raise Conflict(
                f"RunPod refused to stop pod {pod_id} in status {pod.status}", status=409
            )

    async def terminate_pod(self, pod_id: str) -> None:
        """`DELETE /pods/{id}`: 204 or 404 means gone; on 409 fall back to the action."""
        path = self._pod_path(pod_id)
        endpoint = "DELETE /pods/{id}"

        async def attempt() -> str:
            resp = await self._send("DELETE", path, endpoint)
            if resp.is_success or resp.status_code == 404:
                return _GONE
            if resp.status_code == 409:
                return _CONFLICT
            raise self._error(resp, endpoint)

        result = await self._backoff.run("terminate_pod", attempt, retry_reads)
        if result == _CONFLICT:
            log.info("runpod: DELETE of pod %s got 409; trying the terminate action", pod_id)
            result = await self._action(pod_id, "terminate")
            if result == _CONFLICT:
                raise Conflict(f"RunPod refused to terminate pod {pod_id} (409)", status=409)
        log.info("runpod: pod %s terminated", pod_id)

    async def _action(self, pod_id: str, action: Literal["stop", "terminate"]) -> str:
        """POST an action; "ok", `_GONE` on 404, `_CONFLICT` on 409."""
        path = self._pod_path(pod_id) + "/action"
        endpoint = "POST /pods/{id}/action"

        async def attempt() -> str:
            resp = await self._send("POST", path, endpoint, json={"action": action})
            if resp.is_success:
                return _GONE if action == "terminate" else "ok"
            if resp.status_code == 404:
                return _GONE
            if resp.status_code == 409:
                return _CONFLICT
            raise self._error(resp, endpoint)

        return await self._backoff.run(f"{action}_pod", attempt, retry_reads)

    # --- Instant Clusters -------------------------------------------------------------

    async def create_cluster(self, spec: ClusterSpec) -> Cluster:
        """`POST /clusters`: every member in one data center, or a `CapacityError` and none.

        Retried only on 429 and on a connection that never opened, like `create_pod`: after
        a 5xx or a lost response the cluster may exist, so the caller looks it up by name
        (`find_cluster_by_name`) before trying again. The answer carries no members yet.
        """
        body = cluster_body(spec)
        endpoint = "POST /clusters"
        log.debug("runpod: creating cluster %s", describe_body(body))

        async def attempt() -> Cluster:
            resp = await self._send("POST", "/clusters", endpoint, json=body)
            if resp.is_success:
                return to_cluster(self._parse(resp, v2.Cluster, endpoint))
            err = self._error(resp, endpoint)
            if isinstance(err, NotFound):  # e.g. an unknown network volume: the request's fault
                err = InvalidRequest(err.message, status=404)
            raise err

        cluster = await self._backoff.run("create_cluster", attempt, retry_create)
        log.info(
            "runpod: created cluster %s (%s), %d nodes in %s",
            cluster.id,
            cluster.name,
            cluster.node_count,
            cluster.data_center_id or "?",
        )
        return cluster

    async def get_cluster(self, cluster_id: str) -> Cluster | None:
        """`GET /clusters/{id}` and `GET /clusters/{id}/pods` (two requests); None on 404."""
        path = self._resource_path("/clusters/", cluster_id, "cluster id")
        endpoint = "GET /clusters/{id}"

        async def attempt() -> v2.Cluster | None:
            resp = await self._send("GET", path, endpoint)
            if resp.status_code == 404:
                return None
            if resp.is_success:
                return self._parse(resp, v2.Cluster, endpoint)
            raise self._error(resp, endpoint)

        summary = await self._backoff.run("get_cluster", attempt, retry_reads)
        if summary is None:
            return None
        try:
            members = await self._list_all(
                path + "/pods", "GET /clusters/{id}/pods", v2.ListPodsResponse, "cluster_pods"
            )
        except NotFound:  # deleted between the two reads
            return None
        return to_cluster(summary, [m for page in members for m in page.pods])

    async def list_clusters(self, name_prefix: str | None = None) -> list[Cluster]:
        """Every Instant Cluster of the account (summaries: `members` is empty)."""
        pages = await self._list_all(
            "/clusters", "GET /clusters", v2.ListClustersResponse, "list_clusters"
        )
        clusters: dict[str, Cluster] = {}
        for page in pages:
            for raw in page.clusters:
                clusters.setdefault(raw.id, to_cluster(raw))
        found = list(clusters.values())
        if name_prefix:
            found = [c for c in found if c.name.startswith(name_prefix)]
        return found

    async def find_cluster_by_name(self, name: str) -> Cluster | None:
        """The cluster with exactly this name (a summary); the oldest if there are several."""
        named = [c for c in await self.list_clusters(name_prefix=name) if c.name == name]
        if not named:
            return None
        if len(named) > 1:
            named.sort(key=_created_key)
            log.warning(
                "runpod: %d clusters are named %r (%s); using the oldest, %s",
                len(named),
                name,
                ", ".join(c.id for c in named),
                named[0].id,
            )
        return named[0]

    async def delete_cluster(self, cluster_id: str) -> None:
        """`DELETE /clusters/{id}` (the members go with it): 204 or 404 means gone."""
        path = self._resource_path("/clusters/", cluster_id, "cluster id")
        endpoint = "DELETE /clusters/{id}"

        async def attempt() -> None:
            resp = await self._send("DELETE", path, endpoint)
            if resp.is_success or resp.status_code == 404:
                return
            raise self._error(resp, endpoint)

        await self._backoff.run("delete_cluster", attempt, retry_reads)
        log.info("runpod: cluster %s deleted", cluster_id)

    # --- network volumes (read only) --------------------------------------------------------

    async def list_network_volumes(self) -> list[NetworkVolume]:
        """`GET /network-volumes`: the account's volumes."""
        pages = await self._list_all(
            "/network-volumes",
            "GET /network-volumes",
            v2.ListNetworkVolumesResponse,
            "list_network_volumes",
        )
        return [to_network_volume(v) for page in pages for v in page.network_volumes]

    async def get_network_volume(self, volume_id: str) -> NetworkVolume | None:
        """`GET /network-volumes/{id}`; None on 404."""
        path = self._resource_path("/network-volumes/", volume_id, "network volume id")
        endpoint = "GET /network-volumes/{id}"

        async def attempt() -> NetworkVolume | None:
            resp = await self._send("GET", path, endpoint)
            if resp.status_code == 404:
                return None
            if resp.is_success:
                return to_network_volume(self._parse(resp, v2.NetworkVolume, endpoint))
            raise self._error(resp, endpoint)

        return await self._backoff.run("get_network_volume", attempt, retry_reads)

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

    # --- catalog ----------------------------------------------------------------

    async def gpu_types(self, *, refresh: bool = False) -> list[GpuType]:
        """The catalog with prices and pod availability, cached `catalog_ttl` seconds."""
        return await self._catalog.get(refresh=refresh)

    async def resolve_gpu_type(self, query: str) -> GpuType:
        """'4090' -> RTX 4090; 'h100 sxm' -> the SXM H100; 'h100' -> GpuTypeAmbiguous."""
        return resolve(query, await self.gpu_types())

    async def _fetch_catalog(self) -> list[GpuType]:
        endpoint = "GET /catalog/gpus"
        # include and product go together: either alone gets a 400.
        params = {"include": "AVAILABILITY", "product": "POD"}

        async def attempt() -> list[GpuType]:
            resp = await self._send("GET", "/catalog/gpus", endpoint, params=params)
            if not resp.is_success:
                raise self._error(resp, endpoint)
            data = self._json(resp, endpoint)
            entries = data.get("gpus") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                raise UnexpectedResponse(f"{endpoint}: response has no 'gpus' list")
            types: list[GpuType] = []
            for entry in entries:
                try:
                    types.append(to_gpu_type(v2.GpuType.model_validate(entry)))
                except ValidationError as exc:
                    log.warning("runpod: skipping unreadable catalog entry: %s", _short(exc))
            return types

        types = await self._backoff.run("gpu_types", attempt, retry_reads)
        log.info("runpod: GPU catalog fetched, %d types", len(types))
        return types

    # --- allocation and helpers -----------------------------------------------------

    def check_allocation(self, allocation: str) -> AllocationChoice:
        """'on-demand' -> on-demand; 'spot-if-available' -> on-demand with a notice;
        'spot' -> `SpotUnavailable` (v2 has no spot)."""
        return on_demand_only(allocation)

    def pod_spec(
        self,
        *,
        name: str,
        image: str,
        gpu_type_id: str,
        gpu_count: int = 1,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> PodSpec:
        """A `PodSpec` carrying this config's defaults (cloud, disks, ports, data centers)."""
        cfg = self.config
        values: dict[str, Any] = {
            "cloud_type": cfg.cloud_type,
            "container_disk_gb": cfg.container_disk_gb,
            "volume_gb": cfg.volume_gb,
            "volume_mount_path": cfg.volume_mount_path,
            "ports": tuple(cfg.ports),
            "data_center_ids": tuple(cfg.data_center_ids),
        }
        values.update(overrides)
        return PodSpec(
            name=name,
            image=image,
            gpu_type_id=gpu_type_id,
            gpu_count=gpu_count,
            env=dict(env or {}),
            **values,
        )

    @staticmethod
    def ssh_endpoint(pod: Pod) -> tuple[str, int] | None:
        """(host, port) for direct SSH, or None until RunPod has assigned them."""
        if pod.ssh_host and pod.ssh_port:
            return pod.ssh_host, pod.ssh_port
        return None

    def gpu_model(self, pod: Pod) -> str | None:
        """The GPU's display name when the catalog is cached, else its type id."""
        if pod.gpu_type_id is None:
            return None
        for t in self._catalog.peek() or ():
            if t.id == pod.gpu_type_id:
                return t.display_name
        return pod.gpu_type_id

    @staticmethod
    def gpu_count(pod: Pod) -> int:
        return pod.gpu_count

    @staticmethod
    def hourly_price(gpu_type: GpuType, count: int, cloud_type: CloudType) -> float | None:
        """List price in USD/hour for `count` GPUs of this type (the billed rate is `Pod.cost`)."""
        price = gpu_type.price(cloud_type)
        return None if price is None else round(price * count, 6)

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
                timeout=self.config.timeout,
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


def _created_key(cluster: Cluster) -> tuple[int, float, str]:
    if cluster.created_at is None:
        return (1, 0.0, cluster.id)
    return (0, cluster.created_at.timestamp(), cluster.id)


def _age_key(pod: Pod) -> tuple[int, float, str]:
    if pod.created_at is None:
        return (1, 0.0, pod.id)
    return (0, pod.created_at.timestamp(), pod.id)


__all__ = ["OnRequest", "RunPodProvider"]

# Static check (for type checkers) that the class satisfies the protocol.
_check: Callable[[RunPodConfig], base.Provider] = RunPodProvider
