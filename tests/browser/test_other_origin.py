"""A dashboard on another origin: with its origin in HANGAR_CORS_ORIGINS, its page creates
a cluster with fetch (a preflighted POST), reads exposed headers, gets a stream token and
follows the events with EventSource; a page on an origin not in the list gets nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser.conftest import TIMEOUT_MS, Hangar, Tab, only_from, setup_lines, start_hangar
from tests.support.stack import ServedApp, serve_app

# Another team's dashboard, as small as one gets: fetch with the bearer token, a stream
# token, EventSource. What happens goes into #log for the test to read.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Another dashboard</title></head>
<body><h1>Another dashboard</h1><pre id="log"></pre>
<script>
const log = (text) => { document.getElementById("log").textContent += text + "\\n"; };
async function create(api, token) {
  const r = await fetch(api + "/clusters", {method: "POST", headers: {
    "Authorization": "Bearer " + token, "Content-Type": "application/json",
    "Idempotency-Key": "other-origin-1"},
    body: JSON.stringify({name: "from-elsewhere", gpu_type: "4090", setup: SETUP})});
  log("create " + r.status + " location=" + r.headers.get("Location")
      + " request-id=" + (r.headers.get("X-Request-ID") ? "yes" : "no"));
  return (await r.json()).id;
}
async function follow(api, token) {
  try {
    const id = await create(api, token);
    const list = await fetch(api + "/clusters", {headers: {"Authorization": "Bearer " + token}});
    const etag = list.headers.get("ETag");
    log("list " + list.status + " items=" + (await list.json()).items.length);
    const again = await fetch(api + "/clusters", {cache: "no-store", headers: {
      "Authorization": "Bearer " + token, "If-None-Match": etag}});
    log("revalidated " + again.status);
    const t = await fetch(api + "/clusters/" + id + "/stream-tokens",
                          {method: "POST", headers: {"Authorization": "Bearer " + token}});
    const grant = await t.json();
    log("stream-token " + t.status);
    stream(grant.events_url);
  } catch (e) {
    log("blocked: " + e.name);
  }
}
function stream(url) {
  const source = new EventSource(url);
  source.addEventListener("node.output", (m) => log("output " + JSON.parse(m.data).line));
  source.addEventListener("cluster.ready", (m) => {
    log("event " + m.lastEventId + " cluster.ready");
    source.close();
    log("done");
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) log("stream closed"); };
}
</script></body></html>
"""


async def _page_server(setup: str) -> ServedApp:
    html = PAGE.replace("SETUP", json.dumps(setup))

    async def page(_request):
        return HTMLResponse(html)

    return await serve_app(Starlette(routes=[Route("/", page)]))


@pytest.fixture
async def pages() -> AsyncIterator[tuple[ServedApp, ServedApp]]:
    """Two origins serving the page: the first is allowed, the second is not."""
    allowed, other = await _page_server(setup_lines(3, 0.1)), await _page_server("true")
    yield allowed, other
    await allowed.stop()
    await other.stop()


@pytest.fixture
async def cors_hangar(app_settings, db, worker, pages) -> AsyncIterator[Hangar]:
    allowed, _ = pages
    h = await start_hangar(app_settings.model_copy(update={"cors_origins": [allowed.url]}),
                           db)
    yield h
    await h.client.aclose()
    await h.served.stop()


async def test_an_allowed_origin_uses_fetch_and_event_source(cors_hangar: Hangar, pages,
                                                             tab: Tab) -> None:
    allowed, _ = pages
    page = tab.page
    await page.goto(allowed.url)
    await page.evaluate("([api, token]) => follow(api, token)", [cors_hangar.url,
                                                                  cors_hangar.token])
    log = page.locator("#log")
    await log.locator("text=done").wait_for(timeout=TIMEOUT_MS)
    text = await log.inner_text()
    assert "create 202 location=/clusters/" in text and "request-id=yes" in text
    assert "list 200 items=1" in text
    assert "revalidated 304" in text
    assert "stream-token 201" in text
    assert "output line 3 of node 0" in text
    assert "cluster.ready" in text
    await tab.shot("allowed")
    # The page talked to its own origin and the API's, nothing else.
    assert only_from(tab.requests, allowed.url, cors_hangar.url) == []


async def test_an_origin_not_in_the_list_is_refused(cors_hangar: Hangar, pages,
                                                    tab: Tab) -> None:
    _, other = pages
    cid = await cors_hangar.create("not-for-them")
    grant = (await cors_hangar.client.post(f"/clusters/{cid}/stream-tokens")).json()
    page = tab.page
    await page.goto(other.url)
    await page.evaluate("([api, token]) => follow(api, token)", [cors_hangar.url,
                                                                  cors_hangar.token])
    log = page.locator("#log")
    await log.locator("text=blocked: TypeError").wait_for(timeout=TIMEOUT_MS)
    # Even with a valid stream token, EventSource cannot read another origin's stream.
    await page.evaluate("(url) => stream(url)", grant["events_url"])
    await log.locator("text=stream closed").wait_for(timeout=TIMEOUT_MS)
    text = await log.inner_text()
    assert "create " not in text and "output" not in text and "done" not in text
    # The preflight was refused, so the POST never reached the API: nothing was created.
    names = [c["name"] for c in (await cors_hangar.client.get("/clusters")).json()["items"]]
    assert names == ["not-for-them"]
    await tab.shot("refused")
