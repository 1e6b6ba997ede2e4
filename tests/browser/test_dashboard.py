"""The dashboard at /ui, as a person uses it in Chromium: sign in, watch clusters go ready
live, follow a cluster's output through drops, create one (and see a 422 next to its
field), delete with confirmation. No request ever leaves the API's origin."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.conftest import (
    TIMEOUT_MS,
    DroppingProxy,
    Hangar,
    Tab,
    only_from,
    setup_lines,
    sign_in,
)


async def test_sign_in_keeps_the_token_in_the_tab_only(hangar: Hangar, tab: Tab) -> None:
    page = tab.page
    await page.goto(f"{hangar.url}/ui")
    await page.wait_for_selector("input[name=token]")
    await tab.shot("form", phone=True)

    await page.fill("input[name=token]", "hgr_not-a-token-at-all-000000")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#signin-error:has-text('unknown or revoked')")
    await tab.shot("refused")

    await page.fill("input[name=token]", hangar.token)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:has-text('Clusters')")
    await page.wait_for_selector("text=No live clusters.")
    assert await page.evaluate("sessionStorage.getItem('hangar.token')") == hangar.token
    assert await page.context.cookies() == []
    assert hangar.token not in page.url
    assert not [u for u in tab.requests if hangar.token in u], "the token went into a URL"
    await tab.shot("empty", phone=True)

    await page.reload()  # the same tab stays signed in
    await page.wait_for_selector("h1:has-text('Clusters')")
    await page.click("button:has-text('Sign out')")
    await page.wait_for_selector("input[name=token]")
    assert await page.evaluate("sessionStorage.getItem('hangar.token')") is None
    assert only_from(tab.requests, hangar.url) == []


async def test_a_cluster_appears_and_goes_ready_live(hangar: Hangar, tab: Tab) -> None:
    page = tab.page
    await sign_in(tab, hangar.url, hangar.token)
    cid = await hangar.create("live-one", nodes=2, setup="echo hi")
    row = f"tr[data-cluster='{cid}']"
    await page.wait_for_selector(row)  # no reload: the list polls
    await page.wait_for_selector(f"{row}[data-status='ready']")
    text = await page.inner_text(row)
    assert "live-one" in text and "RTX 4090" in text and "2/2" in text
    assert re.search(r"\$\d+\.\d+/h", text), text  # the hourly rate of its nodes
    # The spend in the top bar counts it (at its next poll).
    await expect(page.locator("[data-testid=spend-now]")).not_to_have_text("$0.00/h",
                                                                            timeout=TIMEOUT_MS)
    await hangar.create("second", setup="sleep 30")
    await page.wait_for_selector("tr[data-cluster] >> text=second")
    await tab.shot("list", phone=True)

    # Filters: terminated shows none of them.
    await page.click(".filters button:has-text('terminated')")
    await page.wait_for_selector("text=No clusters here.")
    assert "status=terminated" in page.url
    assert only_from(tab.requests, hangar.url) == []


async def test_a_cluster_page_streams_its_output_through_drops(hangar: Hangar, tab: Tab) -> None:
    """The page follows the event stream through a stream token; the network drops twice
    on the way (every connection cut): the output resumes, each line exactly once."""
    proxy = DroppingProxy(int(hangar.url.rsplit(":", 1)[1]))
    await proxy.start()
    try:
        page = tab.page
        await sign_in(tab, proxy.url, hangar.token)
        cid = await hangar.create("streamer", nodes=2, setup=setup_lines(40, 0.15))
        await page.click(f"tr[data-cluster='{cid}'] a")
        await page.wait_for_selector("h1:has-text('streamer')")
        output = page.locator("[data-testid=output]")
        await output.locator("text=line 3 of node 0").wait_for()
        assert await page.inner_text("[data-testid=stream-state]") == "Live"
        for after in (8, 20):
            await output.locator(f"text=line {after} of node 1").wait_for()
            assert proxy.drop() > 0
        await output.locator("text=line 40 of node 0").wait_for()
        await output.locator("text=line 40 of node 1").wait_for()
        await page.wait_for_selector(".page-head >> text=ready")
        lines = await page.eval_on_selector_all(
            "[data-testid=output] .line",
            "els => els.map(e => [e.dataset.node, e.querySelector('.text').textContent])")
        for node in (0, 1):
            got = [text for n, text in lines if n == str(node)]
            assert got == [f"line {i} of node {node}" for i in range(1, 41)], got
        timeline = await page.inner_text("[data-testid=timeline]")
        assert "cluster.ready" in timeline and "node.ready" in timeline
        assert "127.0.0.1:" in await page.inner_text("table.nodes")  # the nodes' addresses
        # The stream went through a stream token, never the team token in a URL.
        streams = [u for u in tab.requests if "/events" in u]
        assert streams and all("access_token=hgs_" in u for u in streams)
        assert not [u for u in tab.requests if hangar.token in u]
        await tab.shot("cluster", phone=True)
        await page.click("button[role=tab]:has-text('node 1')")
        await tab.shot("node-1")
        assert only_from(tab.requests, proxy.url) == []
    finally:
        await proxy.stop()


async def test_create_through_the_form(hangar: Hangar, tab: Tab) -> None:
    page = tab.page
    await sign_in(tab, hangar.url, hangar.token)
    await page.click("nav a:has-text('New cluster')")
    await page.wait_for_selector(".gpu-option")  # the catalog, from /gpu-types
    options = await page.locator(".gpu-option").all_inner_texts()
    assert any("RTX 4090" in o and "$" in o for o in options)
    await page.fill("input[name=name]", "from-the-form")
    await page.fill("input[type=search]", "4090")
    await page.click(".gpu-option:has-text('RTX 4090')")
    await page.fill("input[name=nodes]", "2")
    await page.fill("input[name=ttl_hours]", "1.5")
    await page.fill("input[name=max_hourly_cost]", "5")
    await page.fill("textarea[name=setup]", "echo hello from $HANGAR_NODE_RANK")
    estimate = await page.inner_text("[data-testid=estimate]")
    assert re.search(r"\$\d+\.\d+/h", estimate), estimate
    await tab.shot("filled", phone=True)
    await page.click("button:has-text('Create cluster')")
    await page.wait_for_selector("h1:has-text('from-the-form')")
    cid = re.search(r"#/clusters/([0-9a-f-]{36})", page.url).group(1)
    body = (await hangar.client.get(f"/clusters/{cid}")).json()
    assert body["name"] == "from-the-form" and body["node_count"] == 2
    assert body["gpu_type"] == "NVIDIA GeForce RTX 4090"
    assert body["ttl_seconds"] == 5400 and body["max_hourly_cost"] == 5
    assert body["setup"] == "echo hello from $HANGAR_NODE_RANK"
    await page.wait_for_selector("[data-testid=output] >> text=hello from 1")
    await tab.shot("created")


async def test_a_422_is_shown_next_to_its_field(hangar: Hangar, tab: Tab) -> None:
    page = tab.page
    await sign_in(tab, hangar.url, hangar.token)
    await page.goto(f"{hangar.url}/ui#/new")
    await page.wait_for_selector(".gpu-option")
    await page.fill("input[name=name]", "Not A Valid Name")
    await page.click(".gpu-option:has-text('RTX 4090')")
    await page.fill("input[name=ttl_hours]", "soon")
    await page.click("button:has-text('Create cluster')")
    name_error = page.locator(".field-error[data-field=name]")
    await name_error.wait_for()
    assert "[a-z0-9-]" in await name_error.inner_text()  # the API's own message
    ttl_error = await page.inner_text(".field-error[data-field=ttl_seconds]")
    assert "integer" in ttl_error
    await tab.shot("invalid", phone=True)

    # A problem without a field list (a price above the cap) lands on its field too.
    await page.fill("input[name=name]", "capped")
    await page.fill("input[name=ttl_hours]", "")
    await page.fill("input[name=max_hourly_cost]", "0.01")
    await page.click("button:has-text('Create cluster')")
    cap = page.locator(".field-error[data-field=max_hourly_cost]")
    await cap.wait_for()
    assert "above max_hourly_cost" in await cap.inner_text()
    assert await page.locator(".field-error[data-field=name]").count() == 0
    assert (await hangar.client.get("/clusters")).json()["items"] == []  # nothing created
    await tab.shot("over-the-cap")


async def test_delete_asks_first(hangar: Hangar, tab: Tab) -> None:
    page = tab.page
    await sign_in(tab, hangar.url, hangar.token)
    cid = await hangar.create("doomed", setup="echo up")
    await hangar.wait_for(cid, {"ready"})
    await page.goto(f"{hangar.url}/ui#/clusters/{cid}")
    await page.wait_for_selector(".page-head >> text=ready")

    await page.click(".page-head button:has-text('Delete')")
    dialog = page.locator("dialog[open]")
    await dialog.wait_for()
    assert "Delete doomed?" in await dialog.inner_text()
    await tab.shot("confirm", phone=True)
    await dialog.locator("button:has-text('Cancel')").click()
    await dialog.wait_for(state="detached")
    assert (await hangar.client.get(f"/clusters/{cid}")).json()["status"] == "ready"

    await page.click(".page-head button:has-text('Delete')")
    await page.click("dialog[open] button:has-text('Delete cluster')")
    await page.wait_for_selector(".page-head >> text=terminated")
    body = (await hangar.client.get(f"/clusters/{cid}")).json()
    assert body["status"] == "terminated" and body["reason"] == "deleted"
    # The stream ended (the reconnect got a 204) and the page says so.
    await page.wait_for_selector("[data-testid=stream-state]:has-text('Finished')")
    assert await page.is_disabled(".page-head button:has-text('Delete')")
    await tab.shot("deleted")
