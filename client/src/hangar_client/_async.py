"""The asyncio client: carries out the plans of `_core` with httpx.AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from typing import Any, Unpack

import httpx

from hangar_client._calls import DEFAULT_TIMEOUT, STREAM_READ_TIMEOUT, tls_verify
from hangar_client._commands import (
    UNSET,
    Close,
    Emit,
    OnEvent,
    Open,
    Plan,
    Read,
    Send,
    Sleep,
    Stream,
    Unset,
)
from hangar_client._core import Core
from hangar_client.models import (
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Event,
    GpuType,
    NetworkVolume,
    StreamToken,
    Team,
    Usage,
)

When = datetime | date | str | None


class AsyncHangarClient:
    """Hangar's API for asyncio; the same methods as `HangarClient`, awaited (`events` and
    `list_clusters` are async iterators):

        async with AsyncHangarClient("https://hangar.internal", token) as hangar:
            cluster = await hangar.create_cluster("train", "RTX 4090", nodes=2)
            cluster = await hangar.wait_until_ready(cluster.id, timeout=900)
    """

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
        verify: Any = True,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._core = Core(url, token, timeout=timeout, retries=retries, backoff=backoff,
                          max_backoff=max_backoff, stream_read_timeout=stream_read_timeout)
        self._http = http_client or httpx.AsyncClient(verify=tls_verify(url, verify))
        self._owns_http = http_client is None

    async def __aenter__(self) -> AsyncHangarClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- the API (see HangarClient for what each does) -----------------------------------

    async def create_cluster(self, name: str, gpu_type: str, *,
                             idempotency_key: str | None = None,
                             **fields: Unpack[ClusterSpec]) -> Cluster:
        return await self._run(self._core.create_cluster(name, gpu_type, idempotency_key,
                                                         fields))

    async def get_cluster(self, cluster_id: str) -> Cluster:
        return await self._run(self._core.get_cluster(cluster_id))

    def list_clusters(self, status: str | ClusterStatus | Iterable[str] | None = None,
                      name: str | None = None, *, page_size: int | None = None
                      ) -> AsyncIterator[Cluster]:
        return self._steps(self._core.list_clusters(status, name, page_size))

    async def delete_cluster(self, cluster_id: str, wait: bool = False,
                             timeout: float = 600.0, on_event: OnEvent = None) -> Cluster:
        return await self._run(self._core.delete_cluster(cluster_id, wait, timeout, on_event))

    async def wait_until_ready(self, cluster_id: str, timeout: float = 1800.0,
                               on_event: OnEvent = None) -> Cluster:
        return await self._run(self._core.wait_until_ready(cluster_id, timeout, on_event))

    def events(self, cluster_id: str, after: int | None = None) -> AsyncIterator[Event]:
        return self._steps(self._core.events(cluster_id, after))

    async def update_cluster(self, cluster_id: str, *,
                             ttl_seconds: int | None | Unset = UNSET) -> Cluster:
        return await self._run(self._core.update_cluster(cluster_id,
                                                         {"ttl_seconds": ttl_seconds}))

    async def create_stream_token(self, cluster_id: str) -> StreamToken:
        return await self._run(self._core.create_stream_token(cluster_id))

    async def get_team(self) -> Team:
        return await self._run(self._core.get_team())

    async def get_usage(self, start: When = None, end: When = None, group_by: str = "day", *,
                        page_size: int | None = None) -> Usage:
        return await self._run(self._core.get_usage(start, end, group_by, page_size))

    async def usage_csv(self, start: When = None, end: When = None,
                        group_by: str = "day") -> str:
        return await self._run(self._core.usage_csv(start, end, group_by))

    async def list_network_volumes(self) -> list[NetworkVolume]:
        return await self._run(self._core.list_network_volumes())

    async def gpu_types(self, name: str | None = None, cloud_type: str | None = None
                        ) -> list[GpuType]:
        return await self._run(self._core.gpu_types(name, cloud_type))

    # --- carrying out plans --------------------------------------------------------------

    async def _run(self, plan: Plan) -> Any:
        result: list[Any] = []
        steps = self._steps(plan, result)
        try:
            async for item in steps:
                raise RuntimeError(f"unexpected item from a plan: {item!r}")
        finally:
            await steps.aclose()
        return result[0] if result else None

    async def _steps(self, plan: Plan, result: list[Any] | None = None) -> AsyncIterator[Any]:
        streams: list[Stream] = []
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    command = plan.throw(error) if error is not None else plan.send(value)
                except StopIteration as done:
                    if result is not None:
                        result.append(done.value)
                    return
                value = error = None
                if isinstance(command, Emit):
                    yield command.item
                    continue
                try:
                    value = await self._execute(command, streams)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            plan.close()
            for stream in streams:
                await stream.response.aclose()

    async def _execute(self, command: Any, streams: list[Stream]) -> Any:
        if isinstance(command, Send):
            return await self._http.send(command.request)
        if isinstance(command, Open):
            response = await self._http.send(command.request, stream=True)
            stream = Stream(response, response.aiter_bytes())
            streams.append(stream)
            return stream
        if isinstance(command, Read):
            return await anext(command.stream.chunks, b"")
        if isinstance(command, Close):
            await command.stream.response.aclose()
            streams.remove(command.stream)
            return None
        if isinstance(command, Sleep):
            await asyncio.sleep(command.seconds)
            return None
        raise TypeError(f"unknown command {command!r}")
