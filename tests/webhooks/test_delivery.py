"""Deliveries end to end: a receiver on loopback, the API, a worker, events appended the way
the workers append them. Signatures are checked with the `standardwebhooks` library."""

from __future__ import annotations

import asyncio
import json

from standardwebhooks import Webhook

from tests.events.helpers import append, finish, make_cluster
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
