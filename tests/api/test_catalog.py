"""When RunPod's catalog cannot be read: reads serve the last good one, marked stale; a
create answers 503 with Retry-After at once (two quick attempts, then none for a while)."""

from __future__ import annotations

import asyncio

from tests.support.stack import VALID, assert_problem, team_client


async def test_stale_catalog_for_reads_and_fast_503_for_creates(served_with, db, sim) -> None:
    served, _ = await served_with(catalog_ttl_s=0.3)
    async with await team_client(db, served.url, "alpha") as alpha:
        fresh = await alpha.get("/gpu-types", params={"name": "4090"})
        assert fresh.status_code == 200 and "age" not in fresh.headers
        assert [g["stale"] for g in fresh.json()] == [False]
        sim.faults.server_error(503, endpoint="list_gpus")
        await asyncio.sleep(0.4)  # the cached catalog is now past its TTL

        before = sim.count("list_gpus")
        stale = await alpha.get("/gpu-types", params={"name": "4090"})
        assert stale.status_code == 200, stale.text
        assert [g["id"] for g in stale.json()] == [g["id"] for g in fresh.json()]
        assert [g["stale"] for g in stale.json()] == [True]
        assert int(stale.headers["age"]) >= 0
        assert sim.count("list_gpus") == before + 2  # two quick attempts, no more

        r = await alpha.post("/clusters", json=VALID)
        body = assert_problem(r, 503, "provider_unavailable")
        assert int(r.headers["retry-after"]) > 0 and "retry" in body["detail"]
        again = await alpha.post("/clusters", json=VALID)
        assert again.status_code == 503
        assert sim.count("list_gpus") == before + 2  # not asked again so soon


async def test_no_catalog_ever_read_is_a_503(served_with, db, sim) -> None:
    sim.faults.server_error(503, endpoint="list_gpus")
    served, _ = await served_with()
    async with await team_client(db, served.url, "alpha") as alpha:
        assert_problem(await alpha.get("/gpu-types"), 503, "provider_unavailable")
