"""At least once, never lost: a worker SIGKILLed mid-delivery, a flushed Redis, a receiver
whose address became a refused one after the webhook was created."""

from __future__ import annotations

import asyncio

from standardwebhooks import Webhook

from tests.support.events import append, make_cluster
from tests.support.stack import RunningWorker, WorkerProcesses, clear_namespace
from tests.webhooks.conftest import create_webhook, wait_until


async def test_worker_killed_mid_delivery_delivers_again(clients, receiver, wh_settings,
                                                         dispatcher, db) -> None:
    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url)
    cid = await make_cluster(db, alpha.team_id)
    receiver.delays[f"{cid}:2"] = 60.0  # the first attempt of event 2 never gets an answer
    workers = WorkerProcesses(wh_settings)
    await workers.start()
    try:
        await append(db, cid, 3, dispatcher)
        await wait_until(lambda: f"{cid}:2" in receiver.ids(), timeout=30)
        await asyncio.sleep(0.2)
        await workers.kill()  # mid-delivery: the request is in flight
        assert receiver.delivered(cid) == [1, 2]

        await workers.start()
        await wait_until(lambda: len(receiver.delivered(cid)) == 4, timeout=30)
    finally:
        await workers.stop()
    counts = receiver.counts()
    assert counts[f"{cid}:2"] == 2, "sent again after the kill, with the same webhook-id"
    assert receiver.delivered(cid) == [1, 2, 3, 4]
    verifier = Webhook(hook["secret"])
    for d in receiver.deliveries:
        verifier.verify(d.body, d.headers)
    seqs = [int(i.split(":")[1]) for i in receiver.ids()]
    assert seqs == sorted(seqs), "event 3 waited for event 2"


async def test_redis_flushed_nothing_is_lost(clients, receiver, wh_settings, dispatcher,
                                             db) -> None:
    alpha = clients["alpha"]
    await create_webhook(alpha, receiver.url)
    cid = await make_cluster(db, alpha.team_id)
    await append(db, cid, 2, dispatcher)  # no worker: the announcements reach nobody
    names = wh_settings.redis_names
    await clear_namespace(wh_settings.redis_url, names)  # FLUSHDB, for this deployment
    w = RunningWorker(wh_settings.model_copy(update=dict(webhook_retry_schedule="2")))
    await w.start()
    try:
        await wait_until(lambda: receiver.delivered(cid) == [1, 2, 3])  # by the sweep

        # A retry waiting in Redis (a deferred job) when Redis is flushed.
        receiver.statuses[f"{cid}:4"] = [500]
        await append(db, cid, 1, dispatcher)
        await wait_until(lambda: f"{cid}:4" in receiver.ids())
        await asyncio.sleep(0.2)
        await clear_namespace(wh_settings.redis_url, names)
        await wait_until(lambda: receiver.delivered(cid) == [1, 2, 3, 4] and
                         receiver.counts()[f"{cid}:4"] == 2, timeout=20)
    finally:
        await w.stop()


async def test_the_address_is_checked_again_at_delivery(clients, receiver, wh_settings,
                                                        dispatcher, db) -> None:
    """Created while loopback was allowed (as a name that resolved to a public address
    and now resolves to 127.0.0.1 would be): the worker refuses to connect."""
    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url.replace("127.0.0.1", "localhost"))
    w = RunningWorker(wh_settings.model_copy(update=dict(webhook_allow_private=False)))
    await w.start()
    try:
        cid = await make_cluster(db, alpha.team_id)
        await append(db, cid, 1, dispatcher)

        async def attempts() -> list[dict]:
            return (await alpha.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]

        for _ in range(100):
            items = await attempts()
            if items:
                break
            await asyncio.sleep(0.1)
        assert items, "an attempt was recorded"
        assert items[0]["status_code"] is None
        assert items[0]["error"].startswith("address refused: localhost resolves to")
        assert "loopback" in items[0]["error"]
        assert items[0]["next_attempt_at"] is not None
        assert receiver.deliveries == [], "never connected"
    finally:
        await w.stop()


async def test_purged_events_are_passed_over(clients, receiver, wh_settings, dispatcher,
                                             db) -> None:
    """Events deleted by retention before they could be delivered (an endpoint that was
    down): the cursor moves past them instead of waiting for rows that will never come."""
    from sqlalchemy import text

    alpha = clients["alpha"]
    await create_webhook(alpha, receiver.url)
    cid = await make_cluster(db, alpha.team_id)
    await append(db, cid, 2, dispatcher)  # no worker yet
    async with db() as session, session.begin():
        await session.execute(text("DELETE FROM cluster_events WHERE cluster_id = :c"),
                              {"c": cid})
    w = RunningWorker(wh_settings)
    await w.start()
    try:
        await append(db, cid, 1, dispatcher)  # event 4
        await wait_until(lambda: receiver.delivered(cid) == [4])
        await asyncio.sleep(0.3)
        assert receiver.delivered(cid) == [4]
    finally:
        await w.stop()
