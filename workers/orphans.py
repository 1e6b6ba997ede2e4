"""The orphan sweep's one loop, for pods (workers/cron.py) and Instant Clusters
(workers/instant/sweep.py) alike: remove what carries Hangar's prefix and no row owns, once
older than `HANGAR_ORPHAN_GRACE`, within the sweep's time budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from app.providers.base import ProviderError
from app.services.state import utcnow
from workers.context import Work

log = logging.getLogger("hangar.worker.cron")


class Found(Protocol):
    id: str
    name: str
    created_at: datetime | None


async def remove_orphans(
    w: Work, found: Iterable[Found], owned_ids: set[str], owned_names: set[str],
    remove: Callable[[str], Awaitable[object]], what: str, done: str, stop_at: float,
) -> int:
    """Remove (`remove(id)`) each of `found` that neither `owned_ids` nor `owned_names`
    claims and that is past the grace period; stop at `stop_at` (monotonic), the next sweep
    goes on. `what` names the kind in logs ("pod"), `done` the act ("terminated").
    Returns how many were removed."""
    now = utcnow()
    grace = timedelta(seconds=w.settings.orphan_grace_s)
    swept = 0
    for item in found:
        if item.id in owned_ids or item.name in owned_names:
            continue
        if item.created_at is not None and now - item.created_at < grace:
            continue
        if time.monotonic() > stop_at:
            log.warning("orphan sweep out of time; the next sweep goes on")
            break
        try:
            await remove(item.id)
            swept += 1
            log.warning("%s orphan %s %s (%s)", done, what, item.id, item.name)
        except ProviderError as exc:
            log.warning("could not remove orphan %s %s: %s", what, item.id, exc.message)
    return swept
