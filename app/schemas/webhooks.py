"""Request and response models of the webhook routes (shared by the API and its clients)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.webhooks import filters
from app.webhooks.urls import MAX_URL_LENGTH

EXAMPLE_CREATE = {"url": "https://hooks.example.com/hangar", "events": ["cluster.*", "node.ready"]}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"examples": [EXAMPLE_CREATE]})

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH, description=(
        "Where deliveries are POSTed: https (http only where HANGAR_WEBHOOK_ALLOW_PRIVATE "
        "is on); its host must resolve to public addresses"))]
    events: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
        Field(max_length=filters.MAX_PATTERNS, description=(
            "Event types to deliver: exact types (`node.ready`), `cluster.*`, `node.*` or "
            "`*`. Omitted or empty: every event, `node.output` lines included")),
    ] = None

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str] | None) -> list[str]:
        try:
            return filters.normalize(v)
        except filters.InvalidFilter as exc:
            raise ValueError(str(exc)) from None


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    status: Literal["enabled", "disabled"] = Field(
        description="`disabled` after failing for HANGAR_WEBHOOK_DISABLE_AFTER (3 days): "
        "nothing is delivered any more")
    created_at: datetime
    failing_since: datetime | None = Field(
        description="First failed attempt since the last success, or null")
    last_success_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="`whsec_...`: verifies signatures. Shown only here, once")


class WebhookPage(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    event_id: str = Field(description="`<cluster_id>:<event id>`, as `webhook-id`")
    type: str
    attempt: int = Field(description="1 for the first attempt of this event")
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None = Field(description="Why the attempt failed, or null on success")
    at: datetime
    next_attempt_at: datetime | None = Field(
        description="When it is retried; null when delivered or given up")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
