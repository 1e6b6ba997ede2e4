"""The cron's pruning (app/webhooks/cron.py: prune): cursors of finished clusters go once
nothing is left to deliver, or at once when their endpoint is disabled (enabling it again
starts from then on); live clusters' cursors and undelivered events stay; attempts older
than 7 days go."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from app.webhooks import cron
from tests.support.events import append, finish, make_cluster
from tests.webhooks.conftest import create_webhook


async def cursors(db) -> set[tuple[str, uuid.UUID]]:
    async with db() as session:
        rows = await session.execute(text(
            "SELECT e.url, w.cluster_id FROM webhook_cursors w "
            "JOIN webhook_endpoints e ON e.id = w.endpoint_id"))
        return {(url.rsplit("/", 1)[-1], cid) for url, cid in rows}


async def test_prune(clients, engine, db, receiver) -> None:
    alpha = clients["alpha"]
    hooks = {name: await create_webhook(alpha, f"{receiver.url}/{name}")
             for name in ("done", "behind", "disabled")}
    ended = await make_cluster(db, alpha.team_id)
    live = await make_cluster(db, alpha.team_id)
    await append(db, live, 2, None)
    last = await finish(db, ended, None)
    async with db() as session, session.begin():
        await session.execute(text(
            "UPDATE webhook_cursors SET delivered_seq = :last WHERE cluster_id = :ended "
            "AND endpoint_id = :done"), {"last": last, "ended": ended,
                                         "done": uuid.UUID(hooks["done"]["id"])})
        await session.execute(text(
            "UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = 'test' "
            "WHERE id = :id"), {"id": uuid.UUID(hooks["disabled"]["id"])})
        await session.execute(text(
            "INSERT INTO webhook_attempts (endpoint_id, event_id, type, attempt, at) VALUES "
            "(:id, 'old', 'cluster.notice', 1, now() - interval '8 days'), "
            "(:id, 'new', 'cluster.notice', 1, now() - interval '6 days')"),
            {"id": uuid.UUID(hooks["done"]["id"])})
    assert len(await cursors(db)) == 6

    assert await cron.prune(engine) == (2, 1)
    assert await cursors(db) == {("done", live), ("behind", live), ("disabled", live),
                                 ("behind", ended)}
    async with db() as session:
        kept = (await session.execute(text("SELECT event_id FROM webhook_attempts"))).all()
    assert [k for (k,) in kept] == ["new"]
    assert await cron.prune(engine) == (0, 0)
