"""Monthly budgets (refused creates, alerts at 80 % and 100 %, nothing killed) and event
retention (deleted in batches while other clusters keep writing; 410 afterwards)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from app.db.models import Cluster, ClusterEvent, Team
from app.services.state import utcnow
from tests.spend.test_usage import billed_cluster
from tests.support.events import append, make_cluster
from tests.support.stack import VALID, assert_problem, events
from workers.housekeeping import purge_old_events, send_budget_alerts


async def test_budget_refuses_creates_and_alerts_once_per_level(hangar, worker, db) -> None:
    now = utcnow()
    # $1/h for the last 10 minutes and running: about $0.17 this month, growing.
    running = await billed_cluster(db, hangar.team_id, [(now - timedelta(minutes=10), None, 1.0)])
    async with db() as session, session.begin():
        await session.execute(update(Team).where(Team.id == hangar.team_id)
                              .values(monthly_budget=0.2))
    w = await worker.work()
    assert await send_budget_alerts(w) == 1  # past 80 %
    assert await send_budget_alerts(w) == 0  # said once
    async with db() as session, session.begin():
        await session.execute(update(Team).where(Team.id == hangar.team_id)
                              .values(monthly_budget=0.1))
    r = await hangar.post("/clusters", json=VALID)
    body = assert_problem(r, 429, "limit_monthly_budget")
    assert body["limit"] == "monthly_budget"
    assert await send_budget_alerts(w) == 1  # past 100 %
    assert await send_budget_alerts(w) == 0
    notices = [e["data"] for e in await events(hangar, running)
               if e["data"].get("code") == "monthly_budget"]
    assert [n["level"] for n in notices] == [80, 100]
    assert "not stopped" in notices[1]["message"]
    cluster = (await hangar.get(f"/clusters/{running}")).json()
    assert cluster["status"] == "ready"  # running clusters are not killed
    team = (await hangar.get("/team")).json()
    assert team["budget_left"] == 0 and team["monthly_budget"] == 0.1


async def test_setting_gives_every_team_a_budget(served_with, db) -> None:
    from tests.support.stack import team_client

    served, _ = await served_with(team_monthly_budget=0.0)
    async with await team_client(db, served.url, "gamma") as gamma:
        assert_problem(await gamma.post("/clusters", json=VALID), 429, "limit_monthly_budget")
        team = (await gamma.get("/team")).json()
        assert team["limits"]["monthly_budget"] == {"value": 0.0, "source": "default"}


async def test_old_events_are_deleted_in_batches_while_writers_work(
        hangar, worker, db, app_settings) -> None:
    w = await worker.work()
    old = await make_cluster(db, hangar.team_id, name="old")
    await append(db, old, 120, None, per_tx=40)
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.id == old).values(
            status="terminated", terminated_at=utcnow() - timedelta(days=31)))
    recent = await make_cluster(db, hangar.team_id, name="recent")
    live = await make_cluster(db, hangar.team_id, name="live")
    assert (await hangar.get(f"/clusters/{old}/events")).status_code == 200

    async def writer() -> int:
        for _ in range(20):
            await append(db, live, 5, None)
            await asyncio.sleep(0)
        return 100

    written, deleted = await asyncio.gather(writer(), purge_old_events(w, batch=25))
    assert deleted == 121 and written == 100  # cluster.pending + 120 notices
    async with db() as session:
        counts = dict((await session.execute(
            select(ClusterEvent.cluster_id, func.count()).group_by(ClusterEvent.cluster_id)
        )).all())
    assert old not in counts and counts[recent] == 1 and counts[live] == 101
    for accept in ("application/json", "text/event-stream"):
        gone = await hangar.get(f"/clusters/{old}/events", headers={"Accept": accept})
        assert_problem(gone, 410, "events_purged")
    still = await hangar.get(f"/clusters/{old}")
    assert still.status_code == 200 and still.json()["name"] == "old"
    assert await purge_old_events(w) == 0  # nothing left
