"""Stream tokens: a browser's read-only way into one cluster's event stream (EventSource
cannot send an Authorization header). Accepted only as `?access_token=` on that cluster's
events; refused everywhere else, for another cluster, once expired, and never logged."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from datetime import datetime

import httpx
import pytest
import structlog

from app.domain.stream_tokens import InvalidStreamToken, derive_key, issue, verify
from app.logging_setup import configure_logging
from tests.support.events import SSE, append, finish, make_cluster, sse_events

SECRET = "test-secret"  # the settings fixture's HANGAR_SECRET_KEY


async def _token(client: httpx.AsyncClient, cluster_id) -> dict:
    r = await client.post(f"/clusters/{cluster_id}/stream-tokens")
    assert r.status_code == 201, r.text
    return r.json()


async def _read_all(client: httpx.AsyncClient, url: str, **kw) -> list:
    async with client.stream("GET", url, headers=SSE, **kw) as r:
        assert r.status_code == 200, await r.aread()
        return [e async for e in sse_events(r) if e.id is not None]


async def test_a_stream_token_opens_its_clusters_stream_without_a_header(
        db, teams, dispatcher, served) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    await append(db, cid, 2, dispatcher)
    last = await finish(db, cid, dispatcher)

    before = time.time()
    body = await _token(alpha.client, cid)
    assert set(body) == {"token", "expires_at", "events_url"}
    assert body["token"].startswith("hgs_")
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert before + 300 - 2 <= expires <= time.time() + 300
    # Absolute, so a page on another origin can hand it to EventSource as it is.
    assert body["events_url"] == (f"{served.url}/clusters/{cid}/events"
                                  f"?access_token={body['token']}")

    async with httpx.AsyncClient(timeout=30) as browser:  # no Authorization header at all
        events = await _read_all(browser, body["events_url"])
        assert [e.id for e in events] == list(range(1, last + 1))
        # Reconnecting with the same token resumes after Last-Event-ID.
        page = (await browser.get(body["events_url"], headers={"Last-Event-ID": "2"})).json()
        assert [i["id"] for i in page["items"]] == list(range(3, last + 1))


async def test_a_stream_token_is_refused_anywhere_else(db, teams, dispatcher) -> None:
    alpha, beta = teams["alpha"], teams["beta"]
    mine = await make_cluster(db, alpha.id)
    other = await make_cluster(db, alpha.id)
    token = (await _token(alpha.client, mine))["token"]
    anon = httpx.AsyncClient(base_url=str(alpha.client.base_url), timeout=30)
    bearer = {"Authorization": f"Bearer {token}"}
    async with anon:
        # Another cluster's stream, even of the same team.
        r = await anon.get(f"/clusters/{other}/events", params={"access_token": token},
                           headers=SSE)
        assert r.status_code == 401 and "another cluster" in r.json()["detail"]
        # As a bearer token: on every route, its own stream included.
        for method, path in (("GET", "/clusters"), ("GET", f"/clusters/{mine}"),
                             ("GET", f"/clusters/{mine}/events"), ("GET", "/gpu-types"),
                             ("POST", f"/clusters/{mine}/stream-tokens"),
                             ("DELETE", f"/clusters/{mine}")):
            r = await anon.request(method, path, headers=bearer)
            assert r.status_code == 401, (method, path)
        # In the URL of any other route, even beside a valid API token.
        for path in ("/clusters", f"/clusters/{mine}", "/gpu-types"):
            r = await alpha.client.get(path, params={"access_token": token})
            assert r.status_code == 401, path
            assert "only by GET /clusters/{id}/events" in r.json()["detail"]
        r = await alpha.client.post(f"/clusters/{mine}/stream-tokens",
                                    params={"access_token": token})
        assert r.status_code == 401

    # Another team cannot ask for one of alpha's clusters.
    assert (await beta.client.post(f"/clusters/{mine}/stream-tokens")).status_code == 404
    assert (await beta.client.post(f"/clusters/{uuid.uuid4()}/stream-tokens")).status_code == 404

    # Nothing was deleted by any of that.
    assert (await alpha.client.get(f"/clusters/{mine}")).json()["status"] == "pending"


async def test_an_api_token_in_the_url_is_refused(db, teams) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    api_token = alpha.client.headers["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=str(alpha.client.base_url), timeout=30) as anon:
        r = await anon.get(f"/clusters/{cid}/events", params={"access_token": api_token},
                           headers=SSE)
    assert r.status_code == 401
    assert "never put an API token in a URL" in r.json()["detail"]
    # With the header as well: a token in the URL is refused, not ignored.
    r = await alpha.client.get(f"/clusters/{cid}/events", params={"access_token": api_token})
    assert r.status_code == 401


async def test_expired_and_forged_tokens_are_refused(db, teams) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    key = derive_key(SECRET)
    expired = issue(key, cid, alpha.id, int(time.time()) - 1)
    forged = issue(derive_key("another-secret"), cid, alpha.id, int(time.time()) + 300)
    valid = (await _token(alpha.client, cid))["token"]
    tampered = valid[:-3] + ("AAA" if not valid.endswith("AAA") else "BBB")
    async with httpx.AsyncClient(base_url=str(alpha.client.base_url), timeout=30) as anon:
        for token, why in ((expired, "expired"), (forged, "not a stream token issued"),
                           (tampered, "not a stream token"), ("hgs_", "not a stream token"),
                           ("", "not a stream token")):
            r = await anon.get(f"/clusters/{cid}/events", params={"access_token": token})
            assert r.status_code == 401, token
            assert why in r.json()["detail"]
            assert r.headers["www-authenticate"].startswith("Bearer")
        # The one that is valid works (as JSON too).
        r = await anon.get(f"/clusters/{cid}/events", params={"access_token": valid})
        assert r.status_code == 200 and r.json()["items"][0]["type"] == "cluster.pending"


def test_a_token_carries_its_cluster_team_and_expiry() -> None:
    key, cid, team = derive_key(SECRET), uuid.uuid4(), uuid.uuid4()
    token = issue(key, cid, team, 2_000_000_000)
    grant = verify(key, token, now=1_999_999_999.5)
    assert (grant.cluster_id, grant.team_id, grant.expires) == (cid, team, 2_000_000_000)
    with pytest.raises(InvalidStreamToken, match="expired"):
        verify(key, token, now=2_000_000_000)
    with pytest.raises(InvalidStreamToken):
        verify(derive_key("other"), token, now=0)
    assert len(token) < 100 and "=" not in token


@pytest.fixture
def logs():
    """Everything the API logs during the test, as its log handler writes it (JSON lines;
    our access lines and uvicorn's own access log included)."""
    configure_logging("DEBUG", json=True)
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved = uvicorn_access.level, uvicorn_access.propagate, uvicorn_access.disabled
    # As a server with its access log on (a server started with it off turned it off).
    uvicorn_access.setLevel(logging.INFO)
    uvicorn_access.propagate, uvicorn_access.disabled = True, False
    written = io.StringIO()
    logging.getLogger().handlers[0].setStream(written)
    yield written
    uvicorn_access.setLevel(saved[0])
    uvicorn_access.propagate, uvicorn_access.disabled = saved[1], saved[2]
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


async def test_stream_tokens_never_reach_the_logs(db, teams, dispatcher, logs) -> None:
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    other = await make_cluster(db, alpha.id)
    await finish(db, cid, dispatcher)
    body = await _token(alpha.client, cid)
    token = body["token"]
    async with httpx.AsyncClient(timeout=30) as browser:
        await _read_all(browser, body["events_url"])
        await browser.get(body["events_url"].replace(str(cid), str(other)))  # 401
        await browser.get(body["events_url"] + "x")  # 401, forged
        await browser.get(f"{alpha.client.base_url}/clusters",
                          headers={"Authorization": f"Bearer {token}"})  # 401
    text = logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("logger") == "hangar.api.access" for line in lines)
    assert any("access_token=hgs_…" in line.get("event", "") for line in lines), \
        "uvicorn's access line names the query, redacted"
    assert token not in text and token[4:20] not in text
