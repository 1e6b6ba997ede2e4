"""Browser tests: Debian's headless Chromium driven by Playwright against the real API, an
arq worker and the RunPod simulator (real HTTP, real SSH pods). Every request a page makes
is recorded; each test saves screenshots (desktop 1280x800, and phone width 390 for the
main pages) under tests/browser/screenshots/ (not committed): look at them.

Chromium comes from the distribution (`apt-get install chromium`; `.ci/run` installs it):
Playwright's own browser download cannot work on machines without internet."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.api.app import create_app
from app.embedded import free_port
from app.services.teams import create_token
from app.settings import Settings
from tests.support.stack import ServedApp, serve_app

CHROMIUM = os.environ.get("HANGAR_TEST_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 30_000  # the longest a page may take to show what a test waits for


@pytest.fixture(scope="session")
async def browser():
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    playwright = await async_playwright().start()
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    await chromium.close()
    await playwright.stop()


@dataclass
class Hangar:
    """The API (with the dashboard) on a loopback port, a team token, an HTTP client."""

    served: ServedApp
    token: str
    client: httpx.AsyncClient
    settings: Settings

    @property
    def url(self) -> str:
        return self.served.url

    async def create(self, name: str, **fields) -> str:
        r = await self.client.post("/clusters", json={"name": name, "gpu_type": "RTX 4090",
                                                      **fields})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    async def wait_for(self, cluster_id: str, statuses: set[str], timeout: float = 30) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                body = (await self.client.get(f"/clusters/{cluster_id}")).json()
                if body["status"] in statuses:
                    return body
                await asyncio.sleep(0.1)


async def start_hangar(settings: Settings, db, team: str = "alpha") -> Hangar:
    async with db() as session:
        _, token = await create_token(session, team)
    served = await serve_app(create_app(settings))
    client = httpx.AsyncClient(base_url=served.url, timeout=30,
                               headers={"Authorization": f"Bearer {token}"})
    return Hangar(served, token, client, settings)


@pytest.fixture
async def hangar(app_settings: Settings, db, worker) -> AsyncIterator[Hangar]:  # noqa: F811
    h = await start_hangar(app_settings, db)
    yield h
    await h.client.aclose()
    await h.served.stop()


@dataclass
class Tab:
    """A page in a fresh browser context (its own session storage and cache), with every
    request it made and every script error it hit."""

    page: object
    name: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def shot(self, label: str, phone: bool = False) -> None:
        """Save a screenshot (and one at phone width) as <test>-<label>[-phone].png."""
        page = self.page
        await page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page
        # draws the sticky top bar where it was
        await page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{label}.png"), full_page=True)
        if phone:
            await page.set_viewport_size(PHONE)
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{label}-phone.png"),
                                  full_page=True)
            await page.set_viewport_size(DESKTOP)


@pytest.fixture
async def tab(browser, request) -> AsyncIterator[Tab]:
    """Request it after the servers the page talks to: it closes first, with its streams
    (a server stopping waits for the streams still open)."""
    context = await browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    t = Tab(page, request.node.name.removeprefix("test_"))
    page.on("request", lambda r: t.requests.append(r.url))
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    yield t
    await context.close()
    assert not t.errors, f"script errors on the page: {t.errors}"


async def sign_in(tab: Tab, hangar_url: str, token: str) -> None:
    page = tab.page
    await page.goto(f"{hangar_url}/ui")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:has-text('Clusters')")


def only_from(urls: list[str], *origins: str) -> list[str]:
    """The requests that went anywhere but these origins (data: and blob: stay local)."""
    return [u for u in urls if not u.startswith(("data:", "blob:"))
            and not any(u == o or u.startswith(o + "/") for o in origins)]


class DroppingProxy:
    """A TCP proxy on a loopback port in front of the API that can cut every connection
    through it at once: a network drop, as a browser sees one, with the API still up."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.pairs: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.pairs |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.pairs -= {writer, up_writer}

    def drop(self) -> int:
        """Close every connection through the proxy; how many there were."""
        cut = len(self.pairs)
        for w in list(self.pairs):
            w.transport.abort()
        return cut

    async def stop(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def setup_lines(n: int, every: float = 0.2) -> str:
    """A setup script printing `line 1` .. `line n` on every node, one each `every` s."""
    return f"for i in $(seq 1 {n}); do echo \"line $i of node $HANGAR_NODE_RANK\"; sleep {every}; done"

