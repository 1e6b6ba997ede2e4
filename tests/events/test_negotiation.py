"""The event route's two representations: Accept q-values choose (q=0 is not acceptable),
responses vary on Accept, and a reconnect to a finished stream with nothing left to send is
a 204 (a browser's EventSource stops on it instead of reconnecting for ever)."""

from __future__ import annotations

import pytest

from app.api.errors import ApiError
from app.api.negotiation import quality
from app.api.routes.events import wants_stream
from tests.support.events import SSE, append, finish, make_cluster, open_stream, read_events


@pytest.mark.parametrize("accept, stream", [
    (None, False),
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("text/event-stream", True),  # what EventSource sends
    ("text/event-stream, application/json", True),
    ("application/json, text/event-stream", True),
    ("application/json;q=0.5, text/event-stream", True),
    ("text/event-stream;q=0.5, application/json", False),
    ("text/event-stream;q=0, */*", False),
    ("text/*", True),  # event-stream is the only text/* offered
    ("text/*;q=0.9, application/*;q=1", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # a browser tab
    ("application/json;q=0, text/event-stream;q=0.1", True),
    ("text/event-stream; charset=utf-8", True),
    ("text/event-stream;q=nonsense, application/json", False),
])
def test_accept_chooses_the_representation(accept, stream) -> None:
    assert wants_stream(accept) is stream


@pytest.mark.parametrize("accept", [
    "application/json;q=0, text/event-stream;q=0",
    "text/html",
    "application/json;q=0",
    "*/*;q=0",
    "text/event-stream;q=0, application/json;q=0, */*;q=0.5",
])
def test_refusing_both_is_not_acceptable(accept) -> None:
    with pytest.raises(ApiError) as err:
        wants_stream(accept)
    assert err.value.status == 406


def test_the_most_specific_range_decides() -> None:
    assert quality("*/*;q=0.1, text/*;q=0.5, text/event-stream;q=0.8",
                   "text/event-stream").q == 0.8
    assert quality("text/event-stream;q=0, */*", "text/event-stream").q == 0
    assert quality("text/*;q=0.3, */*", "text/event-stream").q == 0.3
    assert quality("application/json", "text/event-stream").q == 0


async def test_the_route_honours_q_values_and_varies_on_accept(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    path = f"/clusters/{cid}/events"
    page = await alpha.client.get(path, headers={"Accept": "text/event-stream;q=0, */*"})
    assert page.headers["content-type"] == "application/json"
    assert page.headers["vary"] == "Accept"
    refused = await alpha.client.get(path, headers={
        "Accept": "application/json;q=0, text/event-stream;q=0"})
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"
    assert "refuses both" in refused.json()["detail"]
    await finish(db, cid, dispatcher)
    stream = await alpha.client.get(path, headers={"Accept": "application/json;q=0.2, "
                                                             "text/event-stream"})
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["vary"] == "Accept"


async def test_a_finished_stream_answers_204_to_a_reconnect(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    await append(db, cid, 2, dispatcher)
    last = await finish(db, cid, dispatcher)
    # Behind by one: that event, then the stream ends.
    async with open_stream(alpha.client, cid, last_event_id=last - 1) as (r, events):
        assert r.status_code == 200
        assert [e.id for e in await read_events(events)] == [last]
    # Caught up: nothing will follow.
    for headers in ({"Last-Event-ID": str(last)}, {"Last-Event-ID": str(last + 5)}):
        r = await alpha.client.get(f"/clusters/{cid}/events", headers={**SSE, **headers})
        assert r.status_code == 204
        assert r.content == b""
        assert r.headers["vary"] == "Accept"
    r = await alpha.client.get(f"/clusters/{cid}/events", params={"after": last}, headers=SSE)
    assert r.status_code == 204
    # The JSON page says the same with a 200 (it is a page, not a stream).
    page = await alpha.client.get(f"/clusters/{cid}/events", params={"after": last})
    assert page.status_code == 200 and page.json() == {"items": [], "last_id": last,
                                                       "finished": True}


async def test_a_live_stream_caught_up_is_not_204(db, teams, dispatcher) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    last = (await append(db, cid, 1, dispatcher))[-1]
    async with open_stream(alpha.client, cid, last_event_id=last) as (r, events):
        assert r.status_code == 200
        await append(db, cid, 1, dispatcher)
        assert [e.id for e in await read_events(events, count=1)] == [last + 1]
