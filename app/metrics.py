"""Prometheus metrics: HTTP traffic, RunPod calls, job durations, and gauges read at scrape.

Counters and histograms live in the process-wide `prometheus_client.REGISTRY`, so each
process exposes its own: the API at `GET /metrics`; a worker process through
`start_worker_metrics_server(port)` (it records `observe_job`). Cluster and node counts
are read from the database at scrape time (one GROUP BY each), so every API replica
reports the same, correct figures.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Cluster, Node
from app.domain.status import ClusterStatus, NodeStatus

log = logging.getLogger("hangar.metrics")

__all__ = [
    "CONTENT_TYPE_LATEST",
    "observe_job",
    "observe_request",
    "observe_runpod",
    "render",
    "start_worker_metrics_server",
    "time_job",
    "timed_job",
]

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])

# Label for requests that matched no route: keeps random paths from creating series.
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "hangar_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "hangar_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body; SSE streams included).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RUNPOD_REQUESTS = Counter(
    "hangar_runpod_requests_total",
    "HTTP attempts against the RunPod API, by endpoint template and outcome.",
    ["endpoint", "outcome"],
)
RUNPOD_LATENCY = Histogram(
    "hangar_runpod_request_duration_seconds",
    "Duration of one HTTP attempt against the RunPod API.",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOB_DURATION = Histogram(
    "hangar_job_duration_seconds",
    "Duration of worker jobs, by job name and outcome (recorded in the worker process).",
    ["job", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
CLUSTERS = Gauge("hangar_clusters", "Clusters by status (read from the database).", ["status"])
NODES = Gauge("hangar_nodes", "Nodes by status (read from the database).", ["status"])
SSE_SUBSCRIBERS = Gauge(
    "hangar_sse_subscribers", "Event-stream clients connected to this API process."
)
READ_CACHE_LOOKUPS = Counter(
    "hangar_read_cache_lookups_total",
    "Clusters read for GET /clusters/{id} and GET /clusters pages, by where they came "
    "from: hit (this process's read cache) or miss (the database). Updated at scrape time.",
    ["result"],
)
READ_CACHE_ENTRIES = Gauge(
    "hangar_read_cache_entries", "Clusters held in this API process's read cache."
)
TOKEN_CACHE_ENTRIES = Gauge(
    "hangar_token_cache_entries", "API tokens held in this API process's token cache."
)
SCRAPE_ERRORS = Counter(
    "hangar_metrics_scrape_errors_total",
    "Scrapes whose database counts could not be read (the gauges keep their last value).",
)


# (method, route, status) -> the labelled children: `labels()` costs more than the update.
_REQUEST_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _REQUEST_CHILDREN.get(key)
    if children is None:
        children = _REQUEST_CHILDREN[key] = (
            HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route)
        )
    children[0].inc()
    children[1].observe(seconds)


def observe_runpod(endpoint: str, outcome: str, seconds: float) -> None:
    """The RunPod provider's `on_request(endpoint, outcome, seconds)` hook."""
    RUNPOD_REQUESTS.labels(endpoint, outcome).inc()
    RUNPOD_LATENCY.labels(endpoint).observe(seconds)


def observe_job(name: str, seconds: float, outcome: str) -> None:
    """Record one job run. `outcome`: ok, error, retry, cancelled (keep the set small)."""
    JOB_DURATION.labels(name, outcome).observe(seconds)


@contextmanager
def time_job(name: str) -> Iterator[None]:
    """`with time_job("poll_node"): ...` records the duration with outcome ok, cancelled
    or error (the exception is re-raised)."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except BaseException:
        outcome = "error"
        raise
    finally:
        observe_job(name, time.perf_counter() - started, outcome)


def timed_job(fn: _F) -> _F:
    """Decorate an arq job function (`async def job(ctx, ...)`) to record its duration
    under its own name; arq still sees the original name (functools.wraps)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with time_job(fn.__name__):
            return await fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def start_worker_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    """Serve this process's metrics (job durations, RunPod calls) on `port` in a thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)


async def _counts(session: AsyncSession, column, known: list[str]) -> dict[str, int]:
    rows = (await session.execute(select(column, func.count()).group_by(column))).all()
    counts = dict.fromkeys(known, 0)
    counts.update({status: n for status, n in rows})
    return counts


def observe_caches(read_cache: Any, token_cache: Any) -> None:
    """Scrape time: the caches' entry counts, and their hit/miss counts since the last
    scrape (kept as plain integers on the hot path)."""
    for result in ("hit", "miss"):
        total = read_cache.hits if result == "hit" else read_cache.misses
        exported = read_cache.exported.get(result, 0)
        if total > exported:
            READ_CACHE_LOOKUPS.labels(result).inc(total - exported)
            read_cache.exported[result] = total
    READ_CACHE_ENTRIES.set(len(read_cache))
    TOKEN_CACHE_ENTRIES.set(len(token_cache))


async def render(session: AsyncSession, sse_subscribers: int) -> bytes:
    """Refresh the scrape-time gauges, then the text exposition of every metric."""
    try:
        clusters = await _counts(session, Cluster.status, [s.value for s in ClusterStatus])
        nodes = await _counts(session, Node.status, [s.value for s in NodeStatus])
    except Exception:  # an unreachable database must not take the metrics endpoint down
        log.warning("metrics: could not count clusters and nodes", exc_info=True)
        SCRAPE_ERRORS.inc()
    else:
        for status, n in clusters.items():
            CLUSTERS.labels(status).set(n)
        for status, n in nodes.items():
            NODES.labels(status).set(n)
    SSE_SUBSCRIBERS.set(sse_subscribers)
    return generate_latest(REGISTRY)
