"""Webhook endpoints of a team: create (URL checked, secret shown once), list, read,
enable again after they were disabled, delete, their recent delivery attempts, and the
test ping. Raises domain errors
(app/domain/errors.py), which the API maps to HTTP once."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Team, WebhookAttempt, WebhookEndpoint
from app.domain.crypto import decrypt, encrypt
from app.domain.errors import InvalidRequest, LimitExceeded, NotFound
from app.settings import Settings
from app.webhooks import filters, metrics, sender, signing, urls

log = logging.getLogger("hangar.webhooks")

MAX_ENDPOINTS_PER_TEAM = 20
PING_TYPE = "webhook.ping"


def not_found() -> NotFound:
    return NotFound("webhook")


# A cursor for every cluster of the team that may still produce events, at its newest
# event: the endpoint gets what commits after it. (Clusters created later get theirs from
# the trigger on `clusters`, see the migration.)
_CURSORS_FOR_LIVE_CLUSTERS = text("""
    INSERT INTO webhook_cursors (endpoint_id, cluster_id, delivered_seq, attempts)
    SELECT :endpoint_id, c.id, c.last_event_seq, 0 FROM clusters c
    WHERE c.team_id = :team_id AND (
        c.status NOT IN ('terminated', 'failed')
        OR EXISTS (SELECT 1 FROM nodes n WHERE n.cluster_id = c.id AND n.status <> 'terminated'))
    ON CONFLICT DO NOTHING
""")


async def create_endpoint(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, team_id: uuid.UUID,
    url: str, events: list[str] | None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned here only). A refused URL or an unknown event
    type is an InvalidRequest; one endpoint too many, LimitExceeded."""
    try:
        patterns = filters.normalize(events)
    except filters.InvalidFilter as exc:
        raise InvalidRequest("invalid_event_filter", str(exc)) from None
    try:
        await urls.check_url(url, settings.webhook_allow_private)  # DNS: before the transaction
    except urls.RefusedUrl as exc:
        raise InvalidRequest("webhook_url_refused", f"url refused: {exc}") from None
    secret = signing.new_secret()
    async with sessionmaker() as session, session.begin():
        # The team's lock, as cluster creation takes it: a cluster is either seen here (and
        # gets a cursor below) or created after this commits (and gets one by trigger).
        await session.execute(select(Team.id).where(Team.id == team_id).with_for_update())
        count = await session.scalar(
            select(func.count()).select_from(WebhookEndpoint)
            .where(WebhookEndpoint.team_id == team_id))
        if (count or 0) >= MAX_ENDPOINTS_PER_TEAM:
            raise LimitExceeded(
                "limit_webhooks", f"Your team has {MAX_ENDPOINTS_PER_TEAM} webhooks, the most "
                "allowed; delete one first.", limit="max_webhooks")
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(), team_id=team_id, url=url, events=patterns,
            secret_enc=encrypt(settings.secret_key.get_secret_value(), secret),
            created_at=datetime.now(UTC), wake_gen=0,
        )
        session.add(endpoint)
        await session.flush()
        await session.execute(_CURSORS_FOR_LIVE_CLUSTERS,
                              {"endpoint_id": endpoint.id, "team_id": team_id})
    return endpoint, secret


async def list_endpoints(sessionmaker: async_sessionmaker[AsyncSession],
                         team_id: uuid.UUID) -> list[WebhookEndpoint]:
    async with sessionmaker() as session:
        return list((await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.team_id == team_id)
            .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
        )).all())


async def _owned(session: AsyncSession, team_id: uuid.UUID,
                 endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.team_id != team_id:
        raise not_found()
    return endpoint


async def get_endpoint(sessionmaker: async_sessionmaker[AsyncSession], team_id: uuid.UUID,
                       endpoint_id: uuid.UUID) -> WebhookEndpoint:
    async with sessionmaker() as session:
        return await _owned(session, team_id, endpoint_id)


async def delete_endpoint(sessionmaker: async_sessionmaker[AsyncSession], team_id: uuid.UUID,
                          endpoint_id: uuid.UUID) -> None:
    """Delete it with its cursors and attempts. A delivery in flight may still arrive."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            delete(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.team_id == team_id)
            .returning(WebhookEndpoint.id))
        if result.first() is None:
            raise not_found()


# Enabled again from now on: every cursor moves to its cluster's newest event, retries
# forgotten. (Cursors of clusters that finished meanwhile were pruned: app/webhooks/cron.py.)
_CURSORS_FROM_NOW = text("""
    UPDATE webhook_cursors w SET delivered_seq = c.last_event_seq, attempts = 0,
        next_attempt_at = NULL
    FROM clusters c
    WHERE w.endpoint_id = :endpoint_id AND c.id = w.cluster_id
""")


async def enable_endpoint(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                          team_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Enable a disabled endpoint again, keeping its id and secret. Deliveries start with
    the events committed from now on: what happened while it was disabled is not sent
    (`GET /clusters` has the state). Its URL is checked again (the policy or the name's
    addresses may have changed): refused, an InvalidRequest. An enabled endpoint is left
    as it is."""
    endpoint = await get_endpoint(sessionmaker, team_id, endpoint_id)
    if endpoint.disabled_at is None:
        return endpoint
    try:
        await urls.check_url(endpoint.url, settings.webhook_allow_private)
    except urls.RefusedUrl as exc:
        raise InvalidRequest("webhook_url_refused", f"url refused: {exc}") from None
    async with sessionmaker() as session, session.begin():
        endpoint = await _owned(session, team_id, endpoint_id)
        await session.refresh(endpoint, with_for_update=True)
        if endpoint.disabled_at is None:  # enabled meanwhile
            return endpoint
        await session.execute(_CURSORS_FROM_NOW, {"endpoint_id": endpoint_id})
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        endpoint.next_run_at = None
    log.info("webhook %s enabled again", endpoint_id)
    return endpoint


async def list_attempts(sessionmaker: async_sessionmaker[AsyncSession], team_id: uuid.UUID,
                        endpoint_id: uuid.UUID, limit: int) -> list[WebhookAttempt]:
    """The endpoint's most recent attempts, newest first."""
    async with sessionmaker() as session:
        await _owned(session, team_id, endpoint_id)
        return list((await session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
            .order_by(WebhookAttempt.id.desc()).limit(limit)
        )).all())


async def send_ping(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                    client: httpx.AsyncClient, team_id: uuid.UUID,
                    endpoint_id: uuid.UUID) -> WebhookAttempt:
    """POST a signed `webhook.ping` to the endpoint now (once, no retry) and record it."""
    endpoint = await get_endpoint(sessionmaker, team_id, endpoint_id)
    key = signing.secret_key(decrypt(settings.secret_key.get_secret_value(),
                                     endpoint.secret_enc))
    msg_id = f"ping_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    data: dict[str, Any] = {"webhook_id": str(endpoint.id), "at": now.isoformat()}
    outcome = await sender.post(client, endpoint.url, key, msg_id,
                                signing.payload(msg_id, PING_TYPE, data),
                                settings.webhook_timeout_s)
    metrics.observe_attempt("ping", outcome.seconds)
    attempt = WebhookAttempt(endpoint_id=endpoint.id, event_id=msg_id, type=PING_TYPE,
                             attempt=1, status_code=outcome.status_code, error=outcome.error,
                             at=datetime.now(UTC), next_attempt_at=None)
    async with sessionmaker() as session, session.begin():
        session.add(attempt)
    return attempt


def status_of(endpoint: WebhookEndpoint) -> str:
    return "disabled" if endpoint.disabled_at is not None else "enabled"


def to_out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The endpoint as the API shows it: never the secret."""
    return {
        "id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events),
        "status": status_of(endpoint), "created_at": endpoint.created_at,
        "failing_since": endpoint.failing_since, "last_success_at": endpoint.last_success_at,
        "disabled_at": endpoint.disabled_at, "disabled_reason": endpoint.disabled_reason,
    }
