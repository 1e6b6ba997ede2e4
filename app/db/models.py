"""Tables. The database is the truth; Redis only wakes workers (docs/ARCHITECTURE.md, invariant 1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.domain.status import ClusterStatus, NodeStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB, datetime: TZ}


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # Per-team overrides of the settings' default limits; NULL means the default.
    max_live_nodes: Mapped[int | None]
    max_live_clusters: Mapped[int | None]
    max_hourly_spend: Mapped[float | None]
    monthly_budget: Mapped[float | None]  # USD per UTC month; NULL: HANGAR_TEAM_MONTHLY_BUDGET
    # The budget alerts already sent this month: "YYYY-MM" and the highest level (80, 100).
    budget_alert_month: Mapped[str | None] = mapped_column(String(7))
    budget_alert_level: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16))  # shown to people; not a secret
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    team: Mapped[Team] = relationship(lazy="joined")


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = (
        Index("ix_clusters_team_created", "team_id", "created_at"),
        # The retention sweep's look-up: ended clusters whose events are still there.
        Index("ix_clusters_retention", "terminated_at",
              postgresql_where=text("events_purged_at IS NULL")),
        # GET /clusters?status=..., a team's live clusters (limits, GET /team): only the
        # matching rows, however long the history.
        Index("ix_clusters_team_status_created", "team_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32), default=ClusterStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)

    # The request, as accepted
    gpu_type: Mapped[str] = mapped_column(String(128))  # what the caller typed
    gpu_type_id: Mapped[str] = mapped_column(String(128))  # resolved catalog id
    gpu_count: Mapped[int]
    node_count: Mapped[int]
    cloud_type: Mapped[str] = mapped_column(String(16))
    allocation: Mapped[str] = mapped_column(String(32))
    image: Mapped[str] = mapped_column(String(512))
    container_disk_gb: Mapped[int]
    volume_gb: Mapped[int]
    volume_mount_path: Mapped[str] = mapped_column(String(255))
    ports: Mapped[list[Any]]
    env: Mapped[dict[str, Any]]
    data_center_ids: Mapped[list[Any]]
    setup: Mapped[str] = mapped_column(Text, default="")
    ttl_seconds: Mapped[int | None]
    max_hourly_cost: Mapped[float | None]
    quoted_hourly_rate: Mapped[float | None]  # catalog price at acceptance
    # Where to try creating pods, in order: each entry is a list of data center ids
    # ([] = let the provider choose). A capacity error moves a node to the next entry.
    placements: Mapped[list[Any]]
    # How the nodes reach each other: public, private (global networking) or cluster (one
    # RunPod Instant Cluster); and an existing network volume mounted on every node.
    network: Mapped[str] = mapped_column(String(16), default="public", server_default="public")
    network_volume_id: Mapped[str | None] = mapped_column(String(64))
    # network `cluster`: intent before side effect, as for pods. The Instant Cluster's name
    # (unique per cluster and attempt) is committed before the create; its id once known.
    # The attempt numbers the names; the candidate indexes `placements` (one data center
    # per create).
    provider_cluster_name: Mapped[str | None] = mapped_column(String(128))
    provider_cluster_id: Mapped[str | None] = mapped_column(String(128))
    provider_cluster_attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    provider_cluster_candidate: Mapped[int] = mapped_column(default=0, server_default="0")

    # SSH identity of the cluster: private key encrypted at rest (Fernet)
    ssh_public_key: Mapped[str] = mapped_column(Text)
    ssh_private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # The caller's OpenSSH public keys, installed on every node beside Hangar's own.
    ssh_public_keys: Mapped[list[Any]] = mapped_column(
        default=list, server_default=text("'[]'::jsonb"))
    # The caller's secrets: names in the clear (sorted), values as one encrypted JSON object
    # (HANGAR_SECRET_KEY), set to NULL in the transaction that ends the cluster.
    secret_names: Mapped[list[Any]] = mapped_column(
        default=list, server_default=text("'[]'::jsonb"))
    secrets_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    # Events get per-cluster sequence numbers assigned under this row's lock.
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    ready_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # ready_at + ttl_seconds
    delete_requested_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]
    # When its events were deleted (HANGAR_EVENT_RETENTION_DAYS after it ended): the
    # cluster and its cost stay, its event routes answer 410.
    events_purged_at: Mapped[datetime | None]

    nodes: Mapped[list[Node]] = relationship(
        back_populates="cluster", order_by="Node.index", lazy="selectin"
    )


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        UniqueConstraint("cluster_id", "index", name="uq_nodes_cluster_index"),
        Index("ix_nodes_next_check_at", "next_check_at"),
        Index("ix_nodes_pod_name", "pod_name"),
        # Nodes billing in a window ([start, end) of GET /usage, the month to date): those
        # whose billing ended after the start, or has not ended.
        Index("ix_nodes_billed_until",
              text("COALESCE(terminated_at, 'infinity'::timestamp with time zone)")),
        # Nodes not yet confirmed gone: what bills now, and the live ones.
        Index("ix_nodes_live", "cluster_id", postgresql_where=text("terminated_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    cluster_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    index: Mapped[int]
    status: Mapped[str] = mapped_column(String(32), default=NodeStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)

    # Intent before side effect: pod_name is written before the create call.
    attempt: Mapped[int] = mapped_column(default=0)
    candidate: Mapped[int] = mapped_column(default=0)  # index into the placement candidates
    pod_name: Mapped[str | None] = mapped_column(String(128))
    pod_id: Mapped[str | None] = mapped_column(String(128))
    create_started_at: Mapped[datetime | None]  # this attempt's create call
    provision_started_at: Mapped[datetime | None]  # first attempt: provision_timeout counts from here
    gpu_type_id: Mapped[str | None] = mapped_column(String(128))
    gpu_count: Mapped[int]
    data_center_id: Mapped[str | None] = mapped_column(String(64))
    public_ip: Mapped[str | None] = mapped_column(String(64))
    ssh_port: Mapped[int | None]
    private_ip: Mapped[str | None] = mapped_column(String(64))  # on a private network
    host_key: Mapped[str | None] = mapped_column(Text)  # pinned at first connection
    hourly_rate: Mapped[float | None]

    # Bootstrap progress. The bootstrap timeout counts from `bootstrap_started_at`: when the
    # cluster turned bootstrapping (every node had an address), not when this pod started.
    bootstrap_started_at: Mapped[datetime | None]
    output_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    output_lines: Mapped[int] = mapped_column(Integer, default=0)
    output_dropped: Mapped[int] = mapped_column(Integer, default=0)
    # Output beyond the limits (workers/bootstrap_output.py): bytes skipped unread, and the drop
    # counts as of the last `output_dropped` notice, which comes at most every 10 s.
    output_skipped_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_notice_at: Mapped[datetime | None]
    output_noticed_lines: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    output_noticed_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    exit_code: Mapped[int | None]

    terminate_attempts: Mapped[int] = mapped_column(default=0)
    # When the node is next looked at (written only by `ClusterTx.check_again` and the
    # poll's bulk form of it); the reconciler re-enqueues nodes overdue by a grace period.
    next_check_at: Mapped[datetime | None]
    # One job at a time works on a node: it holds this lease, taken for HANGAR_LEASE_SECONDS
    # when the job starts and given back when it ends (a killed job's lease just lapses).
    lease_owner: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]  # billing start (pod RUNNING)
    ready_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]  # billing stop (pod confirmed gone)

    cluster: Mapped[Cluster] = relationship(back_populates="nodes", lazy="raise")


class ClusterEvent(Base):
    """Append-only. `seq` grows per cluster in commit order (assigned under the cluster lock)."""

    __tablename__ = "cluster_events"

    cluster_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    cluster_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]


# --- webhooks (docs/webhooks.md) ------------------------------------------------------------


class WebhookEndpoint(Base):
    """A team's webhook receiver. The secret is stored encrypted (Fernet, like SSH keys).

    `lease_owner`/`lease_until`: the one delivery job working on this endpoint; `wake_gen`
    moves whenever a job finds the lease taken, so the holder looks again before letting go
    (no wake-up is lost between its last look and its release)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_team_created", "team_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]]  # type patterns: "*", "cluster.*", "node.ready", ...
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Failing without a success since then; past HANGAR_WEBHOOK_DISABLE_AFTER: disabled.
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Delivery scheduling: the sweep re-enqueues endpoints whose next_run_at is overdue.
    next_run_at: Mapped[datetime | None]
    lease_owner: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_until: Mapped[datetime | None]
    wake_gen: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookCursor(Base):
    """Where one endpoint stands in one cluster's events: every event up to `delivered_seq`
    is done (delivered, abandoned after its retries, or not matching the filter). Event ids
    grow per cluster in commit order, so reading `seq > delivered_seq` never skips one.

    A row exists for every (endpoint, cluster) pair where the cluster could still produce
    events the endpoint must get: created with the endpoint for the team's unfinished
    clusters (at their newest event), and for a cluster created later by a database
    trigger on `clusters` (at 0), so a cluster's first event can never slip past. The sweep
    deletes rows of finished clusters once everything is done."""

    __tablename__ = "webhook_cursors"
    __table_args__ = (Index("ix_webhook_cursors_cluster_id", "cluster_id"),)

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    cluster_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The next matching event after delivered_seq: failed attempts so far, not before when.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One delivery attempt (what `GET /webhooks/{id}/deliveries` lists). Pruned by age."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_endpoint_id", "endpoint_id", "id"),
        Index("ix_webhook_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(128))  # "<cluster_id>:<seq>" = webhook-id
    type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    next_attempt_at: Mapped[datetime | None]
