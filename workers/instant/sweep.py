"""The orphan sweep of Instant Clusters: delete those carrying Hangar's prefix that no
unfinished cluster row owns, once past the grace period (the cron's, beside its sweep of
pods)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.db.models import Cluster as ClusterRow
from app.providers.base import ProviderError
from workers.context import Work
from workers.orphans import remove_orphans

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
    return await remove_orphans(w, found, owned_ids, owned_names, w.provider.delete_cluster,
                                "Instant Cluster", "deleted", stop_at)
