"""`/docs` and `/redoc` name no URL outside the API and their assets are served by it
(tests/browser/test_docs.py renders them in Chromium with every request recorded)."""

from __future__ import annotations

import re

import httpx

from tests.support.stack import ServedApp

URL_ATTR = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", re.I)


async def test_docs_pages_use_only_local_assets(served: ServedApp) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        for page in ("/docs", "/redoc"):
            r = await client.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            urls = URL_ATTR.findall(r.text)
            assert urls, page
            for url in urls:
                assert url.startswith("/"), f"{page} loads {url}"
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert asset.content, url
            assert "fonts.googleapis" not in r.text and "cdn." not in r.text
        assert '"validatorUrl": null' in (await client.get("/docs")).text
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200
        assert (await client.get("/docs/assets/nope.js")).status_code == 404
        redoc = (await client.get("/docs/assets/redoc.standalone.js")).content
        assert b"cdn.redoc.ly" not in redoc  # its logo, replaced by an empty image
