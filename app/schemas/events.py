"""A cluster's events as the JSON page of `GET /clusters/{id}/events` returns them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    id: int
    type: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    last_id: int = Field(description="Pass as `after` to continue")
    finished: bool = Field(description="The cluster is terminal and every node terminated")
