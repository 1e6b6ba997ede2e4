"""The blocking client: carries out the plans of `_core` with httpx.Client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
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


class HangarClient:
    """Hangar's API, blocking. Use it as a context manager (or call `close()`):

        with HangarClient("https://hangar.internal", token) as hangar:
            cluster = hangar.create_cluster("train", "RTX 4090", nodes=2)
            cluster = hangar.wait_until_ready(cluster.id, timeout=900)

    Failed requests raise `hangar_client.errors.ApiError` subclasses; 429, 503 and lost
    connections are retried `retries` times with exponential backoff first.
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
        http_client: httpx.Client | None = None,
    ) -> None:
        self._core = Core(url, token, timeout=timeout, retries=retries, backoff=backoff,
                          max_backoff=max_backoff, stream_read_timeout=stream_read_timeout)
        self._http = http_client or httpx.Client(verify=tls_verify(url, verify))
        self._owns_http = http_client is None

    def __enter__(self) -> HangarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- the API -------------------------------------------------------------------------

    def create_cluster(self, name: str, gpu_type: str, *, idempotency_key: str | None = None,
                       **fields: Unpack[ClusterSpec]) -> Cluster:
        """Ask for a cluster: any field of the API's request body (`nodes`, `gpu_count`,
        `network`, `setup`, `env`, `secrets`, `ssh_public_keys`, `network_volume_id`,
        `ttl_seconds`, `max_hourly_cost`, ...: `ClusterSpec`); None values are left out.
        Retries reuse one Idempotency-Key, so a retried create never makes two clusters;
        pass your own key to extend that to your retries."""
        return self._run(self._core.create_cluster(name, gpu_type, idempotency_key, fields))

    def get_cluster(self, cluster_id: str) -> Cluster:
        return self._run(self._core.get_cluster(cluster_id))

    def list_clusters(self, status: str | ClusterStatus | Iterable[str] | None = None,
                      name: str | None = None, *, page_size: int | None = None
                      ) -> Iterator[Cluster]:
        """Your team's clusters, newest first, every page (fetched as you iterate)."""
        return self._iterate(self._core.list_clusters(status, name, page_size))

    def delete_cluster(self, cluster_id: str, wait: bool = False, timeout: float = 600.0,
                       on_event: OnEvent = None) -> Cluster:
        """Tear the cluster down (idempotent). With `wait`, return once every pod is
        confirmed gone (`WaitTimeout` after `timeout` s); `on_event` sees the teardown's
        events as they come."""
        return self._run(self._core.delete_cluster(cluster_id, wait, timeout, on_event))

    def wait_until_ready(self, cluster_id: str, timeout: float = 1800.0,
                         on_event: OnEvent = None) -> Cluster:
        """Follow the cluster's events until it is ready, and return it. Raises
        `ClusterFailed` (with `reason`, `message`, `cluster`) if it fails or is torn down
        instead, `WaitTimeout` after `timeout` s. `on_event` sees every event from the
        cluster's first, e.g. to show progress."""
        return self._run(self._core.wait_until_ready(cluster_id, timeout, on_event))

    def events(self, cluster_id: str, after: int | None = None) -> Iterator[Event]:
        """The cluster's events after `after` (from the first without it), then the new ones
        as they happen, until the server ends the stream once the cluster is finished.
        A dropped connection is resumed by itself, with no gap and no duplicate."""
        return self._iterate(self._core.events(cluster_id, after))

    def update_cluster(self, cluster_id: str, *, ttl_seconds: int | None | Unset = UNSET
                       ) -> Cluster:
        """Change a live cluster: `ttl_seconds=N` tears it down N seconds after `ready_at`
        (an expiry already past: now), `ttl_seconds=None` clears the TTL; a field not given
        is left as it is. `Conflict` (409) once the cluster is terminating or ended."""
        return self._run(self._core.update_cluster(cluster_id, {"ttl_seconds": ttl_seconds}))

    def create_stream_token(self, cluster_id: str) -> StreamToken:
        """A short-lived, read-only token for this cluster's event stream, for a browser:
        `events_url` is ready for `new EventSource(events_url)`. Never an API token in a
        URL."""
        return self._run(self._core.create_stream_token(cluster_id))

    def get_team(self) -> Team:
        """Your team: its limits (and where each comes from), live clusters and nodes,
        hourly spend now, month-to-date cost and what is left of the monthly budget."""
        return self._run(self._core.get_team())

    def get_usage(self, start: When = None, end: When = None, group_by: str = "day", *,
                  page_size: int | None = None) -> Usage:
        """Cost and GPU-hours over `[start, end)` (UTC; default: this month) per "day",
        "cluster" or "gpu_type". Grouped by cluster the API answers in pages: every page is
        fetched (`page_size` clusters each) and `items` holds them all."""
        return self._run(self._core.get_usage(start, end, group_by, page_size))

    def usage_csv(self, start: When = None, end: When = None, group_by: str = "day") -> str:
        """The same report as CSV text, as the API writes it (a header, then every group)."""
        return self._run(self._core.usage_csv(start, end, group_by))

    def list_network_volumes(self) -> list[NetworkVolume]:
        """The network volumes a cluster can mount (`network_volume_id`)."""
        return self._run(self._core.list_network_volumes())

    def gpu_types(self, name: str | None = None, cloud_type: str | None = None
                  ) -> list[GpuType]:
        """The GPU catalog with per-GPU hourly prices and availability."""
        return self._run(self._core.gpu_types(name, cloud_type))

    # --- carrying out plans --------------------------------------------------------------

    def _run(self, plan: Plan) -> Any:
        steps = self._steps(plan)
        try:
            item = next(steps)
        except StopIteration as done:
            return done.value
        steps.close()
        raise RuntimeError(f"unexpected item from a plan: {item!r}")

    def _iterate(self, plan: Plan) -> Iterator[Any]:
        yield from self._steps(plan)

    def _steps(self, plan: Plan) -> Iterator[Any]:
        streams: list[Stream] = []
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    command = plan.throw(error) if error is not None else plan.send(value)
                except StopIteration as done:
                    return done.value
                value = error = None
                if isinstance(command, Emit):
                    yield command.item
                    continue
                try:
                    value = self._execute(command, streams)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            plan.close()
            for stream in streams:
                stream.response.close()

    def _execute(self, command: Any, streams: list[Stream]) -> Any:
        if isinstance(command, Send):
            return self._http.send(command.request)
        if isinstance(command, Open):
            response = self._http.send(command.request, stream=True)
            stream = Stream(response, response.iter_bytes())
            streams.append(stream)
            return stream
        if isinstance(command, Read):
            return next(command.stream.chunks, b"")
        if isinstance(command, Close):
            command.stream.response.close()
            streams.remove(command.stream)
            return None
        if isinstance(command, Sleep):
            time.sleep(command.seconds)
            return None
        raise TypeError(f"unknown command {command!r}")
