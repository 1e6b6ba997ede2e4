"""Cluster routes: parse, authorize, call the services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import State

from app.api import cursors, etags, readpath
from app.api.deps import CurrentCaller, require_json_body
from app.api.docs import problems
from app.api.readcache import ClusterReadCache
from app.api.routing import LeanRoute
from app.db.session import driver_connection
from app.domain.errors import NotFound
from app.schemas.cluster_request import EXAMPLE_REQUEST, ClusterCreate, ClusterUpdate
from app.schemas.clusters import ClusterOut, ClusterPage, to_out
from app.schemas.enums import ClusterStatusName
from app.services import clusters as svc

router = APIRouter(prefix="/clusters", tags=["clusters"])

# Visible ASCII: keys are compared byte for byte and end up in logs.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


@router.post(
    "",
    status_code=202,
    response_model=ClusterOut,
    summary="Ask for a cluster of GPU pods",
    description=(
        "Validates the request, resolves `gpu_type` against the live catalog, checks the "
        "price against `max_hourly_cost` and your team's limits, and accepts the cluster "
        "(202 + `Location`). Pods are then created and bootstrapped in the background: "
        "follow `GET /clusters/{id}` or its event stream.\n\n"
        "Send an `Idempotency-Key` to make retries safe: the same key with the same body "
        "returns the original response (header `Idempotent-Replayed: true`) for "
        "`HANGAR_IDEMPOTENCY_TTL` seconds (24 h by default); with another body it is a 422; "
        "while the first request is still being processed it is a 409. A request that "
        "fails frees its key."
    ),
    dependencies=[Depends(require_json_body)],
    responses={
        202: {
            "description": "Accepted; the cluster is being provisioned",
            "headers": {
                "Location": {"description": "URL of the cluster", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when this is the stored response to an earlier "
                    "request with the same Idempotency-Key",
                    "schema": {"type": "string"},
                },
            },
        },
        **problems(
            401, 409, 413, 415, 422, 429, 503,
            descriptions={
                409: "A request with this Idempotency-Key is still in flight; retry shortly",
                422: "Invalid request, unknown or ambiguous gpu_type, price above "
                "max_hourly_cost, or an Idempotency-Key reused with another body",
                429: "A team limit would be exceeded (`limit` names it)",
                503: "The GPU catalog could not be read; retry after Retry-After",
            },
        ),
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"examples": {"two-nodes": {
                "summary": "Two RTX 4090 nodes with a setup script",
                "value": EXAMPLE_REQUEST,
            }}}}
        }
    },
)
async def create_cluster(
    body: ClusterCreate,
    request: Request,
    caller: CurrentCaller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Any unique string (a UUID is a good choice), 1-255 visible ASCII "
            "characters; retries with it return the original response.",
        ),
    ] = None,
) -> JSONResponse:
    state = request.app.state
    accepted = await svc.create_cluster_once(
        state.sessionmaker, state.dispatcher, state.provider, state.settings, caller.team_id,
        body, idempotency_key,
    )
    structlog.contextvars.bind_contextvars(cluster_id=str(accepted.cluster_id))
    headers = {"Location": accepted.location} if accepted.location else {}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(accepted.body, status_code=accepted.status, headers=headers)


def _cursor(created_at: datetime, cluster_id: uuid.UUID) -> str:
    return cursors.encode(f"{created_at.isoformat()}|{cluster_id}")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        ts, cid = cursors.decode(cursor).split("|")
        created_at = datetime.fromisoformat(ts)
        if created_at.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return created_at, uuid.UUID(cid)
    except ValueError as exc:
        raise cursors.invalid() from exc


@router.get(
    "",
    response_model=ClusterPage,
    summary="Your team's clusters, newest first",
    description="Filter by `status` (repeat it for several) and exact `name`. Pages hold "
    "`limit` clusters; follow `next` (a URL, or null on the last page).\n\n"
    "The `ETag` is weak: it covers the page but the `accrued_cost` figures, and while a "
    "cluster on the page bills, a 10-second time bucket. Send it as `If-None-Match` to get "
    "a 304 while nothing changed; costs in a revalidated copy are at most 10 s old "
    "(`accrued_cost + hourly_rate x elapsed` is exact).",
    responses={200: {"headers": etags.ETAG_HEADER}, **etags.RESPONSES, **problems(401, 422)},
)
async def list_clusters(
    request: Request,
    caller: CurrentCaller,
    status: Annotated[list[ClusterStatusName] | None, Query(description="Filter by status")] = None,
    name: Annotated[
        str | None,
        Query(max_length=63, pattern=r"^[a-z0-9-]+$", description="Exact cluster name"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Clusters per page")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=200, pattern=cursors.PATTERN,
              description="Opaque; taken from the previous page's `next`"),
    ] = None,
) -> Response:
    after = _parse_cursor(cursor) if cursor else None
    state = request.app.state
    cache: ClusterReadCache = state.read_cache
    async with driver_connection(state.engine) as conn:
        entries = await readpath.read_page(conn, caller.team_id, statuses=status, name=name,
                                           after=after, limit=limit + 1)
        nxt = None
        if len(entries) > limit:
            entries = entries[:limit]
            last = entries[-1]
            nxt = str(request.url.include_query_params(cursor=_cursor(last.created_at, last.id)))
        # The page's order from the query; its clusters from the read cache, the rest read
        # in one statement on the same connection.
        clusters = await cache.get_page([(e.id, e.status) for e in entries],
                                        partial(readpath.read_clusters, conn))
    now = datetime.now(UTC)
    tag = etags.page_etag(clusters, nxt, now)
    if etags.fresh(request, tag):
        return etags.not_modified(tag)
    # The bytes FastAPI would write for ClusterPage, without building the models.
    return Response(readpath.page_json(clusters, nxt, now), media_type="application/json",
                    headers={"ETag": tag})


async def read_cluster(state: State, cluster_id: uuid.UUID) -> readpath.EncodedCluster | None:
    """The cluster's rows, from this process's read cache (app/api/readcache.py) or one
    query; any team's (the caller checks)."""

    async def load() -> readpath.EncodedCluster | None:
        async with driver_connection(state.engine) as conn:
            return await readpath.read_cluster(conn, cluster_id)

    cache: ClusterReadCache = state.read_cache
    return await cache.get_or_load(cluster_id, load)


async def get_cluster(cluster_id: uuid.UUID, request: Request, caller: CurrentCaller) -> Response:
    row = await read_cluster(request.app.state, cluster_id)
    if row is None or row.team_id != caller.team_id:
        raise NotFound()
    now = datetime.now(UTC)
    tag = etags.cluster_etag(row, now)
    if etags.fresh(request, tag):
        return etags.not_modified(tag)
    # Priced now, from the rows; the bytes FastAPI would write for ClusterOut.
    return Response(readpath.cluster_json(row, now), media_type="application/json",
                    headers={"ETag": tag})


# The busiest route: served by a LeanRoute (app/api/routing.py), same contract.
router.add_api_route(
    "/{cluster_id}",
    get_cluster,
    methods=["GET"],
    response_model=ClusterOut,
    summary="One cluster with its nodes, hourly rate and accrued cost",
    description="The `ETag` is weak: it covers the cluster but its `accrued_cost`, and while "
    "a node bills, a 10-second time bucket. Send it as `If-None-Match` to get a 304 while "
    "nothing changed; the cost in a revalidated copy is at most 10 s old "
    "(`accrued_cost + hourly_rate x elapsed` is exact).",
    responses={200: {"headers": etags.ETAG_HEADER}, **etags.RESPONSES,
               **problems(401, 404, 422)},
    route_class_override=LeanRoute,
)


@router.patch(
    "/{cluster_id}",
    response_model=ClusterOut,
    summary="Change a live cluster's TTL",
    description="`ttl_seconds` counts from `ready_at`, as on create: extend, shorten (an "
    "expiry already past tears the cluster down now) or clear it (`null`: no expiry). The "
    "change is recorded as a `cluster.notice` event (code `ttl_changed`). A cluster that "
    "is terminating or has ended: 409.",
    dependencies=[Depends(require_json_body)],
    responses=problems(401, 404, 409, 413, 415, 422, descriptions={
        409: "The cluster is terminating or has ended"}),
)
async def update_cluster(cluster_id: uuid.UUID, body: ClusterUpdate, request: Request,
                         caller: CurrentCaller) -> ClusterOut:
    state = request.app.state
    try:
        cluster = await svc.update_ttl(state.sessionmaker, state.dispatcher, caller.team_id,
                                       cluster_id, body.ttl_seconds)
    finally:
        state.read_cache.invalidate(cluster_id)  # read-your-writes, as for DELETE
    return to_out(cluster)


@router.delete(
    "/{cluster_id}",
    status_code=202,
    response_model=ClusterOut,
    summary="Tear a cluster down (idempotent)",
    description="Moves the cluster to `terminating` at any stage; the workers terminate "
    "every pod and confirm it gone. Deleting again returns the cluster as it is.",
    responses=problems(401, 404, 422),
)
async def delete_cluster(cluster_id: uuid.UUID, request: Request,
                         caller: CurrentCaller) -> ClusterOut:
    state = request.app.state
    try:
        cluster = await svc.delete_cluster(state.sessionmaker, state.dispatcher,
                                           caller.team_id, cluster_id)
    finally:
        # Before answering: this process's next GET reads the change (read-your-writes);
        # other processes hear of it through the commit's notification.
        state.read_cache.invalidate(cluster_id)
    return to_out(cluster)
