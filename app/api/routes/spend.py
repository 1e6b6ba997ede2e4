"""What the calling team spends and may spend: `GET /team` and `GET /usage`."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from app.api.deps import CurrentCaller, Session
from app.api.docs import problems
from app.api.errors import ApiError
from app.api.negotiation import best_match
from app.db.models import Team
from app.schemas.spend import LimitOut, TeamOut, UsageItem, UsageOut, UsageTotal
from app.services import spend
from app.services.limits import effective_limits
from app.services.state import utcnow

router = APIRouter(tags=["spend"])

MAX_WINDOW = timedelta(days=400)
CSV = "text/csv"


def _money(x: float) -> float:
    return round(x, 6)  # micro-dollars, as accrued_cost


@router.get(
    "/team",
    response_model=TeamOut,
    operation_id="get_team",
    summary="Your team: limits, what runs now, month-to-date cost and budget",
    responses=problems(401),
)
async def get_team(request: Request, caller: CurrentCaller, session: Session) -> TeamOut:
    settings = request.app.state.settings
    team = await session.get(Team, caller.team_id)
    now = utcnow()
    hourly, live_clusters, live_nodes = await spend.right_now(session, caller.team_id)
    spent = await spend.month_to_date(session, caller.team_id, now)
    limits = effective_limits(team, settings)
    budget = limits["monthly_budget"].value
    return TeamOut(
        name=team.name,
        limits={k: LimitOut(value=v.value, source=v.source) for k, v in limits.items()},
        live_clusters=live_clusters, live_nodes=live_nodes, hourly_spend=_money(hourly),
        month=now.strftime("%Y-%m"), month_to_date_cost=_money(spent),
        monthly_budget=budget,
        budget_left=None if budget is None else _money(max(budget - spent, 0.0)),
    )


# A date or date-time in ISO 8601 (RFC 3339 and a plain YYYY-MM-DD).
ISO_TIME = r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"


def _utc(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or time as UTC (no zone: UTC)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_window",
                       f"`{name}` is not an ISO 8601 date or time (e.g. 2026-11-01 or "
                       "2026-11-01T12:00:00Z).") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_cursor",
                       "cursor is not one this API returned; start again without it") from exc


@router.get(
    "/usage",
    response_model=UsageOut,
    operation_id="get_usage",
    summary="Cost and GPU-hours of your team over a window, per day, cluster or GPU type",
    description=(
        "Over `[from, to)` (UTC; default: this month), from each node's billed rate and the "
        "seconds it ran inside the window (a node running across an edge counts only its "
        "seconds inside; running nodes count until now). Over a window that covers them, "
        "the costs agree with the clusters' `accrued_cost`. `Accept: text/csv` gives CSV "
        "(one row per group, every page). Grouped by cluster, pages hold `limit` clusters; "
        "follow `next`."
    ),
    responses={200: {"content": {CSV: {}}}, **problems(401, 406, 422)},
)
async def get_usage(
    request: Request,
    caller: CurrentCaller,
    session: Session,
    start: Annotated[str | None, Query(
        alias="from", pattern=ISO_TIME, max_length=40,
        description="Start of the window: an ISO 8601 date or time (UTC when no zone is "
        "given); default: the start of this month")] = None,
    end: Annotated[str | None, Query(
        alias="to", pattern=ISO_TIME, max_length=40,
        description="End of the window, excluded (default: the end of `from`'s month)")] = None,
    group_by: Annotated[Literal["day", "cluster", "gpu_type"], Query()] = "day",
    limit: Annotated[int, Query(ge=1, le=1000, description="Clusters per page")] = 200,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    kind = best_match(accept, ["application/json", CSV])
    if kind is None:
        raise ApiError(406, "not_acceptable", "This route answers application/json or text/csv.")
    now = utcnow()
    since = _utc(start, "from") or spend.month_start(now)
    until = _utc(end, "to") or spend.next_month(spend.month_start(since))
    if until <= since:
        raise ApiError(422, "invalid_window", "`to` must be after `from`.")
    if until - since > MAX_WINDOW:
        raise ApiError(422, "invalid_window",
                       f"The window is longer than {MAX_WINDOW.days} days; ask for less.")
    paged = group_by == "cluster" and kind != CSV
    rows = await spend.usage(
        session, caller.team_id, since, until, group_by, now,
        after=_after(cursor) if (cursor and paged) else None,
        limit=limit + 1 if paged else None)
    nxt = None
    if paged and len(rows) > limit:
        rows = rows[:limit]
        nxt = str(request.url.include_query_params(cursor=_cursor(rows[-1].key)))
    if paged:  # the window's total over every page
        total = await spend.total(session, caller.team_id, since, until, now)
    else:
        total = spend.UsageRow("total", sum(r.cost for r in rows),
                               sum(r.gpu_hours for r in rows), sum(r.node_hours for r in rows))
    if kind == CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        key = {"day": "day", "cluster": "cluster_id", "gpu_type": "gpu_type"}[group_by]
        writer.writerow([key, *(["cluster_name"] if group_by == "cluster" else []),
                         "cost_usd", "gpu_hours", "node_hours"])
        for r in rows:
            writer.writerow([r.key, *([r.cluster_name] if group_by == "cluster" else []),
                             f"{r.cost:.6f}", f"{r.gpu_hours:.6f}", f"{r.node_hours:.6f}"])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Vary": "Accept"})
    body = UsageOut(
        start=since, end=until, group_by=group_by, next=nxt,
        items=[UsageItem(key=r.key, cluster_name=r.cluster_name, cost=_money(r.cost),
                         gpu_hours=round(r.gpu_hours, 6), node_hours=round(r.node_hours, 6))
               for r in rows],
        total=UsageTotal(cost=_money(total.cost), gpu_hours=round(total.gpu_hours, 6),
                         node_hours=round(total.node_hours, 6)),
    )
    return JSONResponse(body.model_dump(mode="json", by_alias=True), headers={"Vary": "Accept"})
