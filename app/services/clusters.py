"""Cluster use cases shared by the API and the workers: accept, delete, read, price."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.errors import ApiError
from app.api.schemas import ClusterCreate, ClusterOut, NodeOut
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
                tx.wake(node)
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
