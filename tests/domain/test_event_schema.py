"""The typed event union describes every event the code writes."""

from __future__ import annotations

from pydantic import TypeAdapter

from app.schemas.events import EventPage


async def test_every_event_of_a_clusters_life_fits_the_union(hangar, worker, sim) -> None:
    from tests.support.stack import events, wait_for

    sim.faults.rate_limit(count=1, endpoint="create", retry_after=3)  # a notice too
    r = await hangar.post("/clusters", json={"name": "typed", "gpu_type": "4090", "nodes": 2,
                                             "setup": "echo one; echo two"})
    cid = r.json()["id"]
    await wait_for(hangar, cid, {"ready"})
    await hangar.delete(f"/clusters/{cid}")
    await wait_for(hangar, cid, {"terminated"})
    items = await events(hangar, cid)
    page = TypeAdapter(EventPage).validate_python(
        {"items": items, "last_id": items[-1]["id"], "finished": True})
    kinds = {type(e).__name__ for e in page.items}
    assert kinds == {"ClusterStatusEvent", "NodeStatusEvent", "NodeOutputEvent", "NoticeEvent"}
    assert [e.data.line for e in page.items if e.type == "node.output"].count("one") == 2
