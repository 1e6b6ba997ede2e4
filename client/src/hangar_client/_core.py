"""The client's logic, written once for both transports.

Each operation is a *plan*: a generator that yields commands (send this request, open
this stream, read a chunk, sleep, hand this item to the caller) and receives their
results. `HangarClient` carries the commands out with blocking calls and
`AsyncHangarClient` with awaits; neither knows anything about retries, pagination,
problem documents, the event stream or waiting. Transport failures are thrown back into
the plan, which decides whether to retry.

This module holds the operations (`Core`); the commands are in `_commands.py`, requests
with retries in `_calls.py`, error answers in `_problems.py`, the event stream in
`_follow.py`.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime
from typing import Any

import httpx

from hangar_client._calls import Calls
from hangar_client._commands import UNSET, Emit, OnEvent, Plan, Sleep
from hangar_client._follow import StreamUnavailable, follow
from hangar_client.errors import ClusterFailed, WaitTimeout
from hangar_client.models import (
    Cluster,
    ClusterStatus,
    ClusterStatusChanged,
    Event,
    GpuType,
    NetworkVolume,
    StreamToken,
    Team,
    Usage,
)

POLL_INTERVAL = 1.0  # GET polling, only where the event stream is unavailable
POLL_INTERVAL_MAX = 5.0
SETTLE_INTERVAL = 0.2  # a status seen in an event and not yet in GET (a read cache's lag)

DECISIVE = (ClusterStatus.READY, ClusterStatus.FAILED, ClusterStatus.TERMINATING,
            ClusterStatus.TERMINATED)



class Core(Calls):
    """Every operation of the client, as a plan."""

    # operations

    def create_cluster(self, name: str, gpu_type: str, idempotency_key: str | None,
                       fields: dict[str, Any]) -> Plan:
        body = {"name": name, "gpu_type": gpu_type,
                **{k: v for k, v in fields.items() if v is not None}}
        key = idempotency_key or str(uuid.uuid4())  # one per call, the same on its retries
        request = self.request("POST", "/clusters", body=body, headers={"Idempotency-Key": key})
        return Cluster.from_json((yield from self.json(request)))

    def get_cluster(self, cluster_id: str) -> Plan:
        return Cluster.from_json((yield from self.json(self.request("GET",
                                                                    self.path(cluster_id)))))

    def list_clusters(self, status: Any, name: str | None, page_size: int | None) -> Plan:
        params: dict[str, Any] = {}
        if status is not None:
            params["status"] = [str(status)] if isinstance(status, str) else [
                str(s) for s in status]
        if name is not None:
            params["name"] = name
        if page_size is not None:
            params["limit"] = page_size
        while True:
            page = yield from self.json(self.request("GET", "/clusters", params=params))
            for item in page.get("items") or []:
                yield Emit(Cluster.from_json(item))
            nxt = page.get("next")
            if not nxt:
                return None
            # The next page's query on our own base URL: a proxy in front of the API may
            # have a path or scheme the API does not see.
            params = httpx.URL(nxt).params

    def update_cluster(self, cluster_id: str, changes: dict[str, Any]) -> Plan:
        # Only what the caller gave: None is a value here (null clears the TTL). Setting a
        # value is idempotent, so a retried PATCH leaves the cluster as one would.
        body = {k: v for k, v in changes.items() if v is not UNSET}
        if not body:
            raise TypeError("update_cluster: nothing to change; pass ttl_seconds=N "
                            "(or None to clear the TTL)")
        request = self.request("PATCH", self.path(cluster_id), body=body)
        return Cluster.from_json((yield from self.json(request)))

    def create_stream_token(self, cluster_id: str) -> Plan:
        # A retry after a lost answer makes a second token: harmless (each expires).
        request = self.request("POST", self.path(cluster_id) + "/stream-tokens")
        return StreamToken.from_json((yield from self.json(request)))

    def get_team(self) -> Plan:
        return Team.from_json((yield from self.json(self.request("GET", "/team"))))

    def get_usage(self, start: Any, end: Any, group_by: str, page_size: int | None) -> Plan:
        params = usage_params(start, end, group_by)
        if page_size is not None:
            params["limit"] = page_size
        first: dict[str, Any] | None = None
        items: list[Any] = []
        while True:
            page = yield from self.json(self.request("GET", "/usage", params=params))
            first = first or page
            items += [i for i in page.get("items") or [] if isinstance(i, dict)]
            nxt = page.get("next")
            if not nxt:
                break
            params = httpx.URL(nxt).params  # on our own base URL, as for list_clusters
        # One document as if one page held every group; `total` already covers them all.
        return Usage.from_json({**first, "items": items, "next": None})

    def usage_csv(self, start: Any, end: Any, group_by: str) -> Plan:
        request = self.request("GET", "/usage", params=usage_params(start, end, group_by),
                               headers={"Accept": "text/csv"})
        return (yield from self.text(request, "text/csv"))

    def list_network_volumes(self) -> Plan:
        items = yield from self.json(self.request("GET", "/network-volumes"), list)
        return [NetworkVolume.from_json(v) for v in items if isinstance(v, dict)]

    def gpu_types(self, name: str | None, cloud_type: str | None) -> Plan:
        params = {k: v for k, v in (("name", name), ("cloud_type", cloud_type)) if v}
        items = yield from self.json(self.request("GET", "/gpu-types", params=params), list)
        return [GpuType.from_json(g) for g in items if isinstance(g, dict)]

    def delete_cluster(self, cluster_id: str, wait: bool, timeout: float,
                       on_event: OnEvent) -> Plan:
        deadline = time.monotonic() + timeout
        cluster = Cluster.from_json(
            (yield from self.json(self.request("DELETE", self.path(cluster_id)))))
        if not wait:
            return cluster
        # The caller hears from the teardown on, not the cluster's whole history again.
        teardown = False

        def forward(event: Event) -> None:
            nonlocal teardown
            teardown = teardown or (isinstance(event, ClusterStatusChanged)
                                    and event.status in DECISIVE[1:])
            if teardown and on_event is not None:
                on_event(event)

        last = 0
        while not cluster.finished:
            if time.monotonic() >= deadline:
                raise WaitTimeout(cluster, timeout, "terminated")
            ended = False
            try:
                followed = yield from follow(self, cluster_id, last, emit=False, on_event=forward,
                                                  deadline=deadline)
                last, ended = followed.last_id, followed.outcome == "ended"
            except StreamUnavailable:
                yield Sleep(POLL_INTERVAL)
            cluster = yield from self.get_cluster(cluster_id)
            if ended and not cluster.finished:
                yield Sleep(SETTLE_INTERVAL)  # the stream ended: GET catches up within moments
        return cluster

    def wait_until_ready(self, cluster_id: str, timeout: float, on_event: OnEvent) -> Plan:
        deadline = time.monotonic() + timeout
        cluster = yield from self.get_cluster(cluster_id)
        last, poll, moved, streaming = 0, POLL_INTERVAL, False, True
        while True:
            if cluster.status == ClusterStatus.READY:
                return cluster
            if cluster.status in DECISIVE:
                raise ClusterFailed(cluster)
            if time.monotonic() >= deadline:
                raise WaitTimeout(cluster, timeout, "ready")
            if moved:
                # An event said the cluster moved; GET catches up within moments.
                yield Sleep(SETTLE_INTERVAL)
            elif streaming:
                try:
                    followed = yield from follow(
                        self, cluster_id, last, emit=False, on_event=on_event, deadline=deadline,
                        stop=lambda e: isinstance(e, ClusterStatusChanged)
                        and e.status in DECISIVE)
                    last, moved = followed.last_id, followed.outcome != "timeout"
                except StreamUnavailable:
                    streaming = False
            if not streaming:
                yield Sleep(min(poll, max(deadline - time.monotonic(), 0)))
                poll = min(poll * 1.5, POLL_INTERVAL_MAX)
            cluster = yield from self.get_cluster(cluster_id)

    def events(self, cluster_id: str, after: int | None) -> Plan:
        yield from follow(self, cluster_id, after or 0, emit=True)


def when(value: Any, name: str) -> str | None:
    """A window edge for `GET /usage`: a datetime (naive: UTC, as the API reads it), a date,
    or an ISO 8601 string passed as it is."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{name} must be a datetime, a date or an ISO 8601 string, "
                    f"not {type(value).__name__}")


def usage_params(start: Any, end: Any, group_by: str) -> dict[str, Any]:
    # group_by is the server's to check (a newer one may group otherwise): a 422 names them.
    params: dict[str, Any] = {"group_by": group_by}
    for key, value in (("from", when(start, "start")), ("to", when(end, "end"))):
        if value is not None:
            params[key] = value
    return params

