"""Cluster routes: parse, authorize, call the services."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import and_, or_, select

from app.api.deps import CurrentCaller, Session
from app.api.errors import ApiError
from app.api.schemas import ClusterCreate, ClusterOut, ClusterPage, ClusterStatusName
from app.db.models import Cluster
from app.services import clusters as svc

router = APIRouter(prefix="/clusters", tags=["clusters"])

PROBLEM_RESPONSES = {
    401: {"description": "Missing or unknown API token (problem+json)"},
    404: {"description": "No such cluster for your team (problem+json)"},
    422: {"description": "Invalid request, with what to change (problem+json)"},
}


@router.post(
    "",
    status_code=202,
    response_model=ClusterOut,
    summary="Ask for a cluster of GPU pods",
    responses={**PROBLEM_RESPONSES, 429: {"description": "A team limit would be exceeded"}},
)
async def create_cluster(
    body: ClusterCreate, request: Request, response: Response, caller: CurrentCaller
) -> ClusterOut:
    state = request.app.state
    cluster = await svc.create_cluster(
        state.sessionmaker, state.dispatcher, state.provider, state.settings, caller.team_id, body
    )
    response.headers["Location"] = f"/clusters/{cluster.id}"
    return svc.to_out(cluster)


def _cursor(created_at: datetime, cluster_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{cluster_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, cid = raw.split("|")
        return datetime.fromisoformat(ts), uuid.UUID(cid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_cursor",
                       "cursor is not one this API returned; start again without it") from exc


@router.get("", response_model=ClusterPage, summary="Your team's clusters, newest first",
            responses=PROBLEM_RESPONSES)
async def list_clusters(
    request: Request,
    session: Session,
    caller: CurrentCaller,
    status: Annotated[list[ClusterStatusName] | None, Query(description="Filter by status")] = None,
    name: Annotated[str | None, Query(max_length=63, description="Exact cluster name")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ClusterPage:
    q = select(Cluster).where(Cluster.team_id == caller.team_id)
    if status:
        q = q.where(Cluster.status.in_(status))
    if name:
        q = q.where(Cluster.name == name)
    if cursor:
        ts, cid = _parse_cursor(cursor)
        q = q.where(or_(Cluster.created_at < ts, and_(Cluster.created_at == ts, Cluster.id < cid)))
    rows = list(
        (await session.scalars(q.order_by(Cluster.created_at.desc(), Cluster.id.desc())
                               .limit(limit + 1))).all()
    )
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        nxt = str(request.url.include_query_params(cursor=_cursor(last.created_at, last.id)))
    return ClusterPage(items=[svc.to_out(c) for c in rows], next=nxt)


@router.get("/{cluster_id}", response_model=ClusterOut, summary="One cluster with its nodes",
            responses=PROBLEM_RESPONSES)
async def get_cluster(cluster_id: uuid.UUID, session: Session, caller: CurrentCaller) -> ClusterOut:
    return svc.to_out(await svc.get_cluster(session, caller.team_id, cluster_id))


@router.delete("/{cluster_id}", status_code=202, response_model=ClusterOut,
               summary="Tear a cluster down (idempotent)", responses=PROBLEM_RESPONSES)
async def delete_cluster(cluster_id: uuid.UUID, request: Request,
                         caller: CurrentCaller) -> ClusterOut:
    state = request.app.state
    cluster = await svc.delete_cluster(state.sessionmaker, state.dispatcher, caller.team_id,
                                       cluster_id)
    return svc.to_out(cluster)
