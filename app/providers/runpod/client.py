"""`RunPodProvider`: the `Provider` protocol over RunPod's REST v2 API: pods and the GPU
catalog here; Instant Clusters and network volumes in `clusters.py`; HTTP in `http.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError

from app.providers import base
from app.providers.base import GpuType, InvalidRequest, NotFound, Pod, PodSpec, PodState

from . import types as v2
from .catalog import resolve
from .clusters import ClusterCalls
from .config import RunPodConfig
from .errors import Conflict, UnexpectedResponse
from .http import OnRequest, _short, log
from .mapping import create_body, describe_body, to_gpu_type, to_pod
from .retry import retry_create, retry_reads

_GONE = "gone"
_CONFLICT = "conflict"


class RunPodProvider(ClusterCalls):
    """RunPod GPU pods through REST v2. Create one per process and share it."""

    name = "runpod"
    supports_spot = False

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

    async def _action(self, pod_id: str, action: Literal["terminate"]) -> str:
        """POST an action; `_GONE` on success or 404, `_CONFLICT` on 409."""
        path = self._pod_path(pod_id) + "/action"
        endpoint = "POST /pods/{id}/action"

        async def attempt() -> str:
            resp = await self._send("POST", path, endpoint, json={"action": action})
            if resp.is_success:
                return _GONE
            if resp.status_code == 404:
                return _GONE
            if resp.status_code == 409:
                return _CONFLICT
            raise self._error(resp, endpoint)

        return await self._backoff.run(f"{action}_pod", attempt, retry_reads)

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


def _age_key(pod: Pod) -> tuple[int, float, str]:
    if pod.created_at is None:
        return (1, 0.0, pod.id)
    return (0, pod.created_at.timestamp(), pod.id)



__all__ = ["OnRequest", "RunPodProvider"]

# Static check (for type checkers) that the class satisfies the protocol.
_check: Callable[[RunPodConfig], base.Provider] = RunPodProvider
