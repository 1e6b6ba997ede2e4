"""Team limits: live clusters, live nodes, hourly spend. A team row may override each
default from the settings (NULL: the default; 0 is a limit of zero)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Cluster, Node, Team
from app.domain.errors import LimitExceeded, NotFound
from app.domain.status import LIVE_CLUSTER_STATUSES, NodeStatus
from app.settings import Settings


@dataclass(frozen=True)
class Limits:
    max_live_clusters: int
    max_live_nodes: int
    max_hourly_spend: float


def effective_limits(team: Team, settings: Settings) -> Limits:
    def pick(override, default):
        return default if override is None else override

    return Limits(
        max_live_clusters=pick(team.max_live_clusters, settings.max_live_clusters),
        max_live_nodes=pick(team.max_live_nodes, settings.max_live_nodes),
        max_hourly_spend=pick(team.max_hourly_spend, settings.max_hourly_spend),
    )


async def check_team_limits(
    session: AsyncSession, settings: Settings, team_id: uuid.UUID, nodes: int, rate: float
) -> None:
    """`LimitExceeded` if `nodes` more nodes at `rate` USD/h would pass a limit. Call it
    with the team row locked, so concurrent creates cannot race past a limit together."""
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
    spend = float(await session.scalar(
        select(func.coalesce(func.sum(Cluster.quoted_hourly_rate), 0.0)).where(
            Cluster.team_id == team_id, Cluster.status.in_(LIVE_CLUSTER_STATUSES)
        )
    ) or 0)
    if live_clusters + 1 > limits.max_live_clusters:
        raise LimitExceeded(
            "limit_live_clusters",
            f"Your team has {live_clusters} live clusters; the limit is "
            f"{limits.max_live_clusters}. Delete one or ask for a higher limit.",
            limit="max_live_clusters")
    if live_nodes + nodes > limits.max_live_nodes:
        raise LimitExceeded(
            "limit_live_nodes",
            f"Your team has {live_nodes} live nodes and asks for {nodes} more; the limit "
            f"is {limits.max_live_nodes}.", limit="max_live_nodes")
    if spend + rate > limits.max_hourly_spend:
        raise LimitExceeded(
            "limit_hourly_spend",
            f"Your team spends ${spend:.2f}/h; this cluster adds ${rate:.2f}/h above the "
            f"limit of ${limits.max_hourly_spend:.2f}/h.", limit="max_hourly_spend")
