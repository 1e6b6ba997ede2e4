"""Per-team limits (settings defaults, per-team overrides): 429 problem+json naming the
limit, nothing created; terminated clusters stop counting."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from app.api.app import create_app
from app.db.models import Cluster, Team
from app.services.teams import create_token
from tests.support.stack import VALID, assert_problem, serve_app

RTX_4090_SECURE = 0.44  # the simulator's on-demand secure price per GPU-hour


@pytest.fixture
async def limited(app_settings, db):
    """The API with small default limits and a client of team 'alpha'."""
    import httpx

    settings = app_settings.model_copy(update=dict(
        max_live_clusters=2, max_live_nodes=3, max_hourly_spend=5 * RTX_4090_SECURE + 0.01,
    ))
    served = await serve_app(create_app(settings))
    async with db() as session:
        _, token = await create_token(session, "alpha")
    async with httpx.AsyncClient(base_url=served.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    await served.stop()


async def _count(db) -> int:
    async with db() as session:
        return await session.scalar(select(func.count()).select_from(Cluster))


async def test_max_live_clusters(limited, db) -> None:
    for i in range(2):
        r = await limited.post("/clusters", json={**VALID, "name": f"c{i}"})
        assert r.status_code == 202, r.text
    r = await limited.post("/clusters", json={**VALID, "name": "c2"})
    body = assert_problem(r, 429, "limit_live_clusters")
    assert body["limit"] == "max_live_clusters" and "limit is 2" in body["detail"]
    assert await _count(db) == 2

    # A terminated cluster no longer counts.
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.name == "c0")
                              .values(status="terminated"))
    assert (await limited.post("/clusters", json={**VALID, "name": "c2"})).status_code == 202


async def test_max_live_nodes(limited, db) -> None:
    assert (await limited.post("/clusters", json={**VALID, "nodes": 2})).status_code == 202
    r = await limited.post("/clusters", json={**VALID, "nodes": 2})
    body = assert_problem(r, 429, "limit_live_nodes")
    assert body["limit"] == "max_live_nodes"
    assert "2 live nodes" in body["detail"] and "limit is 3" in body["detail"]
    assert (await limited.post("/clusters", json={**VALID, "nodes": 1})).status_code == 202


async def test_max_hourly_spend(limited, db) -> None:
    # The limit is 5 GPU-hours' worth: 4 GPUs fit, 4 more do not, 1 more does.
    r = await limited.post("/clusters", json={**VALID, "gpu_count": 4})
    assert r.status_code == 202, r.text
    r = await limited.post("/clusters", json={**VALID, "gpu_count": 4})
    body = assert_problem(r, 429, "limit_hourly_spend")
    assert body["limit"] == "max_hourly_spend"
    assert "spends $1.76/h" in body["detail"] and "$2.21/h" in body["detail"]
    assert (await limited.post("/clusters", json={**VALID, "gpu_count": 1})).status_code == 202


async def test_team_override_beats_the_default(limited, db) -> None:
    async with db() as session, session.begin():
        await session.execute(update(Team).values(max_live_clusters=1))
    assert (await limited.post("/clusters", json=VALID)).status_code == 202
    r = await limited.post("/clusters", json=VALID)
    assert assert_problem(r, 429, "limit_live_clusters")["limit"] == "max_live_clusters"


async def test_max_hourly_cost_of_the_request_is_422(limited) -> None:
    r = await limited.post("/clusters", json={**VALID, "nodes": 2, "max_hourly_cost": 0.5})
    body = assert_problem(r, 422, "max_hourly_cost_exceeded")
    assert body["hourly_rate"] == pytest.approx(2 * RTX_4090_SECURE)
