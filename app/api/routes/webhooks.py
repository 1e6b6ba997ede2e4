"""Webhook routes: parse, authorize, call app/webhooks (its domain errors are mapped to
problems once, in app/api/errors.py)."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.api.deps import CurrentCaller, require_json_body
from app.api.docs import problems
from app.schemas.webhooks import (
    EXAMPLE_CREATE,
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPage,
)
from app.webhooks import endpoints as svc
from app.webhooks.transport import make_client

log = logging.getLogger("hangar.api.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

NOT_FOUND = {404: "No webhook with that id belongs to your team"}


async def _announce(request: Request, endpoint_id: uuid.UUID) -> None:
    """Tell the workers' wakers (they cache which endpoints follow which cluster)."""
    try:
        await request.app.state.redis.publish(request.app.state.settings.redis_names.webhooks,
                                              str(endpoint_id))
    except Exception as exc:  # their cache expires anyway; the sweep covers the gap
        log.warning("could not announce a webhook change (%s)", type(exc).__name__)


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    operation_id="create_webhook",
    summary="Register a webhook: signed POSTs of your clusters' events",
    description=(
        "Deliveries are `POST`s of `{\"id\", \"type\", \"timestamp\", \"data\"}` signed the "
        "Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with "
        "the `secret` returned here, **once**. Events committed after this call are "
        "delivered at least once, in order per cluster, retried along "
        "HANGAR_WEBHOOK_RETRY_SCHEDULE. The URL must be https and resolve to public "
        "addresses (a 422 says why not)."
    ),
    dependencies=[Depends(require_json_body)],
    responses={
        201: {"headers": {"Location": {"description": "URL of the webhook",
                                       "schema": {"type": "string"}}}},
        **problems(401, 413, 415, 422, 429, descriptions={
            422: "Invalid request, an unknown event type, or a refused URL (scheme or "
                 "address; `detail` says which)",
            429: "The team has the most webhooks allowed (`limit` = `max_webhooks`)",
        }),
    },
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": {
        "filtered": {"summary": "Cluster status changes and ready nodes",
                     "value": EXAMPLE_CREATE}}}}}},
)
async def create_webhook(body: WebhookCreate, request: Request, caller: CurrentCaller,
                         response: Response) -> WebhookCreated:
    state = request.app.state
    endpoint, secret = await svc.create_endpoint(state.sessionmaker, state.settings,
                                                 caller.team_id, body.url, body.events)
    await _announce(request, endpoint.id)
    response.headers["Location"] = f"/webhooks/{endpoint.id}"
    return WebhookCreated(**svc.to_out(endpoint), secret=secret)


@router.get("", response_model=WebhookPage, operation_id="list_webhooks",
            summary="Your team's webhooks, newest first (never their secrets)",
            responses=problems(401))
async def list_webhooks(request: Request, caller: CurrentCaller) -> WebhookPage:
    items = await svc.list_endpoints(request.app.state.sessionmaker, caller.team_id)
    return WebhookPage(items=[WebhookOut(**svc.to_out(e)) for e in items])


@router.get("/{webhook_id}", response_model=WebhookOut, operation_id="get_webhook",
            summary="One webhook: its filter and whether it is enabled",
            description="`status` is `disabled` once every attempt failed for "
            "HANGAR_WEBHOOK_DISABLE_AFTER (3 days); `disabled_reason` says since when.",
            responses=problems(401, 404, 422, descriptions=NOT_FOUND))
async def get_webhook(webhook_id: uuid.UUID, request: Request,
                      caller: CurrentCaller) -> WebhookOut:
    endpoint = await svc.get_endpoint(request.app.state.sessionmaker, caller.team_id,
                                      webhook_id)
    return WebhookOut(**svc.to_out(endpoint))


@router.post("/{webhook_id}/enable", response_model=WebhookOut, operation_id="enable_webhook",
             summary="Enable a disabled webhook again (same id and secret)",
             description="Deliveries start with the events committed from now on: what "
             "happened while it was disabled is not sent (`GET /clusters` has the state). "
             "The URL is checked again against the address policy (a 422 if it is refused "
             "now). An enabled webhook is answered as it is.",
             responses=problems(401, 404, 422, descriptions=NOT_FOUND))
async def enable_webhook(webhook_id: uuid.UUID, request: Request,
                         caller: CurrentCaller) -> WebhookOut:
    state = request.app.state
    endpoint = await svc.enable_endpoint(state.sessionmaker, state.settings, caller.team_id,
                                         webhook_id)
    await _announce(request, webhook_id)
    return WebhookOut(**svc.to_out(endpoint))


@router.delete("/{webhook_id}", status_code=204, operation_id="delete_webhook",
               summary="Delete a webhook (no further deliveries start)",
               responses=problems(401, 404, 422, descriptions=NOT_FOUND))
async def delete_webhook(webhook_id: uuid.UUID, request: Request,
                         caller: CurrentCaller) -> Response:
    await svc.delete_endpoint(request.app.state.sessionmaker, caller.team_id, webhook_id)
    await _announce(request, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage,
            operation_id="list_webhook_deliveries",
            summary="Recent delivery attempts, newest first",
            description="Each attempt of each event (retries included) and test pings, for "
            "the last 7 days. `next_attempt_at` is set while an event will be retried; an "
            "event given up after its last retry has an `error` and no `next_attempt_at`.",
            responses=problems(401, 404, 422, descriptions=NOT_FOUND))
async def list_webhook_deliveries(
    webhook_id: uuid.UUID, request: Request, caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200, description="Attempts to return")] = 50,
) -> DeliveryPage:
    attempts = await svc.list_attempts(request.app.state.sessionmaker, caller.team_id,
                                       webhook_id, limit)
    return DeliveryPage(items=[
        DeliveryOut(event_id=a.event_id, type=a.type, attempt=a.attempt,
                    status_code=a.status_code, error=a.error, at=a.at,
                    next_attempt_at=a.next_attempt_at)
        for a in attempts])


@router.post("/{webhook_id}/test", response_model=DeliveryOut, operation_id="test_webhook",
             summary="Send a signed `webhook.ping` now and report how it went",
             description="One attempt, no retry, recorded in the deliveries. The answer is "
             "200 whatever the receiver did: `status_code` and `error` tell.",
             responses=problems(401, 404, 422, descriptions=NOT_FOUND))
async def test_webhook(webhook_id: uuid.UUID, request: Request,
                       caller: CurrentCaller) -> DeliveryOut:
    state = request.app.state
    settings = state.settings
    async with make_client(settings.webhook_allow_private, settings.webhook_timeout_s,
                           max_connections=4) as client:
        a = await svc.send_ping(state.sessionmaker, settings, client, caller.team_id,
                                webhook_id)
    return DeliveryOut(event_id=a.event_id, type=a.type, attempt=a.attempt,
                       status_code=a.status_code, error=a.error, at=a.at,
                       next_attempt_at=a.next_attempt_at)
