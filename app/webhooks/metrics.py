"""Webhook metrics (prometheus_client, the process-wide registry): the worker exposes them
with its other metrics (HANGAR_WORKER_METRICS_PORT), the API at /metrics (test pings)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "hangar_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered (2xx), retry (failed, will be retried), "
    "failed (failed after the last retry: abandoned), ping (test pings, any result).",
    ["outcome"],
)
LAG = Histogram(
    "hangar_webhook_delivery_lag_seconds",
    "From an event's transaction to its successful delivery (the receiver's 2xx), "
    "retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400),
)
ATTEMPT_SECONDS = Histogram(
    "hangar_webhook_attempt_duration_seconds",
    "Duration of one delivery attempt (connect, send, response), any outcome.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DISABLED = Counter(
    "hangar_webhook_endpoints_disabled_total",
    "Endpoints disabled after failing for HANGAR_WEBHOOK_DISABLE_AFTER.",
)


def observe_attempt(outcome: str, seconds: float, lag_s: float | None = None) -> None:
    DELIVERIES.labels(outcome).inc()
    ATTEMPT_SECONDS.observe(seconds)
    if lag_s is not None:
        LAG.observe(max(lag_s, 0.0))
