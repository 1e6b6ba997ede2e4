"""Housekeeping crons: monthly budget alerts, and deleting old clusters' events."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, text, update

from app.db.models import Cluster, ClusterEvent, Team
from app.domain.status import LIVE_CLUSTER_STATUSES
from app.services import spend
from app.services.limits import effective_limits
from app.services.state import ClusterGone, utcnow
from workers.context import Work, work

log = logging.getLogger("hangar.worker.housekeeping")

ALERT_LEVELS = (80, 100)  # percent of the monthly budget
PURGE_CLUSTERS = 50  # clusters whose events one run deletes, at most
PURGE_BATCH = 2000  # events one statement deletes: short transactions, writers never wait long


async def budget_alerts(ctx: dict[str, Any]) -> int:
    return await send_budget_alerts(work(ctx))


async def send_budget_alerts(w: Work) -> int:
    """A `cluster.notice` (code `monthly_budget`) on every running cluster of a team whose
    month-to-date cost crosses 80 % and then 100 % of its monthly budget, once per level
    and month. Nothing is stopped: the budget refuses new clusters, it does not kill
    running ones. Returns how many teams were alerted."""
    now = utcnow()
    month = now.strftime("%Y-%m")
    async with w.sessionmaker() as session:
        # Only teams with a pod billing now can have crossed a line since the last run.
        teams = (await session.scalars(select(Team).where(text(
            "EXISTS (SELECT 1 FROM clusters c JOIN nodes n ON n.cluster_id = c.id "
            "WHERE c.team_id = teams.id AND n.started_at IS NOT NULL "
            "AND n.terminated_at IS NULL)")))).all()
        due: list[tuple[Team, int, float, float]] = []
        for team in teams:
            budget = effective_limits(team, w.settings)["monthly_budget"].value
            if budget is None or budget <= 0:
                continue
            spent = await spend.month_to_date(session, team.id, now)
            level = max((lv for lv in ALERT_LEVELS if spent >= budget * lv / 100), default=0)
            sent = team.budget_alert_level if team.budget_alert_month == month else 0
            if level > sent:
                due.append((team, level, spent, budget))
    for team, level, spent, budget in due:
        async with w.sessionmaker() as session, session.begin():
            claimed = (await session.execute(
                update(Team).where(Team.id == team.id, or_(
                    Team.budget_alert_month.is_distinct_from(month),
                    Team.budget_alert_level < level))
                .values(budget_alert_month=month, budget_alert_level=level)
                .returning(Team.id))).first()
            running = (await session.scalars(select(Cluster.id).where(
                Cluster.team_id == team.id,
                Cluster.status.in_(LIVE_CLUSTER_STATUSES)))).all()
        if claimed is None:
            continue  # another worker said it
        message = (f"your team has spent ${spent:.2f} of its ${budget:.2f} monthly budget "
                   f"({level} %); " + ("new clusters are refused until next month; running "
                                       "ones are not stopped" if level >= 100 else
                                       "new clusters are refused once it is spent"))
        for cluster_id in running:
            try:
                async with w.locked(cluster_id) as tx:
                    tx.notice(message, code="monthly_budget", level=level,
                              month_to_date_cost=round(spent, 6), monthly_budget=budget)
            except ClusterGone:
                continue
        log.info("team %s at %d %% of its monthly budget", team.name, level)
    return len(due)


async def purge_events(ctx: dict[str, Any]) -> int:
    return await purge_old_events(work(ctx))


async def purge_old_events(w: Work, batch: int = PURGE_BATCH) -> int:
    """Delete the events of clusters that ended more than HANGAR_EVENT_RETENTION_DAYS ago,
    a batch per statement (the cluster row and its cost stay). The cluster is marked first,
    so its event routes answer 410 rather than a partial history; a run cut short is taken
    up by the next. Returns how many events were deleted."""
    cutoff = utcnow() - timedelta(days=w.settings.event_retention_days)
    async with w.sessionmaker() as session, session.begin():
        ids = (await session.scalars(
            update(Cluster)
            .where(Cluster.id.in_(
                select(Cluster.id)
                .where(Cluster.events_purged_at.is_(None), Cluster.terminated_at < cutoff)
                .limit(PURGE_CLUSTERS)))
            .values(events_purged_at=utcnow())
            .returning(Cluster.id))).all()
        # And those marked by a run that did not finish.
        ids = list(ids) + list((await session.scalars(
            select(Cluster.id).where(
                Cluster.events_purged_at.is_not(None),
                Cluster.events_purged_at > utcnow() - timedelta(days=1),
                exists().where(ClusterEvent.cluster_id == Cluster.id))
            .limit(PURGE_CLUSTERS))).all())
    deleted = 0
    for cluster_id in dict.fromkeys(ids):
        while True:
            async with w.sessionmaker() as session, session.begin():
                oldest = select(ClusterEvent.seq).where(
                    ClusterEvent.cluster_id == cluster_id
                ).order_by(ClusterEvent.seq).limit(batch)
                result = await session.execute(delete(ClusterEvent).where(and_(
                    ClusterEvent.cluster_id == cluster_id, ClusterEvent.seq.in_(oldest))))
            deleted += result.rowcount
            if result.rowcount < batch:
                break
    if deleted:
        log.info("deleted %d events of %d clusters past retention", deleted, len(ids))
    return deleted
