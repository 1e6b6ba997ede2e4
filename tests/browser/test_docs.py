"""/docs (Swagger UI) and /redoc render in Chromium with every request going to the API
itself: they work on a network without internet."""

from __future__ import annotations

from tests.browser.conftest import Tab, only_from
from tests.support.stack import ServedApp


async def test_docs_render_with_nothing_leaving_the_origin(served: ServedApp, tab: Tab) -> None:
    page = tab.page
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))

    await page.goto(f"{served.url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title:has-text('Hangar')")
    await page.wait_for_selector(".opblock-summary-path[data-path='/clusters/{cluster_id}/stream-tokens']")
    assert await page.locator(".opblock").count() >= 8
    await tab.shot("swagger", phone=True)

    await page.goto(f"{served.url}/redoc")
    await page.wait_for_selector("h1:has-text('Hangar')")
    await page.locator("h2", has_text="A short-lived token to follow one cluster").wait_for()
    await tab.shot("redoc")

    assert tab.requests, "nothing recorded"
    assert only_from(tab.requests, served.url) == [], "a request left 127.0.0.1"
    assert failed == []
