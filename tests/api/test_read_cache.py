"""The per-process read cache's rules (app/api/readcache.py), against a real Redis
subscription and real reads: a read that raced an invalidation is not stored, entries
read before a resubscription are not used, entries expire and the cache is bounded, and a
`GET /clusters` page takes only entries whose status its query saw."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy import update

from app.api import readpath
from app.api.hub import EventHub
from app.api.readcache import ClusterReadCache
from app.db.models import Cluster
from app.db.session import driver_connection
from app.services.teams import create_token
from app.settings import Settings
from tests.support.events import make_cluster
from tests.support.stack import eventually

LONG = 30.0  # a max age no test waits for


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[EventHub]:
    hub = EventHub(settings.redis_url, settings.redis_names.events)
    await hub.start()
    await eventually(lambda: hub.connected)
    yield hub
    await hub.stop()


async def _row(db, engine, team_id: uuid.UUID) -> readpath.EncodedCluster:
    cid = await make_cluster(db, team_id, nodes=1)
    async with driver_connection(engine) as conn:
        row = await readpath.read_cluster(conn, cid)
    assert row is not None
    return row


async def test_a_read_that_raced_an_invalidation_is_not_stored(db, engine, hub) -> None:
    async with db() as session:
        token, _ = await create_token(session, "alpha")
    row = await _row(db, engine, token.team_id)
    cache = ClusterReadCache(hub, LONG)
    ticket = cache.ticket(row.id)  # the read begins...
    cache.on_message(f"{row.id} 7")  # ...a commit of that cluster is announced...
    assert not cache.put(row.id, ticket, row)  # ...so what it read may be older
    assert cache.get(row.id) is None
    assert cache.put(row.id, cache.ticket(row.id), row) and cache.get(row.id) is row
    cache.on_message(f"{uuid.uuid4()} 1")  # another cluster: kept
    assert cache.get(row.id) is row
    cache.on_message("not a cluster id")  # names none: may be about any, so all go
    assert cache.get(row.id) is None


async def test_entries_read_before_a_resubscription_are_not_used(db, engine, hub,
                                                                 settings) -> None:
    async with db() as session:
        token, _ = await create_token(session, "alpha")
    row = await _row(db, engine, token.team_id)
    cache = ClusterReadCache(hub, LONG)
    early = cache.ticket(row.id)
    assert cache.put(row.id, cache.ticket(row.id), row)
    epoch = hub.epoch
    redis = aioredis.from_url(settings.redis_url)
    try:
        mine = [c for c in await redis.client_list() if c.get("name") == hub.client_name]
        await redis.client_kill_filter(_id=mine[0]["id"])  # Redis drops the subscription
        await eventually(lambda: not hub.connected or hub.epoch != epoch)
        assert cache.get(row.id) is None  # down, or up again since the entry was read
        await eventually(lambda: hub.connected and hub.epoch != epoch)
    finally:
        await redis.aclose()
    assert not cache.put(row.id, early, row)  # begun under the old subscription
    assert cache.put(row.id, cache.ticket(row.id), row) and cache.get(row.id) is row


async def test_entries_expire_and_the_cache_is_bounded(db, engine, hub) -> None:
    async with db() as session:
        token, _ = await create_token(session, "alpha")
    rows = [await _row(db, engine, token.team_id) for _ in range(3)]
    cache = ClusterReadCache(hub, 0.2, max_entries=2)
    for row in rows:
        assert cache.put(row.id, cache.ticket(row.id), row)
    assert len(cache) == 2 and cache.get(rows[0].id) is None  # the least recently used
    assert cache.get(rows[2].id) is rows[2]
    await asyncio.sleep(0.25)
    assert cache.get(rows[2].id) is None  # older than the max age
    assert ClusterReadCache(hub, 0).ticket(rows[0].id) is None  # off: nothing is stored




async def test_a_page_takes_entries_whose_status_its_query_saw(db, engine, hub) -> None:
    async with db() as session:
        token, _ = await create_token(session, "alpha")
    rows = [await _row(db, engine, token.team_id) for _ in range(3)]
    cache = ClusterReadCache(hub, LONG)
    for row in rows:
        assert cache.put(row.id, cache.ticket(row.id), row)
    loads: list[list[uuid.UUID]] = []

    async def load(ids: list[uuid.UUID]) -> dict[uuid.UUID, readpath.EncodedCluster]:
        loads.append(ids)
        async with driver_connection(engine) as conn:
            return await readpath.read_clusters(conn, ids)

    # All cached with the status the page's query saw: no read.
    page = await cache.get_page([(r.id, "pending") for r in rows], load)
    assert page == rows and loads == []

    # The page's query saw another status for one: that one is read again (and stored).
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.id == rows[1].id).values(
            status="bootstrapping"))
    wanted = [(rows[0].id, "pending"), (rows[1].id, "bootstrapping"), (rows[2].id, "pending")]
    page = await cache.get_page(wanted, load)
    assert [r.id for r in page] == [r.id for r in rows] and loads == [[rows[1].id]]
    assert page[1].status == "bootstrapping" and cache.get(rows[1].id) is page[1]

    # A cluster the read no longer finds is left out; the order is the query's.
    gone = uuid.uuid4()
    page = await cache.get_page([(rows[2].id, "pending"), (gone, "ready"),
                                 (rows[0].id, "pending")], load)
    assert [r.id for r in page] == [rows[2].id, rows[0].id] and loads[-1] == [gone]
