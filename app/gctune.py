"""Garbage-collector settings for the long-running processes (API, worker, simulator).

CPython's cyclic collector walks every tracked object on a full (generation 2) collection.
Under load the API ran one every ~0.5 s (`bench/api.py`) and the worker one every ~2 s (1,000
clusters in `bench/provision.py`), ~115 ms each, collecting next to nothing: about a tenth of
their CPU, and a pause for every request or job in flight (the long tail of `GET /clusters`
and of SSE delivery). Two standard remedies, applied once per process after start-up:

- `gc.freeze()`: what exists after start-up (modules, classes, routes, settings, the ORM's
  mappers) lives as long as the process; frozen, no collection walks it again.
- a larger generation-0 threshold: fewer collections, so fewer short-lived request and job
  objects still in flight get promoted to the old generations (which is what made full
  collections frequent).
Reference counting frees almost everything either way; this only changes how often the cycle
collector looks, and at what. See https://docs.python.org/3/library/gc.html#gc.freeze.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000  # CPython's default is 700

_done = False


def tune_gc() -> None:
    """Collect once, freeze the survivors, raise the generation-0 threshold. Once per process
    (later calls do nothing)."""
    global _done
    if _done:
        return
    _done = True
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
