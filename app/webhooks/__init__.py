"""Webhooks: signed, ordered, retried deliveries of cluster and node events.

- `signing`: secrets and Standard Webhooks signatures; the payload.
- `filters`: event type patterns (`cluster.*`, `node.ready`, `*`).
- `urls`: which URLs and addresses may be called (SSRF policy).
- `transport`: the HTTP client that connects only to addresses the policy allows.
- `endpoints`: create, list, read, delete endpoints; their deliveries; the test ping.
- `engine`: the delivery job's per-process part (HTTP clients, the runs under way here).
- `run`: one endpoint's run (its lease, a cursor and a lane per cluster, attempts, retries).
- `statements`: the SQL of a run.
- `schedule`: when an endpoint's job runs (`enqueue`, one per endpoint and tick).
- `cron`: the sweep that wakes endpoints Redis forgot; pruning cursors and attempts.
- `waker`: turns committed events into delivery jobs (Redis only wakes).
- `metrics`: deliveries by outcome, delivery lag.

See docs/webhooks.md for the design.
"""
