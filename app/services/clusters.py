"""Cluster use cases shared by the API and the workers: accept, delete, read, price."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typing_extensions import TypedDict

from app.api.errors import ApiError
from app.api.schemas import ClusterCreate, ClusterOut, ClusterPage, NodeOut
from app.db.models import Cluster, Node, Team
from app.domain.crypto import encrypt
from app.domain.status import ClusterStatus, NodeStatus, Reason
from app.providers.base import (
    GpuType,
    GpuTypeAmbiguous,
    GpuTypeNotFound,
    Provider,
    ProviderError,
)
from app.services import idempotency
from app.services.dispatch import Dispatcher
from app.services.state import ClusterGone, ClusterTx, locked_cluster, utcnow
from app.settings import Settings
from app.ssh.keys import generate_keypair

AVAILABILITY_RANK = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}
LIVE_CLUSTER = (
    ClusterStatus.PENDING,
    ClusterStatus.PROVISIONING,
    ClusterStatus.BOOTSTRAPPING,
    ClusterStatus.READY,
    ClusterStatus.TERMINATING,
)


@dataclass(frozen=True)
class Quote:
    gpu: GpuType
    hourly_rate: float  # whole cluster, USD per hour


async def resolve_and_quote(provider: Provider, req: ClusterCreate) -> Quote:
    """Resolve the GPU type and price the cluster; 422 with something to act on otherwise."""
    if req.allocation == "spot" and not provider.supports_spot:
        raise ApiError(
            422, "spot_unavailable",
            f"{provider.name}'s current API offers no spot (interruptible) pods; "
            "use allocation 'on-demand', or 'spot-if-available' to fall back to on-demand.",
        )
    try:
        gpu = await provider.resolve_gpu_type(req.gpu_type)
    except GpuTypeAmbiguous as exc:
        raise ApiError(
            422, "ambiguous_gpu_type",
            f"gpu_type {req.gpu_type!r} matches several GPU types; use one of: "
            + "; ".join(exc.candidates),
            candidates=exc.candidates,
        ) from exc
    except GpuTypeNotFound as exc:
        raise ApiError(
            422, "unknown_gpu_type",
            f"gpu_type {req.gpu_type!r} matches no GPU type; the catalog has: "
            + "; ".join(exc.candidates),
            candidates=exc.candidates,
        ) from exc
    except ProviderError as exc:
        raise ApiError(
            503, "provider_unavailable",
            f"Could not read {provider.name}'s GPU catalog ({exc.message}); retry shortly.",
            headers={"Retry-After": "5"},
        ) from exc
    if not gpu.offered_on(req.cloud_type):
        raise ApiError(
            422, "cloud_type_unavailable",
            f"{gpu.id} is not offered on the {req.cloud_type} cloud; try the other cloud_type.",
        )
    max_count = gpu.max_count_secure if req.cloud_type == "secure" else gpu.max_count_community
    if max_count and req.gpu_count > max_count:
        raise ApiError(
            422, "gpu_count_too_high",
            f"{gpu.id} allows at most {max_count} GPUs per pod on the {req.cloud_type} cloud.",
        )
    price = gpu.price(req.cloud_type)
    if price is None:
        raise ApiError(422, "no_price", f"{gpu.id} has no {req.cloud_type} price in the catalog.")
    rate = round(price * req.gpu_count * req.nodes, 6)
    if req.max_hourly_cost is not None and rate > req.max_hourly_cost:
        raise ApiError(
            422, "max_hourly_cost_exceeded",
            f"{req.nodes} node(s) × {req.gpu_count} × {gpu.id} costs ${rate:.4f}/h on the "
            f"{req.cloud_type} cloud, above max_hourly_cost ${req.max_hourly_cost:.4f}/h.",
            hourly_rate=rate,
        )
    return Quote(gpu=gpu, hourly_rate=rate)


def placements_for(gpu: GpuType, pinned: list[str]) -> list[list[str]]:
    """Data centers to try in order. Pinned: exactly those, as one create.
    Otherwise each data center with stock, best stocked first, then anywhere."""
    if pinned:
        return [list(pinned)]
    ranked = sorted(
        (dc for dc in gpu.data_centers if dc.availability in AVAILABILITY_RANK),
        key=lambda dc: AVAILABILITY_RANK[dc.availability],
    )
    return [[dc.id] for dc in ranked] or [[]]


async def check_team_limits(
    session: AsyncSession, settings: Settings, team_id: uuid.UUID, req: ClusterCreate, rate: float
) -> None:
    team = await session.get(Team, team_id)
    assert team is not None
    max_nodes = team.max_live_nodes or settings.max_live_nodes
    max_clusters = team.max_live_clusters or settings.max_live_clusters
    max_spend = team.max_hourly_spend or settings.max_hourly_spend
    live = (
        await session.execute(
            select(func.count(func.distinct(Cluster.id)), func.count(Node.id))
            .select_from(Cluster)
            .join(Node, Node.cluster_id == Cluster.id)
            .where(Cluster.team_id == team_id, Cluster.status.in_(LIVE_CLUSTER))
            .where(Node.status != NodeStatus.TERMINATED)
        )
    ).one()
    spend = await session.scalar(
        select(func.coalesce(func.sum(Cluster.quoted_hourly_rate), 0.0)).where(
            Cluster.team_id == team_id, Cluster.status.in_(LIVE_CLUSTER)
        )
    )
    clusters, nodes = live
    if clusters + 1 > max_clusters:
        raise ApiError(429, "limit_live_clusters",
                       f"Your team has {clusters} live clusters; the limit is {max_clusters}. "
                       "Delete one or ask for a higher limit.", limit="max_live_clusters")
    if nodes + req.nodes > max_nodes:
        raise ApiError(429, "limit_live_nodes",
                       f"Your team has {nodes} live nodes and asks for {req.nodes} more; the limit "
                       f"is {max_nodes}.", limit="max_live_nodes")
    if float(spend or 0) + rate > max_spend:
        raise ApiError(429, "limit_hourly_spend",
                       f"Your team spends ${float(spend or 0):.2f}/h; this cluster adds ${rate:.2f}/h "
                       f"above the limit of ${max_spend:.2f}/h.", limit="max_hourly_spend")


async def create_cluster(
    sessionmaker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    provider: Provider,
    settings: Settings,
    team_id: uuid.UUID,
    req: ClusterCreate,
    *,
    on_accept: Callable[[AsyncSession, Cluster], Awaitable[None]] | None = None,
) -> Cluster:
    """Accept a cluster: rows and first events in one transaction, then wake the workers.

    `on_accept(session, cluster)` runs inside that transaction, after the rows are added:
    what it writes commits with the cluster, and if it raises nothing is created."""
    quote = await resolve_and_quote(provider, req)
    private_key, public_key = generate_keypair(comment=f"hangar-{req.name}")
    async with sessionmaker() as session:
        async with session.begin():
            # Serialise one team's creates so limits cannot be raced past.
            await session.execute(
                select(Team.id).where(Team.id == team_id).with_for_update()
            )
            await check_team_limits(session, settings, team_id, req, quote.hourly_rate)
            cluster = Cluster(
                id=uuid.uuid4(), team_id=team_id, name=req.name, status=ClusterStatus.PENDING,
                gpu_type=req.gpu_type, gpu_type_id=quote.gpu.id, gpu_count=req.gpu_count,
                node_count=req.nodes, cloud_type=req.cloud_type, allocation=req.allocation,
                image=req.image, container_disk_gb=req.container_disk_gb,
                volume_gb=req.volume_gb, volume_mount_path=req.volume_mount_path,
                ports=req.ports, env=req.env, data_center_ids=req.data_center_ids,
                setup=req.setup, ttl_seconds=req.ttl_seconds,
                max_hourly_cost=req.max_hourly_cost, quoted_hourly_rate=quote.hourly_rate,
                placements=placements_for(quote.gpu, req.data_center_ids),
                ssh_public_key=public_key,
                ssh_private_key_enc=encrypt(settings.secret_key.get_secret_value(), private_key),
                last_event_seq=0, created_at=utcnow(),
            )
            cluster.nodes = [
                Node(id=uuid.uuid4(), index=i, status=NodeStatus.PENDING,
                     gpu_count=req.gpu_count, gpu_type_id=quote.gpu.id)
                for i in range(req.nodes)
            ]
            session.add(cluster)
            tx = ClusterTx(session=session, cluster=cluster)
            tx.event("cluster.pending", {"status": "pending", "hourly_rate": quote.hourly_rate})
            if req.allocation == "spot-if-available" and not provider.supports_spot:
                tx.notice(
                    f"{provider.name}'s current API offers no spot pods; using on-demand.",
                    code="spot_fallback",
                )
            for node in cluster.nodes:
                tx.event("node.pending", {"status": "pending", "node": node.index})
                node.next_check_at = tx.now  # overdue for the reconciler unless created
            # One job creates every pending node of the cluster (workers/create.py).
            tx.wake(cluster.nodes[0])
            if on_accept is not None:
                await on_accept(session, cluster)
    await dispatcher.after_commit(tx)
    return cluster


@dataclass(frozen=True)
class Accepted:
    """The answer to `POST /clusters`: a new cluster, or the replay of an earlier answer."""

    status: int
    body: dict[str, Any]
    cluster_id: uuid.UUID | None
    replayed: bool

    @property
    def location(self) -> str | None:
        return f"/clusters/{self.cluster_id}" if self.cluster_id else None


async def create_cluster_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    provider: Provider,
    settings: Settings,
    team_id: uuid.UUID,
    req: ClusterCreate,
    idempotency_key: str | None,
) -> Accepted:
    """`create_cluster` honouring an `Idempotency-Key` (see app/services/idempotency.py)."""
    if idempotency_key is None:
        cluster = await create_cluster(sessionmaker, dispatcher, provider, settings, team_id, req)
        return Accepted(202, to_out(cluster).model_dump(mode="json"), cluster.id, False)

    held = await idempotency.claim(
        sessionmaker, team_id, idempotency_key, idempotency.request_hash(req),
        settings.idempotency_ttl_s,
    )
    if isinstance(held, idempotency.Replay):
        # JSONB keeps no key order: re-serialise so the replay is byte for byte the original.
        original = ClusterOut.model_validate(held.body).model_dump(mode="json")
        return Accepted(held.status, original, held.cluster_id, True)

    body: dict[str, Any] = {}

    async def store_answer(session: AsyncSession, cluster: Cluster) -> None:
        body.update(to_out(cluster).model_dump(mode="json"))
        await idempotency.answer(session, held, 202, body, cluster.id)

    try:
        cluster = await create_cluster(
            sessionmaker, dispatcher, provider, settings, team_id, req, on_accept=store_answer
        )
    except BaseException:
        # Nothing was created (or, if only the wake-up after commit failed, the answer is
        # stored and `release` leaves it): free the key so a retry can use it.
        await idempotency.release(sessionmaker, held)
        raise
    return Accepted(202, body, cluster.id, False)


async def get_cluster(session: AsyncSession, team_id: uuid.UUID, cluster_id: uuid.UUID) -> Cluster:
    """The cluster as ORM objects (for code that changes it); 404 for another team's."""
    cluster = await session.scalar(
        select(Cluster).where(Cluster.id == cluster_id, Cluster.team_id == team_id)
    )
    if cluster is None:
        raise ApiError(404, "not_found", "No cluster with that id belongs to your team.")
    return cluster


async def delete_cluster(
    sessionmaker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    team_id: uuid.UUID,
    cluster_id: uuid.UUID,
) -> Cluster:
    """Idempotent: move to terminating at any stage; the workers confirm every pod gone."""
    gone = ApiError(404, "not_found", "No cluster with that id belongs to your team.")
    try:
        async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
            if tx.cluster.team_id != team_id:
                raise gone  # rolls back: nothing changes for another team's cluster
            tx.request_delete(Reason.DELETED, "deleted by request")
            return tx.cluster
    except ClusterGone:
        raise gone from None


# --- reading and pricing -------------------------------------------------------


def node_cost(node: Node, now: datetime) -> float:
    if node.hourly_rate is None or node.started_at is None:
        return 0.0
    end = node.terminated_at or now
    seconds = max((end - node.started_at).total_seconds(), 0.0)
    return node.hourly_rate * seconds / 3600.0


def is_billing(node: Node) -> bool:
    return node.started_at is not None and node.terminated_at is None and bool(node.hourly_rate)


def to_out(cluster: Cluster, now: datetime | None = None) -> ClusterOut:
    now = now or utcnow()
    nodes = [
        NodeOut(
            index=n.index, status=n.status, reason=n.reason, message=n.message, pod_id=n.pod_id,
            public_ip=n.public_ip, ssh_port=n.ssh_port, gpu_type=n.gpu_type_id,
            gpu_count=n.gpu_count, data_center_id=n.data_center_id, hourly_rate=n.hourly_rate,
            started_at=n.started_at, ready_at=n.ready_at, terminated_at=n.terminated_at,
        )
        for n in cluster.nodes
    ]
    return ClusterOut(
        id=cluster.id, name=cluster.name, status=cluster.status, reason=cluster.reason,
        message=cluster.message, gpu_type=cluster.gpu_type_id,
        gpu_type_requested=cluster.gpu_type, gpu_count=cluster.gpu_count,
        node_count=cluster.node_count, cloud_type=cluster.cloud_type,
        allocation=cluster.allocation, image=cluster.image,
        container_disk_gb=cluster.container_disk_gb, volume_gb=cluster.volume_gb,
        volume_mount_path=cluster.volume_mount_path, ports=cluster.ports, env=cluster.env,
        data_center_ids=cluster.data_center_ids, setup=cluster.setup,
        ttl_seconds=cluster.ttl_seconds, max_hourly_cost=cluster.max_hourly_cost,
        ssh_public_key=cluster.ssh_public_key, nodes=nodes,
        hourly_rate=round(sum(n.hourly_rate or 0 for n in cluster.nodes if is_billing(n)), 6),
        accrued_cost=round(sum(node_cost(n, now) for n in cluster.nodes), 6),
        created_at=cluster.created_at, ready_at=cluster.ready_at,
        expires_at=cluster.expires_at, terminated_at=cluster.terminated_at,
    )


# --- the read path of GET /clusters/{id} and GET /clusters ---------------------------------
#
# One statement per read, run on the driver connection: the cluster's columns and its nodes
# as an array of row values ordered by index. No ORM objects, no per-statement SQLAlchemy
# work (a Core execute costs ~3x the driver's own CPU here), and one snapshot for the cluster
# and its nodes. The responses are the same bytes `to_out(...)` gives (tests compare them).

# ClusterOut / NodeOut field -> column, in response order (a renamed column fails at import).
_CLUSTER_COLUMNS: dict[str, str] = {
    "id": "id", "name": "name", "status": "status", "reason": "reason",
    "message": "message", "gpu_type": "gpu_type_id", "gpu_type_requested": "gpu_type",
    "gpu_count": "gpu_count", "node_count": "node_count", "cloud_type": "cloud_type",
    "allocation": "allocation", "image": "image", "container_disk_gb": "container_disk_gb",
    "volume_gb": "volume_gb", "volume_mount_path": "volume_mount_path", "ports": "ports",
    "env": "env", "data_center_ids": "data_center_ids", "setup": "setup",
    "ttl_seconds": "ttl_seconds", "max_hourly_cost": "max_hourly_cost",
    "ssh_public_key": "ssh_public_key", "created_at": "created_at", "ready_at": "ready_at",
    "expires_at": "expires_at", "terminated_at": "terminated_at",
}
_NODE_COLUMNS: dict[str, str] = {
    "index": "index", "status": "status", "reason": "reason", "message": "message",
    "pod_id": "pod_id", "public_ip": "public_ip", "ssh_port": "ssh_port",
    "gpu_type": "gpu_type_id", "gpu_count": "gpu_count", "data_center_id": "data_center_id",
    "hourly_rate": "hourly_rate", "started_at": "started_at", "ready_at": "ready_at",
    "terminated_at": "terminated_at",
}
_JSON_FIELDS = frozenset(
    f for f, col in _CLUSTER_COLUMNS.items()
    if isinstance(Cluster.__table__.c[col].type, JSONB)
)
_COMPUTED = frozenset({"nodes", "hourly_rate", "accrued_cost"})


def _check_columns() -> None:
    """Every response field is a column or computed, and every column exists."""
    for fields, columns, table in ((ClusterOut.model_fields, _CLUSTER_COLUMNS, Cluster),
                                   (NodeOut.model_fields, _NODE_COLUMNS, Node)):
        missing = set(fields) - set(columns) - (_COMPUTED if table is Cluster else set())
        assert not missing, f"{table.__name__} fields without a column: {missing}"
        for col in columns.values():
            table.__table__.c[col]  # noqa: B018 (KeyError on a renamed column)


_check_columns()

_NODE_FIELDS = tuple(_NODE_COLUMNS)
_SELECT = (
    "SELECT c.team_id, "
    + ", ".join(f'c."{col}"' for col in _CLUSTER_COLUMNS.values())
    + ", ARRAY(SELECT ROW("
    + ", ".join(f'n."{col}"' for col in _NODE_COLUMNS.values())
    + ') FROM nodes n WHERE n.cluster_id = c.id ORDER BY n."index") AS nodes'
    + " FROM clusters c"
)
READ_ONE_SQL = _SELECT + " WHERE c.id = $1"


def _typed_dict(name: str, fields: dict[str, Any]) -> Any:
    return TypedDict(name, fields)  # type: ignore[operator]


def _annotations(model: type[BaseModel], names: Sequence[str] | None = None) -> dict[str, Any]:
    return {k: f.annotation for k, f in model.model_fields.items() if names is None or k in names}


# ClusterOut's JSON is its fields' "key":value pairs in order, so it is assembled from parts
# pydantic encodes with the model's own field types (TypedDicts of them): the parts that
# come from the rows are encoded once per read, the prices at every response.
_OUT_ORDER = tuple(ClusterOut.model_fields)
_AT = _OUT_ORDER.index("nodes")
assert _OUT_ORDER[_AT:_AT + 3] == ("nodes", "hourly_rate", "accrued_cost"), _OUT_ORDER
_HEAD, _TAIL = _OUT_ORDER[:_AT], _OUT_ORDER[_AT + 3:]
# `_SELECT` reads team_id, then the columns in response order (head, tail), then the nodes.
assert tuple(_CLUSTER_COLUMNS) == _HEAD + _TAIL, "keep _CLUSTER_COLUMNS in ClusterOut's order"
_TAIL_AT = 1 + len(_HEAD)
_HEAD_JSON = TypeAdapter(_typed_dict("ClusterHead", _annotations(ClusterOut, _HEAD)))
_TAIL_JSON = TypeAdapter(_typed_dict("ClusterTail", _annotations(ClusterOut, _TAIL)))
_NODES_JSON = TypeAdapter(list[_typed_dict("NodeDict", _annotations(NodeOut))])  # type: ignore[misc]
_FLOAT_JSON = TypeAdapter(float)
_PAGE_JSON = TypeAdapter(_typed_dict("ClusterPageDict", {
    "items": list[_typed_dict("ClusterDict", {  # type: ignore[misc]
        **_annotations(ClusterOut),
        "nodes": list[_typed_dict("NodeDict", _annotations(NodeOut))],  # type: ignore[misc]
    })],
    **_annotations(ClusterPage, ["next"]),
}))


@dataclass(frozen=True, slots=True)
class ClusterRow:
    """A cluster's row and its nodes' rows as read: the response fields that are
    columns, those before the computed ones (nodes, hourly_rate, accrued_cost) and those
    after, and each node's fields. Never mutated."""

    team_id: uuid.UUID
    id: uuid.UUID
    created_at: datetime
    head: dict[str, Any]
    tail: dict[str, Any]
    nodes: list[dict[str, Any]]

    def billing(self) -> tuple[tuple[float | None, datetime | None, datetime | None], ...]:
        return tuple((n["hourly_rate"], n["started_at"], n["terminated_at"]) for n in self.nodes)


@dataclass(frozen=True, slots=True)
class EncodedCluster:
    """A `ClusterRow` kept JSON-encoded (what the read cache holds): the response fields
    that are columns, split around the computed ones (nodes, hourly_rate, accrued_cost),
    and the nodes' rates and billing times, to price them at response time. Immutable."""

    team_id: uuid.UUID
    id: uuid.UUID
    billing: tuple[tuple[float | None, datetime | None, datetime | None], ...]
    head: bytes  # b'{"id":...,"ssh_public_key":"..."' (ClusterOut's fields before nodes)
    nodes: bytes  # b'[{"index":0,...},...]'
    tail: bytes  # b'"created_at":...,"terminated_at":...}' (the fields after the prices)


def row_of(record: Any) -> ClusterRow:
    """A `ClusterRow` from one record of `_SELECT` (JSONB arrives as text on the driver)."""
    values = tuple(record)
    head = dict(zip(_HEAD, values[1:_TAIL_AT], strict=True))
    for name in _JSON_FIELDS:
        if isinstance(head[name], str):
            head[name] = json.loads(head[name])
    tail = dict(zip(_TAIL, values[_TAIL_AT:-1], strict=True))
    nodes = [dict(zip(_NODE_FIELDS, n, strict=True)) for n in values[-1]]
    return ClusterRow(values[0], head["id"], tail["created_at"], head, tail, nodes)


def encode(row: ClusterRow) -> EncodedCluster:
    return EncodedCluster(
        team_id=row.team_id,
        id=row.id,
        billing=row.billing(),
        head=_HEAD_JSON.dump_json(row.head)[:-1],
        nodes=_NODES_JSON.dump_json(row.nodes),
        tail=_TAIL_JSON.dump_json(row.tail)[1:],
    )


async def read_cluster(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> EncodedCluster | None:
    """One cluster with its nodes, encoded (any team's: the caller checks `team_id`)."""
    record = await conn.fetchrow(READ_ONE_SQL, cluster_id)
    return None if record is None else encode(row_of(record))


async def read_cluster_page(
    conn: asyncpg.Connection,
    team_id: uuid.UUID,
    *,
    statuses: list[str] | None,
    name: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ClusterRow]:
    """A team's clusters newest first (ties by id, descending), strictly after the cursor
    `after` = (created_at, id) of the previous page's last cluster; at most `limit`."""
    where, args = ["c.team_id = $1"], [team_id]
    if statuses:
        args.append(list(statuses))
        where.append(f"c.status = ANY(${len(args)}::varchar[])")
    if name:
        args.append(name)
        where.append(f"c.name = ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        ts, cid = f"${len(args) - 1}", f"${len(args)}"
        where.append(f"(c.created_at < {ts} OR (c.created_at = {ts} AND c.id < {cid}))")
    args.append(limit)
    sql = (f"{_SELECT} WHERE {' AND '.join(where)} "
           f"ORDER BY c.created_at DESC, c.id DESC LIMIT ${len(args)}")
    return [row_of(r) for r in await conn.fetch(sql, *args)]


def _prices(billing: Iterable[tuple[float | None, datetime | None, datetime | None]],
            now: datetime) -> tuple[float, float]:
    """hourly_rate and accrued_cost at `now`: the arithmetic of `to_out` (is_billing,
    node_cost), in the same order, so the same floats."""
    hourly = 0
    accrued = 0
    for rate, started, terminated in billing:
        if started is not None and terminated is None and rate:
            hourly += rate
        if rate is not None and started is not None:
            seconds = max(((terminated or now) - started).total_seconds(), 0.0)
            accrued += rate * seconds / 3600.0
    return round(hourly, 6), round(accrued, 6)


def cluster_json(cluster: EncodedCluster, now: datetime | None = None) -> bytes:
    """The body of `GET /clusters/{id}`: the bytes FastAPI writes for `to_out(...)`,
    priced now."""
    hourly, accrued = _prices(cluster.billing, now or utcnow())
    return b"".join((
        cluster.head, b',"nodes":', cluster.nodes,
        b',"hourly_rate":', _FLOAT_JSON.dump_json(hourly),
        b',"accrued_cost":', _FLOAT_JSON.dump_json(accrued), b",", cluster.tail,
    ))


def _out_fields(row: ClusterRow, now: datetime) -> dict[str, Any]:
    """One cluster's response as a dict in ClusterOut's field order, priced at `now`."""
    nodes = row.nodes
    hourly, accrued = _prices(
        ((n["hourly_rate"], n["started_at"], n["terminated_at"]) for n in nodes), now)
    return {**row.head, "nodes": nodes, "hourly_rate": hourly, "accrued_cost": accrued,
            **row.tail}


def page_json(rows: list[ClusterRow], next_url: str | None, now: datetime | None = None) -> bytes:
    """The body of `GET /clusters`: the bytes FastAPI writes for a ClusterPage, priced now
    (one encoding pass for the page)."""
    now = now or utcnow()
    return _PAGE_JSON.dump_json({"items": [_out_fields(r, now) for r in rows], "next": next_url})
