"""`GET /usage` and `GET /team`: the arithmetic over window edges on rows whose times are
set in the database, CSV, pages, and agreement with the clusters' accrued cost."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.db.models import Cluster, Node, Team
from app.services.state import utcnow
from tests.support.events import make_cluster
from tests.support.stack import assert_problem

T0 = datetime(2026, 10, 1, tzinfo=UTC)


async def billed_cluster(db, team_id: uuid.UUID, spans: list[tuple], *, name: str = "c",
                         gpu: str = "NVIDIA GeForce RTX 4090", created: datetime | None = None,
                         ) -> uuid.UUID:
    """A cluster whose node i ran from spans[i][0] to spans[i][1] (None: still running) at
    spans[i][2] USD/h with spans[i][3] GPUs (default 1)."""
    cid = await make_cluster(db, team_id, nodes=len(spans), name=name)
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.id == cid).values(
            gpu_type_id=gpu, created_at=created or min(s[0] for s in spans),
            status="ready" if any(s[1] is None for s in spans) else "terminated"))
        for i, span in enumerate(spans):
            start, end, rate = span[:3]
            gpus = span[3] if len(span) > 3 else 1
            await session.execute(update(Node).where(
                Node.cluster_id == cid, Node.index == i).values(
                started_at=start, terminated_at=end, hourly_rate=rate, gpu_count=gpus,
                status="ready" if end is None else "terminated"))
    return cid


async def test_usage_counts_only_the_seconds_inside_the_window(client_for, db) -> None:
    alpha = await client_for("alpha")
    # Node 0: 22:00 on Oct 1 to 02:00 on Oct 2 at $1/h (4 h, across midnight).
    # Node 1: Sep 30 23:00 to Oct 1 01:00 at $3/h with 2 GPUs (across the window's start).
    await billed_cluster(db, alpha.team_id, [
        (T0 + timedelta(hours=22), T0 + timedelta(hours=26), 1.0),
        (T0 - timedelta(hours=1), T0 + timedelta(hours=1), 3.0, 2),
    ], created=T0 - timedelta(hours=2))
    r = await alpha.get("/usage", params={"from": T0.isoformat(),
                                          "to": (T0 + timedelta(days=2)).isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["from"].startswith("2026-10-01T00:00:00") and body["group_by"] == "day"
    days = {i["key"]: i for i in body["items"]}
    assert set(days) == {"2026-10-01", "2026-10-02"}
    # Oct 1: node 1's hour inside (3 $) + node 0's 2 h before midnight (2 $).
    assert days["2026-10-01"]["cost"] == pytest.approx(5.0)
    assert days["2026-10-01"]["gpu_hours"] == pytest.approx(2 * 1 + 1 * 2)
    assert days["2026-10-01"]["node_hours"] == pytest.approx(3.0)
    assert days["2026-10-02"]["cost"] == pytest.approx(2.0)
    assert body["total"]["cost"] == pytest.approx(7.0)
    # A window inside one node's run: only those seconds.
    r = await alpha.get("/usage", params={
        "from": (T0 + timedelta(hours=23)).isoformat(),
        "to": (T0 + timedelta(hours=23, minutes=30)).isoformat(), "group_by": "gpu_type"})
    assert [(i["key"], i["cost"]) for i in r.json()["items"]] == [
        ("NVIDIA GeForce RTX 4090", pytest.approx(0.5))]


async def test_usage_grouped_by_cluster_pages_and_csv(client_for, db) -> None:
    alpha = await client_for("alpha")
    ids = []
    for i in range(5):
        ids.append(await billed_cluster(db, alpha.team_id, [
            (T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1), 1.0 + i)], name=f"c{i}"))
    window = {"from": "2026-10-01", "to": "2026-11-01", "group_by": "cluster", "limit": 2}
    seen, url = [], "/usage"
    params: dict | None = window
    while url:
        page = (await alpha.get(url, params=params)).json()
        seen += page["items"]
        assert page["total"]["cost"] == pytest.approx(1 + 2 + 3 + 4 + 5)
        url, params = page["next"], None
    assert sorted(i["key"] for i in seen) == sorted(str(c) for c in ids)
    assert {i["cluster_name"] for i in seen} == {f"c{i}" for i in range(5)}

    r = await alpha.get("/usage", params=window, headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["cluster_id", "cluster_name", "cost_usd", "gpu_hours", "node_hours"]
    assert len(rows) == 6  # every cluster, not one page
    assert sum(float(row[2]) for row in rows[1:]) == pytest.approx(15.0)
    by_day = await alpha.get("/usage", params={"from": "2026-10-01", "to": "2026-10-02"},
                             headers={"Accept": "text/csv;q=0.9, application/json;q=0.1"})
    assert list(csv.reader(io.StringIO(by_day.text)))[0][0] == "day"
    refused = await alpha.get("/usage", headers={"Accept": "text/csv;q=0, application/xml"})
    assert_problem(refused, 406, "not_acceptable")


async def test_usage_agrees_with_accrued_cost_to_the_cent(client_for, db) -> None:
    alpha = await client_for("alpha")
    now = utcnow()
    cid = await billed_cluster(db, alpha.team_id, [
        (now - timedelta(hours=5, seconds=17), now - timedelta(hours=1, seconds=3), 0.69),
        (now - timedelta(minutes=95, seconds=41), None, 2.39, 4),  # still running
    ])
    other = await billed_cluster(db, alpha.team_id, [
        (now - timedelta(days=3, seconds=5), now - timedelta(days=2, hours=7), 1.19)])
    accrued = 0.0
    for c in (cid, other):
        accrued += (await alpha.get(f"/clusters/{c}")).json()["accrued_cost"]
    r = await alpha.get("/usage", params={
        "from": (now - timedelta(days=5)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(), "group_by": "cluster"})
    assert round(r.json()["total"]["cost"], 2) == round(accrued, 2)
    per = {i["key"]: i["cost"] for i in r.json()["items"]}
    assert round(per[str(other)], 2) == round(
        (await alpha.get(f"/clusters/{other}")).json()["accrued_cost"], 2)


async def test_usage_refuses_bad_windows(client_for) -> None:
    alpha = await client_for("alpha")
    assert_problem(await alpha.get("/usage", params={"from": "2026-10-02", "to": "2026-10-01"}),
                   422, "invalid_window")
    assert_problem(await alpha.get("/usage", params={"from": "2025-01-01", "to": "2026-10-01"}),
                   422, "invalid_window")
    assert_problem(await alpha.get("/usage", params={"group_by": "week"}), 422)
    assert_problem(await alpha.get("/usage", params={"from": "yesterday"}), 422)


async def test_another_teams_spend_is_not_counted(client_for, db) -> None:
    alpha, beta = await client_for("alpha"), await client_for("beta")
    await billed_cluster(db, beta.team_id, [(T0, T0 + timedelta(hours=1), 9.0)])
    r = await alpha.get("/usage", params={"from": "2026-10-01", "to": "2026-11-01"})
    assert r.json()["items"] == [] and r.json()["total"]["cost"] == 0


async def test_team_page(client_for, db, app_settings) -> None:
    alpha = await client_for("alpha")
    now = utcnow()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # Ran from before the month until an hour ago at $2/h: this month's part only.
    await billed_cluster(db, alpha.team_id, [
        (start - timedelta(hours=10), now - timedelta(hours=1), 2.0)])
    await billed_cluster(db, alpha.team_id, [(now - timedelta(minutes=30), None, 4.0)])
    async with db() as session, session.begin():
        await session.execute(update(Team).where(Team.id == alpha.team_id).values(
            monthly_budget=10_000.0, max_live_nodes=0))
    body = (await alpha.get("/team")).json()
    assert body["name"] == "alpha" and body["month"] == now.strftime("%Y-%m")
    assert body["limits"]["max_live_nodes"] == {"value": 0, "source": "team"}
    assert body["limits"]["max_live_clusters"] == {
        "value": app_settings.max_live_clusters, "source": "default"}
    assert body["limits"]["monthly_budget"] == {"value": 10_000.0, "source": "team"}
    assert body["live_clusters"] == 1 and body["live_nodes"] == 1
    assert body["hourly_spend"] == pytest.approx(4.0)
    hours = (now - timedelta(hours=1) - start).total_seconds() / 3600
    expected = 2.0 * hours + 4.0 * 0.5
    assert body["month_to_date_cost"] == pytest.approx(expected, abs=0.01)
    assert body["budget_left"] == pytest.approx(10_000.0 - expected, abs=0.01)


async def test_team_limits_set_from_the_command_line(client_for, app_settings) -> None:
    import asyncio
    import sys

    from tests.support.stack import settings_env

    alpha = await client_for("alpha")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "teams", "set-limits", "--team", "alpha",
        "--monthly-budget", "250", "--max-live-nodes", "0",
        env=settings_env(app_settings), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "monthly_budget 250 (team)" in out.decode()
    limits = (await alpha.get("/team")).json()["limits"]
    assert limits["monthly_budget"] == {"value": 250.0, "source": "team"}
    assert limits["max_live_nodes"] == {"value": 0, "source": "team"}
    assert_problem(await alpha.post("/clusters", json={"name": "x", "gpu_type": "4090"}),
                   429, "limit_live_nodes")
