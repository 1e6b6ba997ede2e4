"""Team limits: live clusters, live nodes, hourly spend, monthly budget. A team row may
override each default from the settings (NULL: the default; 0 is a limit of zero)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Cluster, Node, Team
from app.domain.errors import LimitExceeded, NotFound
from app.domain.status import LIVE_CLUSTER_STATUSES, NodeStatus
from app.services import spend
from app.services.state import utcnow
from app.settings import Settings

# Limit name -> the setting that gives its default (the team row's column has the name).
LIMIT_SETTINGS = {
    "max_live_clusters": "HANGAR_MAX_LIVE_CLUSTERS",
    "max_live_nodes": "HANGAR_MAX_LIVE_NODES",
    "max_hourly_spend": "HANGAR_MAX_HOURLY_SPEND",
    "monthly_budget": "HANGAR_TEAM_MONTHLY_BUDGET",
}


@dataclass(frozen=True)
class Limit:
    value: float | None  # None: no limit
    source: Literal["team", "default"]  # the team's own override, or the setting


def effective_limits(team: Team, settings: Settings) -> dict[str, Limit]:
    """Each limit of the team, and where it comes from."""
    defaults = {
        "max_live_clusters": settings.max_live_clusters,
        "max_live_nodes": settings.max_live_nodes,
        "max_hourly_spend": settings.max_hourly_spend,
        "monthly_budget": settings.team_monthly_budget,
    }
    out: dict[str, Limit] = {}
    for name, default in defaults.items():
        override = getattr(team, name)
        out[name] = Limit(default, "default") if override is None else Limit(override, "team")
    return out


async def check_team_limits(
    session: AsyncSession, settings: Settings, team_id: uuid.UUID, nodes: int, rate: float
) -> None:
    """`LimitExceeded` if `nodes` more nodes at `rate` USD/h would pass a limit, or the
    month's budget is spent. Call it with the team row locked, so concurrent creates cannot
    race past a limit together."""
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("team")
    limits = effective_limits(team, settings)
    live_clusters, live_nodes = (
        await session.execute(
            select(func.count(func.distinct(Cluster.id)), func.count(Node.id))
            .select_from(Cluster)
            .join(Node, Node.cluster_id == Cluster.id)
            .where(Cluster.team_id == team_id, Cluster.status.in_(LIVE_CLUSTER_STATUSES))
            .where(Node.status != NodeStatus.TERMINATED)
        )
    ).one()
    spending = float(await session.scalar(
        select(func.coalesce(func.sum(Cluster.quoted_hourly_rate), 0.0)).where(
            Cluster.team_id == team_id, Cluster.status.in_(LIVE_CLUSTER_STATUSES)
        )
    ) or 0)
    max_clusters = limits["max_live_clusters"].value
    if max_clusters is not None and live_clusters + 1 > max_clusters:
        raise LimitExceeded(
            "limit_live_clusters",
            f"Your team has {live_clusters} live clusters; the limit is {max_clusters:g}. "
            "Delete one or ask for a higher limit.", limit="max_live_clusters")
    max_nodes = limits["max_live_nodes"].value
    if max_nodes is not None and live_nodes + nodes > max_nodes:
        raise LimitExceeded(
            "limit_live_nodes",
            f"Your team has {live_nodes} live nodes and asks for {nodes} more; the limit "
            f"is {max_nodes:g}.", limit="max_live_nodes")
    max_spend = limits["max_hourly_spend"].value
    if max_spend is not None and spending + rate > max_spend:
        raise LimitExceeded(
            "limit_hourly_spend",
            f"Your team spends ${spending:.2f}/h; this cluster adds ${rate:.2f}/h above the "
            f"limit of ${max_spend:.2f}/h.", limit="max_hourly_spend")
    budget = limits["monthly_budget"].value
    if budget is not None:
        spent = await spend.month_to_date(session, team_id, utcnow())
        if spent >= budget:
            raise LimitExceeded(
                "limit_monthly_budget",
                f"Your team has spent ${spent:.2f} this month (UTC), its monthly budget of "
                f"${budget:.2f}; new clusters wait for next month or a higher budget. "
                "Running clusters are not stopped.", limit="monthly_budget")
