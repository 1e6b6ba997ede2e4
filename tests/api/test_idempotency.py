"""`Idempotency-Key` on POST /clusters: replay, new key, reused key, in flight, failures,
expiry. Clusters are counted in the database and pods at the simulator stay at zero
(no worker runs here)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select, update

from app.db.models import Cluster, IdempotencyKey, Team
from app.schemas.cluster_request import ClusterCreate
from app.services.clusters import with_defaults
from app.services.idempotency import request_hash
from tests.support.stack import VALID, assert_problem


async def _clusters(db) -> int:
    async with db() as session:
        return await session.scalar(select(func.count()).select_from(Cluster))


async def test_retry_with_same_key_and_body_replays_the_original(client_for, db) -> None:
    alpha = await client_for("alpha")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await alpha.post("/clusters", json=VALID, headers=key)
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers

    # Same request spelled differently (key order, a default written out): same request.
    again = await alpha.post("/clusters", json={"nodes": 1, **dict(reversed(VALID.items()))},
                             headers=key)
    assert again.status_code == 202
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"] == (
        f"/clusters/{first.json()['id']}"
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert await _clusters(db) == 1


async def test_same_body_with_another_key_creates_another_cluster(client_for, db) -> None:
    alpha = await client_for("alpha")
    a = await alpha.post("/clusters", json=VALID, headers={"Idempotency-Key": "key-a"})
    b = await alpha.post("/clusters", json=VALID, headers={"Idempotency-Key": "key-b"})
    c = await alpha.post("/clusters", json=VALID)  # no key: never deduplicated
    assert {a.status_code, b.status_code, c.status_code} == {202}
    assert len({a.json()["id"], b.json()["id"], c.json()["id"]}) == 3
    assert await _clusters(db) == 3


async def test_same_key_with_another_body_is_422(client_for, db) -> None:
    alpha = await client_for("alpha")
    key = {"Idempotency-Key": "one-request"}
    assert (await alpha.post("/clusters", json=VALID, headers=key)).status_code == 202
    other = await alpha.post("/clusters", json={**VALID, "nodes": 2}, headers=key)
    body = assert_problem(other, 422, "idempotency_key_reused")
    assert "different request body" in body["detail"]
    assert await _clusters(db) == 1


async def test_keys_belong_to_a_team(client_for, db) -> None:
    alpha, beta = await client_for("alpha"), await client_for("beta")
    key = {"Idempotency-Key": "shared-key"}
    a = await alpha.post("/clusters", json=VALID, headers=key)
    b = await beta.post("/clusters", json={**VALID, "nodes": 2}, headers=key)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


async def test_concurrent_retry_while_the_first_is_in_flight_is_409(client_for, sim, db) -> None:
    """The first request waits on a slow catalog read while holding the key; the retry
    arrives meanwhile and gets 409; once the first answers, a retry gets the replay."""
    alpha = await client_for("alpha")
    sim.faults.latency(1.5, endpoint="catalog", count=1)
    key = {"Idempotency-Key": "in-flight"}
    first = asyncio.create_task(alpha.post("/clusters", json=VALID, headers=key))
    await _until_claimed(db, "in-flight")
    second = await alpha.post("/clusters", json=VALID, headers=key)
    problem = assert_problem(second, 409, "idempotency_request_in_flight")
    assert second.headers["retry-after"] == "1"
    assert "retry" in problem["detail"]
    first_response = await first
    assert first_response.status_code == 202, first_response.text
    replay = await alpha.post("/clusters", json=VALID, headers=key)
    assert replay.status_code == 202 and replay.content == first_response.content
    assert await _clusters(db) == 1


async def test_claimed_but_unanswered_key_is_409(client_for, db, app_settings) -> None:
    """Deterministic variant: a claim row with no response yet, as the first request
    leaves it while it creates the cluster."""
    alpha = await client_for("alpha")
    async with db() as session, session.begin():
        team = await session.scalar(select(Team).where(Team.name == "alpha"))
        session.add(IdempotencyKey(
            team_id=team.id, key="held",
            request_hash=request_hash(with_defaults(ClusterCreate(**VALID), app_settings)),
            created_at=func.now(), expires_at=func.now() + func.make_interval(0, 0, 0, 1),
        ))
    r = await alpha.post("/clusters", json=VALID, headers={"Idempotency-Key": "held"})
    assert_problem(r, 409, "idempotency_request_in_flight")
    # A claim abandoned by a process that died (minutes old, still unanswered) is retaken.
    async with db() as session, session.begin():
        await session.execute(update(IdempotencyKey).values(
            created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 10)))
    r = await alpha.post("/clusters", json=VALID, headers={"Idempotency-Key": "held"})
    assert r.status_code == 202, r.text
    assert await _clusters(db) == 1


async def test_failed_create_frees_the_key(client_for, db) -> None:
    alpha = await client_for("alpha")
    key = {"Idempotency-Key": "retry-me"}
    bad = await alpha.post("/clusters", json={**VALID, "gpu_type": "no such gpu"}, headers=key)
    assert_problem(bad, 422, "unknown_gpu_type")
    fixed = await alpha.post("/clusters", json=VALID, headers=key)
    assert fixed.status_code == 202, fixed.text
    async with db() as session:
        rows = (await session.scalars(select(IdempotencyKey))).all()
    assert [(r.key, r.response_status, str(r.cluster_id)) for r in rows] == [
        ("retry-me", 202, fixed.json()["id"])
    ]


async def test_expired_key_is_replaced(client_for, db) -> None:
    alpha = await client_for("alpha")
    key = {"Idempotency-Key": "old"}
    first = await alpha.post("/clusters", json=VALID, headers=key)
    async with db() as session, session.begin():
        row = await session.scalar(select(IdempotencyKey))
        # Written with the configured TTL (24 h by default)...
        assert 86000 < (row.expires_at - row.created_at).total_seconds() <= 86400
        # ...and once past it, the key is new again, even with another body.
        await session.execute(update(IdempotencyKey).values(expires_at=func.now()))
    second = await alpha.post("/clusters", json={**VALID, "nodes": 2}, headers=key)
    assert second.status_code == 202, second.text
    assert second.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in second.headers


async def test_invalid_key_is_422(client_for) -> None:
    alpha = await client_for("alpha")
    for key in ("", "x" * 256, "has space", "tab\tkey"):
        r = await alpha.post("/clusters", json=VALID, headers={"Idempotency-Key": key})
        body = assert_problem(r, 422, "invalid_request")
        assert body["errors"][0]["field"] == "Idempotency-Key"


async def _until_claimed(db, key: str) -> None:
    for _ in range(200):
        async with db() as session:
            if await session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == key)):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the first request never claimed the key")
