"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.api.docs import problems
from app.api.errors import problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(description="Each dependency: `ok` or why not")


@router.get("/healthz", summary="The process is up", response_model=Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and Redis are reachable",
    response_model=Readiness,
    responses={
        200: {"content": {"application/json": {"example": {
            "status": "ok", "checks": {"database": "ok", "redis": "ok"}}}}},
        **problems(503, descriptions={
            503: "A dependency is unreachable; `checks` says which"}),
    },
)
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}

    async def db() -> None:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await request.app.state.redis.ping()

    for name, check in (("database", db), ("redis", redis)):
        try:
            await asyncio.wait_for(check(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready
            checks[name] = f"unavailable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ok", "checks": checks})
    down = ", ".join(name for name, v in checks.items() if v != "ok")
    return problem(
        503, "not_ready", "Not ready", f"Unreachable: {down}.", instance=request.url.path,
        checks=checks, headers={"Retry-After": "5"},
    )
