"""Deliveries end to end: a receiver on loopback, the API, a worker, events appended the way
the workers append them. Signatures are checked with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import json

from standardwebhooks import Webhook

from tests.support.events import append, finish, make_cluster
from tests.webhooks.conftest import create_webhook, wait_until

DELIVERY_FIELDS = {"event_id", "type", "attempt", "status_code", "error", "at",
                   "next_attempt_at"}


async def test_signed_deliveries_of_every_event(clients, receiver, worker, dispatcher,
                                                db) -> None:
    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url)
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["*"]
    assert hook["status"] == "enabled"

    cid = await make_cluster(db, alpha.team_id)  # event 1, after the webhook: delivered
    await append(db, cid, 3, dispatcher)
    await wait_until(lambda: len(receiver.deliveries) >= 4)

    verifier = Webhook(hook["secret"])
    for n, d in enumerate(receiver.deliveries, start=1):
        payload = verifier.verify(d.body, d.headers)  # raises if the signature is wrong
        assert payload["id"] == d.id == f"{cid}:{n}"
        assert set(payload) == {"id", "type", "timestamp", "data"}
        assert payload["timestamp"] == payload["data"]["at"]
        assert payload["data"]["cluster_id"] == str(cid)
        assert d.headers["content-type"] == "application/json"
    assert [json.loads(d.body)["type"] for d in receiver.deliveries] == \
        ["cluster.pending"] + ["cluster.notice"] * 3

    page = (await alpha.get(f"/webhooks/{hook['id']}/deliveries")).json()
    assert [set(item) for item in page["items"]] == [DELIVERY_FIELDS] * 4
    assert [i["event_id"] for i in page["items"]] == [f"{cid}:{n}" for n in (4, 3, 2, 1)]
    assert all(i["status_code"] == 200 and i["error"] is None and i["attempt"] == 1
               and i["next_attempt_at"] is None for i in page["items"])

    # The cluster's end is delivered too, and nothing twice.
    last = await finish(db, cid, dispatcher)
    await wait_until(lambda: len(receiver.deliveries) >= last)
    await asyncio.sleep(0.3)
    assert receiver.delivered(cid) == list(range(1, last + 1))
    assert max(receiver.counts().values()) == 1


async def test_retries_after_500_carry_the_same_id(clients, receiver, worker, dispatcher,
                                                   db) -> None:
    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url)
    cid = await make_cluster(db, alpha.team_id)
    receiver.statuses[f"{cid}:1"] = [500, 503]  # the first event fails twice, then 200
    await append(db, cid, 2, dispatcher)
    await wait_until(lambda: len(set(receiver.ids())) == 3)

    assert receiver.ids()[:3] == [f"{cid}:1"] * 3, "retried with the same webhook-id"
    assert receiver.delivered(cid) == [1, 2, 3], "the later events waited for the first"
    verifier = Webhook(hook["secret"])
    bodies = {d.body for d in receiver.deliveries if d.id == f"{cid}:1"}
    assert len(bodies) == 1  # the same payload each time; the timestamp header moves
    for d in receiver.deliveries:
        verifier.verify(d.body, d.headers)

    items = (await alpha.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
    first = [i for i in items if i["event_id"] == f"{cid}:1"]  # newest first
    assert [(i["attempt"], i["status_code"]) for i in first] == [(3, 200), (2, 503), (1, 500)]
    assert first[1]["error"] == "HTTP 503" and first[1]["next_attempt_at"] is not None
    assert first[0]["error"] is None and first[0]["next_attempt_at"] is None
    assert "x" * 100 not in json.dumps(items), "the receiver's body is never kept"


async def test_given_up_after_the_last_retry_then_the_next_event(clients, receiver, worker,
                                                                 dispatcher, db) -> None:
    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url)
    cid = await make_cluster(db, alpha.team_id)
    receiver.statuses[f"{cid}:2"] = [500] * 10
    await append(db, cid, 2, dispatcher)
    await wait_until(lambda: 3 in receiver.delivered(cid))

    # The schedule has 3 retries: 4 attempts, then the event is marked failed.
    assert receiver.counts()[f"{cid}:2"] == 4
    assert receiver.delivered(cid) == [1, 2, 3]
    items = (await alpha.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
    gave_up = next(i for i in items if i["event_id"] == f"{cid}:2")
    assert gave_up["attempt"] == 4 and gave_up["error"] == "HTTP 500"
    assert gave_up["next_attempt_at"] is None
    body = (await alpha.get(f"/webhooks/{hook['id']}")).json()
    assert body["status"] == "enabled" and body["failing_since"] is None  # 3 succeeded since


async def test_order_per_cluster_under_concurrency(clients, receiver, worker, dispatcher,
                                                   db) -> None:
    alpha = clients["alpha"]
    await create_webhook(alpha, receiver.url)
    clusters = [await make_cluster(db, alpha.team_id, name=f"c{i}") for i in range(4)]
    # Slow and failing answers scattered over the clusters' events.
    receiver.delays[f"{clusters[0]}:2"] = 0.5
    receiver.statuses[f"{clusters[1]}:3"] = [500]
    receiver.statuses[f"{clusters[2]}:5"] = [502, 500]
    await asyncio.gather(*(append(db, cid, 12, dispatcher, per_tx=(i % 3) + 1)
                           for i, cid in enumerate(clusters)))
    await wait_until(lambda: all(len(receiver.delivered(c)) == 13 for c in clusters))
    for cid in clusters:
        assert receiver.delivered(cid) == list(range(1, 14)), cid
        seqs = [int(i.split(":")[1]) for i in receiver.ids() if i.startswith(str(cid))]
        assert seqs == sorted(seqs), "a later event is never sent before an earlier one"


async def test_filters(clients, receiver, worker, dispatcher, db) -> None:
    alpha = clients["alpha"]
    clusters_only = await create_webhook(alpha, receiver.url + "?f=cluster",
                                         ["cluster.*"])
    ready_only = await create_webhook(alpha, receiver.url + "?f=ready", ["node.ready"])
    assert clusters_only["events"] == ["cluster.*"]
    cid = await make_cluster(db, alpha.team_id)  # cluster.pending
    from app.services.state import locked_cluster

    for type_ in ("node.creating", "node.output", "node.ready", "cluster.ready",
                  "cluster.notice", "node.ready"):
        async with locked_cluster(db, cid, dispatcher) as tx:
            tx.event(type_, {"node": 0})
    await wait_until(lambda: len(receiver.deliveries) >= 5)
    await asyncio.sleep(0.5)  # nothing else arrives
    got: dict[str, list[str]] = {}
    for d in receiver.deliveries:
        payload = json.loads(d.body)
        secret = (clusters_only if payload["type"].startswith("cluster.") else ready_only)
        Webhook(secret["secret"]).verify(d.body, d.headers)
        got.setdefault(payload["type"].split(".")[0], []).append(payload["id"])
    assert got["cluster"] == [f"{cid}:{n}" for n in (1, 5, 6)]
    assert got["node"] == [f"{cid}:{n}" for n in (4, 7)]
    assert len(receiver.deliveries) == 5


async def test_events_before_the_webhook_are_not_sent(clients, receiver, worker, dispatcher,
                                                      db) -> None:
    alpha = clients["alpha"]
    cid = await make_cluster(db, alpha.team_id)
    await append(db, cid, 3, dispatcher)  # events 1-4, before the webhook
    await create_webhook(alpha, receiver.url)
    await append(db, cid, 2, dispatcher)  # 5, 6
    await wait_until(lambda: len(receiver.deliveries) >= 2)
    await asyncio.sleep(0.3)
    assert receiver.delivered(cid) == [5, 6]


async def test_ping(clients, receiver, worker) -> None:
    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url)
    r = await alpha.post(f"/webhooks/{hook['id']}/test")
    assert r.status_code == 200, r.text
    result = r.json()
    assert set(result) == DELIVERY_FIELDS
    assert result["type"] == "webhook.ping" and result["status_code"] == 200
    assert result["error"] is None
    d = receiver.deliveries[-1]
    payload = Webhook(hook["secret"]).verify(d.body, d.headers)
    assert payload["type"] == "webhook.ping" and payload["id"] == result["event_id"] == d.id
    assert payload["data"]["webhook_id"] == hook["id"]

    receiver.default = 500
    result = (await alpha.post(f"/webhooks/{hook['id']}/test")).json()
    assert result["status_code"] == 500 and result["error"] == "HTTP 500"
    items = (await alpha.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert [i["status_code"] for i in items] == [500, 200]


async def test_disabled_after_failing_long_enough(clients, receiver, served, wh_settings,
                                                  dispatcher, db) -> None:
    from tests.support.stack import RunningWorker

    alpha = clients["alpha"]
    hook = await create_webhook(alpha, receiver.url)
    receiver.default = 500
    w = RunningWorker(wh_settings.model_copy(update=dict(
        webhook_disable_after_s=1.0, webhook_retry_schedule="0.3,0.3,0.3,0.3,0.3,0.3")))
    await w.start()
    try:
        cid = await make_cluster(db, alpha.team_id)
        await append(db, cid, 1, dispatcher)

        async def status() -> dict:
            return (await alpha.get(f"/webhooks/{hook['id']}")).json()

        for _ in range(100):
            body = await status()
            if body["status"] == "disabled":
                break
            await asyncio.sleep(0.1)
        assert body["status"] == "disabled", body
        assert body["disabled_at"] and body["failing_since"]
        assert "failed since" in body["disabled_reason"]
        assert body["disabled_reason"].endswith(" s)"), "1 s reads in seconds, not '0 h'"
        attempts = len(receiver.deliveries)
        await append(db, cid, 1, dispatcher)
        await asyncio.sleep(1.5)
        assert len(receiver.deliveries) == attempts, "nothing is sent to a disabled webhook"
        after = await make_cluster(db, alpha.team_id)  # created while disabled: skipped too

        # Enabled again, same id and secret, from then on: the events of its disabled time
        # (and the given-up one) are not sent; the next ones are, in order.
        assert (await clients["beta"].post(f"/webhooks/{hook['id']}/enable")).status_code == 404
        receiver.default = 200
        r = await alpha.post(f"/webhooks/{hook['id']}/enable")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "enabled" and body["id"] == hook["id"]
        assert body["disabled_at"] is None and body["disabled_reason"] is None
        assert body["failing_since"] is None
        assert (await status())["status"] == "enabled"
        tried = {d.id for d in receiver.deliveries}
        expected = [f"{cid}:{i}" for i in await append(db, cid, 2, dispatcher)]
        expected += [f"{after}:{i}" for i in await append(db, after, 1, dispatcher)]
        await wait_until(lambda: set(expected) <= set(receiver.ids()))
        await asyncio.sleep(0.5)
        new = [d for d in receiver.deliveries if d.id not in tried]
        assert sorted(d.id for d in new) == sorted(expected)
        assert [d.id for d in new if d.id.startswith(str(cid))] == expected[:2]  # in order
        verifier = Webhook(hook["secret"])
        for d in new:
            verifier.verify(d.body, d.headers)
        r = await alpha.post(f"/webhooks/{hook['id']}/enable")  # enabled: as it is
        assert r.status_code == 200 and r.json()["status"] == "enabled"
    finally:
        await w.stop()
