"""Invariant 5: event ids grow per cluster in commit order, so a reader of `seq > last`
never skips an event, and the stream delivers every event once, in id order, however many
transactions append at the same time."""

from __future__ import annotations

import asyncio
import random

from app.services import events as svc
from app.services.state import locked_cluster
from tests.support.events import make_cluster, open_stream, read_events

WRITERS, PER_WRITER = 8, 12


async def _writer(db, cid, dispatcher, k: int, rng: random.Random) -> None:
    """Transactions that hold the cluster lock a little while: the others queue on it."""
    for i in range(PER_WRITER):
        async with locked_cluster(db, cid, dispatcher) as tx:
            for _ in range(rng.randint(1, 3)):
                tx.notice("concurrent", writer=k, i=i)
            await asyncio.sleep(rng.random() * 0.004)
        await asyncio.sleep(rng.random() * 0.002)


async def test_concurrent_appends_arrive_in_id_order_none_missing(db, teams,
                                                                  dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    rng = random.Random(5)
    async with open_stream(alpha.client, cid) as (_, events):
        assert [e.id for e in await read_events(events, count=1)] == [1]
        await asyncio.gather(*(_writer(db, cid, dispatcher, k, random.Random(rng.random()))
                               for k in range(WRITERS)))
        async with db() as session:
            last = (await svc.stream_state(session, cid)).last_seq
        got = await read_events(events, count=last - 1, timeout=20)
    assert [e.id for e in got] == list(range(2, last + 1))
    for k in range(WRITERS):  # each writer's events in the order it wrote them
        mine = [e.data["i"] for e in got if e.data.get("writer") == k]
        assert mine == sorted(mine) and set(mine) == set(range(PER_WRITER))


async def test_committed_events_are_always_a_prefix(db, teams) -> None:
    """While transactions append concurrently, a reader polling `seq > last` only ever
    sees the next ids: never a later id while an earlier one is still uncommitted."""
    cid = await make_cluster(db, teams["alpha"].id)
    done = asyncio.Event()
    seen: list[int] = [1]
    reads = 0

    async def reader() -> None:
        nonlocal reads
        while not done.is_set() or reads == 0:
            async with db() as session:
                rows = await svc.events_after(session, cid, seen[-1], 1000)
            reads += 1
            for r in rows:
                assert r.seq == seen[-1] + 1, f"saw {r.seq} after {seen[-1]}: a gap"
                seen.append(r.seq)
            await asyncio.sleep(0)

    rng = random.Random(7)
    read_task = asyncio.create_task(reader())
    await asyncio.gather(*(_writer(db, cid, None, k, random.Random(rng.random()))
                           for k in range(WRITERS)))
    done.set()
    await read_task
    async with db() as session:
        last = (await svc.stream_state(session, cid)).last_seq
        rows = await svc.events_after(session, cid, seen[-1], 1000)
    seen += [r.seq for r in rows]
    assert seen == list(range(1, last + 1))
    assert reads > 20, "the reader ran alongside the writers"


async def test_a_later_transaction_waits_for_the_earlier_one(db, teams) -> None:
    """The two-transaction case of invariant 5: B starts while A holds the lock with an
    uncommitted event; B's event gets the next id and becomes visible only after A's."""
    cid = await make_cluster(db, teams["alpha"].id)
    a_holding, release_a = asyncio.Event(), asyncio.Event()

    async def tx_a() -> int:
        async with locked_cluster(db, cid, None) as tx:
            seq = tx.event("cluster.notice", {"message": "A"})
            a_holding.set()
            await release_a.wait()
        return seq

    async def tx_b() -> int:
        await a_holding.wait()
        async with locked_cluster(db, cid, None) as tx:
            return tx.event("cluster.notice", {"message": "B"})

    task_a, task_b = asyncio.create_task(tx_a()), asyncio.create_task(tx_b())
    await a_holding.wait()
    await asyncio.sleep(0.3)  # B is blocked on the row lock by now
    async with db() as session:
        assert await svc.events_after(session, cid, 1, 10) == []  # neither is visible
    assert not task_b.done()
    release_a.set()
    seq_a, seq_b = await asyncio.gather(task_a, task_b)
    assert (seq_a, seq_b) == (2, 3)
    async with db() as session:
        rows = await svc.events_after(session, cid, 1, 10)
    assert [(r.seq, r.data["message"]) for r in rows] == [(2, "A"), (3, "B")]
