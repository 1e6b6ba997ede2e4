"""Cluster use cases: accept (once per Idempotency-Key), look up, delete."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Cluster, Node, Team
from app.domain.errors import Conflict, NotFound
from app.domain.secrets import encrypt_secrets
from app.domain.status import ClusterStatus, NodeStatus, Reason
from app.providers.base import Provider
from app.schemas.cluster_request import ClusterCreate
from app.schemas.clusters import ClusterOut, to_out
from app.services import idempotency
from app.services.dispatch import Dispatcher
from app.services.limits import check_team_limits
from app.services.networks import plan_network
from app.services.quotes import resolve_and_quote
from app.services.state import ClusterGone, ClusterTx, locked_cluster, utcnow
from app.settings import Settings
from app.ssh.keys import generate_keypair


def with_defaults(req: ClusterCreate, settings: Settings) -> ClusterCreate:
    """The request as it will be carried out: the deployment's defaults filled in."""
    return req if req.image else req.model_copy(update={"image": settings.default_image})


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
    req = with_defaults(req, settings)
    quote = await resolve_and_quote(provider, req)
    plan = await plan_network(provider, req, quote.gpu)
    private_key, public_key = generate_keypair(comment=f"hangar-{req.name}")
    async with sessionmaker() as session:
        async with session.begin():
            # Serialise one team's creates so limits cannot be raced past.
            await session.execute(
                select(Team.id).where(Team.id == team_id).with_for_update()
            )
            await check_team_limits(session, settings, team_id, req.nodes, quote.hourly_rate)
            cluster = Cluster(
                id=uuid.uuid4(), team_id=team_id, name=req.name, status=ClusterStatus.PENDING,
                gpu_type=req.gpu_type, gpu_type_id=quote.gpu.id, gpu_count=req.gpu_count,
                node_count=req.nodes, cloud_type=req.cloud_type, allocation=req.allocation,
                image=req.image, container_disk_gb=req.container_disk_gb,
                volume_gb=req.volume_gb, volume_mount_path=req.volume_mount_path,
                ports=req.ports, env=req.env, data_center_ids=req.data_center_ids,
                setup=req.setup, ttl_seconds=req.ttl_seconds,
                max_hourly_cost=req.max_hourly_cost, quoted_hourly_rate=quote.hourly_rate,
                placements=plan.placements,
                network=req.network, network_volume_id=req.network_volume_id,
                provider_cluster_attempt=0, provider_cluster_candidate=0,
                ssh_public_key=public_key,
                ssh_private_key_enc=settings.keyring.encrypt(private_key),
                ssh_public_keys=req.ssh_public_keys,
                secret_names=sorted(req.secrets),
                secrets_enc=encrypt_secrets(settings.keyring, req.secret_values()),
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
                # Due now: one job (node 0's) creates every pending node of the cluster
                # (workers/create.py); the reconciler covers the others if it is lost. An
                # Instant Cluster is node 0's alone (workers/instant/): the others wait.
                lead = node.index == 0
                tx.check_again(node, 0 if lead or req.network != "cluster" else None,
                               wake=lead)
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
    req = with_defaults(req, settings)
    if idempotency_key is None:
        cluster = await create_cluster(sessionmaker, dispatcher, provider, settings, team_id, req)
        return Accepted(202, to_out(cluster).model_dump(mode="json"), cluster.id, False)

    held = await idempotency.claim(
        sessionmaker, team_id, idempotency_key, idempotency.request_hash(req, settings.keyring),
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
    """The cluster as ORM objects (for code that changes it); `NotFound` for another team's."""
    cluster = await session.scalar(
        select(Cluster).where(Cluster.id == cluster_id, Cluster.team_id == team_id)
    )
    if cluster is None:
        raise NotFound()
    return cluster


async def update_ttl(
    sessionmaker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    team_id: uuid.UUID,
    cluster_id: uuid.UUID,
    ttl_seconds: int | None,
) -> Cluster:
    """Extend, shorten or clear a live cluster's TTL; `Conflict` once it is ending or ended."""
    try:
        async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
            c = tx.cluster
            if c.team_id != team_id:
                raise NotFound()
            status = ClusterStatus(c.status)
            if status.is_terminal or status == ClusterStatus.TERMINATING:
                raise Conflict(
                    "cluster_ended",
                    f"The cluster is {status}; its TTL can no longer change. Create a new "
                    "cluster instead.")
            tx.set_ttl(ttl_seconds)
            return c
    except ClusterGone:
        raise NotFound() from None


async def delete_cluster(
    sessionmaker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    team_id: uuid.UUID,
    cluster_id: uuid.UUID,
) -> Cluster:
    """Idempotent: move to terminating at any stage; the workers confirm every pod gone."""
    try:
        async with locked_cluster(sessionmaker, cluster_id, dispatcher) as tx:
            if tx.cluster.team_id != team_id:
                raise NotFound()  # rolls back: nothing changes for another team's cluster
            tx.request_delete(Reason.DELETED, "deleted by request")
            return tx.cluster
    except ClusterGone:
        raise NotFound() from None
