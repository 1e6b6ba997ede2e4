"""What a team spends: cost and GPU-hours over a window, month to date, and right now.

Every figure comes from the rows: each node's billed rate (`hourly_rate`, RunPod's
`Pod.cost`) over the seconds it ran (`started_at` until `terminated_at`, or now), the same
arithmetic as a cluster's `accrued_cost` (app/domain/billing.py). A node that runs across a
window's edge counts only its seconds inside the window. The sums run in Postgres in one
statement, so a team with a long history costs one scan of its nodes in the window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.status import LIVE_CLUSTER_STATUSES

GroupBy = Literal["day", "cluster", "gpu_type"]

# The team's nodes that billed inside [start, end): their clamped span and billing.
_SPANS = """
    SELECT c.id AS cluster_id, c.name AS cluster_name, c.gpu_type_id AS gpu_type,
           n.gpu_count, n.hourly_rate,
           GREATEST(n.started_at, :start) AS s,
           LEAST(COALESCE(n.terminated_at, :now), :end) AS e
    FROM clusters c JOIN nodes n ON n.cluster_id = c.id
    WHERE c.team_id = :team AND c.created_at < :end
      AND n.hourly_rate IS NOT NULL AND n.started_at IS NOT NULL AND n.started_at < :end
      -- ix_nodes_billed_until: only the nodes whose billing had not ended by the start
      AND COALESCE(n.terminated_at, 'infinity'::timestamp with time zone) > :start
"""
_SECONDS = "GREATEST(EXTRACT(EPOCH FROM (e - s)), 0)"
# Written out (not a parameter), so the planner can use the team-and-status index.
_LIVE = "(" + ", ".join(f"'{s}'" for s in LIVE_CLUSTER_STATUSES) + ")"


@dataclass(frozen=True)
class UsageRow:
    key: str  # the day (YYYY-MM-DD), the cluster id, or the GPU type
    cost: float  # USD
    gpu_hours: float
    node_hours: float
    cluster_name: str | None = None  # when grouped by cluster


def month_start(now: datetime) -> datetime:
    """00:00 UTC on the first day of `now`'s month."""
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


async def total(session: AsyncSession, team_id: uuid.UUID, start: datetime, end: datetime,
                now: datetime) -> UsageRow:
    """Cost and hours of the team in [start, end), running nodes counted until `now`."""
    row = (await session.execute(text(f"""
        SELECT COALESCE(SUM(hourly_rate * {_SECONDS} / 3600.0), 0),
               COALESCE(SUM(gpu_count * {_SECONDS} / 3600.0), 0),
               COALESCE(SUM({_SECONDS} / 3600.0), 0)
        FROM ({_SPANS}) spans
    """), {"team": team_id, "start": start, "end": end, "now": now})).one()
    return UsageRow("total", float(row[0]), float(row[1]), float(row[2]))


async def month_to_date(session: AsyncSession, team_id: uuid.UUID, now: datetime) -> float:
    """Every node's billed seconds this UTC month so far, running ones included (USD)."""
    return (await total(session, team_id, month_start(now), now, now)).cost


async def usage(
    session: AsyncSession, team_id: uuid.UUID, start: datetime, end: datetime,
    group_by: GroupBy, now: datetime, *, after: str | None = None, limit: int | None = None,
) -> list[UsageRow]:
    """Cost and hours per day, cluster or GPU type over [start, end), in key order; with
    `after`/`limit` a page of it (keys strictly after `after`)."""
    params: dict[str, Any] = {"team": team_id, "start": start, "end": end, "now": now}
    if group_by == "day":
        # Split each span at midnight (UTC): one row per day it touches.
        sql = f"""
            SELECT to_char(d.day, 'YYYY-MM-DD') AS key, NULL AS cluster_name,
                   SUM(hourly_rate * sec / 3600.0), SUM(gpu_count * sec / 3600.0),
                   SUM(sec / 3600.0)
            FROM ({_SPANS}) spans,
                 LATERAL generate_series(date_trunc('day', s AT TIME ZONE 'UTC'),
                                         date_trunc('day', e AT TIME ZONE 'UTC'),
                                         interval '1 day') AS d(day),
                 LATERAL (SELECT GREATEST(EXTRACT(EPOCH FROM (
                     LEAST(e, (d.day + interval '1 day') AT TIME ZONE 'UTC')
                     - GREATEST(s, d.day AT TIME ZONE 'UTC'))), 0) AS sec) part
            WHERE e > s
            GROUP BY d.day
        """
    elif group_by == "cluster":
        sql = f"""
            SELECT cluster_id::text AS key, MIN(cluster_name) AS cluster_name,
                   SUM(hourly_rate * {_SECONDS} / 3600.0), SUM(gpu_count * {_SECONDS} / 3600.0),
                   SUM({_SECONDS} / 3600.0)
            FROM ({_SPANS}) spans
            GROUP BY cluster_id
        """
    else:
        sql = f"""
            SELECT gpu_type AS key, NULL AS cluster_name,
                   SUM(hourly_rate * {_SECONDS} / 3600.0), SUM(gpu_count * {_SECONDS} / 3600.0),
                   SUM({_SECONDS} / 3600.0)
            FROM ({_SPANS}) spans
            GROUP BY gpu_type
        """
    sql = f"SELECT * FROM ({sql}) grouped"
    if after is not None:
        sql += " WHERE key > :after"
        params["after"] = after
    sql += " ORDER BY key"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    rows = (await session.execute(text(sql), params)).all()
    return [UsageRow(r[0], float(r[2]), float(r[3]), float(r[4]), r[1]) for r in rows]


async def right_now(session: AsyncSession, team_id: uuid.UUID) -> tuple[float, int, int]:
    """(USD per hour of every node billing now, live clusters, their live nodes). A failed
    cluster still tearing down is not live, but its pods bill until they are gone."""
    # Nodes not confirmed gone (`terminated_at IS NULL`, ix_nodes_live) are few however long
    # the team's history; so are its live clusters (ix_clusters_team_live).
    row = (await session.execute(text(f"""
        SELECT COALESCE(SUM(n.hourly_rate) FILTER (WHERE n.started_at IS NOT NULL), 0),
               COUNT(n.id) FILTER (WHERE c.status IN {_LIVE}),
               (SELECT COUNT(*) FROM clusters l WHERE l.team_id = :team
                                                  AND l.status IN {_LIVE})
        FROM nodes n JOIN clusters c ON c.id = n.cluster_id
        WHERE c.team_id = :team AND n.terminated_at IS NULL
    """), {"team": team_id})).one()
    return float(row[0]), int(row[2]), int(row[1])
