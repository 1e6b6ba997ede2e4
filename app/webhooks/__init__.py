"""Webhooks: signed, ordered, retried deliveries of cluster and node events.

- `signing`: secrets and Standard Webhooks signatures; the payload.
- `filters`: event type patterns (`cluster.*`, `node.ready`, `*`).
- `urls`: which URLs and addresses may be called (SSRF policy).
- `transport`: the HTTP client that connects only to addresses the policy allows.
- `endpoints`: create, list, read, delete endpoints; their deliveries; the test ping.
- `engine`: the delivery job of one endpoint (cursor per cluster, retries, leases).
- `waker`: turns committed events into delivery jobs (Redis only wakes).
- `metrics`: deliveries by outcome, delivery lag.

See docs/webhooks.md for the design.
"""
