"""The orphan sweep of Instant Clusters: delete those carrying Hangar's prefix that no
unfinished cluster row owns, once past the grace period (the cron's, beside its sweep of
pods)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select

from app.db.models import Cluster as ClusterRow
from app.providers.base import ProviderError
from app.services.state import utcnow
from workers.context import Work

log = logging.getLogger("hangar.worker.instant")


async def sweep_clusters(w: Work, stop_at: float) -> int:
    """Delete Instant Clusters carrying Hangar's prefix that no unfinished cluster row owns,
    once older than the grace period (a create may be in flight under a committed name)."""
    prefix = w.settings.pod_name_prefix + "-"
    try:
        found = await w.provider.list_clusters(name_prefix=prefix)
    except ProviderError as exc:
        log.warning("orphan sweep could not list Instant Clusters: %s", exc.message)
        return 0
    if not found:
        return 0
    async with w.sessionmaker() as session:
        owned = (await session.execute(
            select(ClusterRow.provider_cluster_id, ClusterRow.provider_cluster_name)
            .where(ClusterRow.terminated_at.is_(None),
                   ClusterRow.provider_cluster_name.is_not(None))
        )).all()
    owned_ids = {r.provider_cluster_id for r in owned if r.provider_cluster_id}
    owned_names = {r.provider_cluster_name for r in owned}
    now = utcnow()
    grace = timedelta(seconds=w.settings.orphan_grace_s)
    swept = 0
    for cluster in found:
        if cluster.id in owned_ids or cluster.name in owned_names:
            continue
        if cluster.created_at is not None and now - cluster.created_at < grace:
            continue
        if time.monotonic() > stop_at:
            log.warning("orphan sweep out of time; the next sweep goes on")
            break
        try:
            await w.provider.delete_cluster(cluster.id)
            swept += 1
            log.warning("deleted orphan Instant Cluster %s (%s)", cluster.id, cluster.name)
        except ProviderError as exc:
            log.warning("could not delete orphan Instant Cluster %s: %s", cluster.id,
                        exc.message)
    return swept
