"""Hangar's own dashboard: the static files under `static/`, served at `/ui` (see README.md).

No build step and nothing fetched from elsewhere: the files are read once at start-up and
served from memory with an ETag (a reload revalidates with a 304) and a Content Security
Policy that lets the page talk to its own origin only.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui"
# The page, its modules and styles come from the origin; it calls the API there; nothing
# inline, no eval, no frames.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'self'; "
       "form-action 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"cache-control", b"no-cache"),  # revalidate each load: a 304 when unchanged
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _load(directory: Path) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
        if kind.startswith("text/") and "charset" not in kind:
            kind += "; charset=utf-8"
        tag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        assets[path.relative_to(directory).as_posix()] = Asset(body, kind, tag)
    return assets


class UiFiles:
    """An ASGI app for the dashboard's files: `""` and `"index.html"` are the page (its
    `<base href>` made to match where the app is mounted), anything else a file or a 404."""

    def __init__(self, directory: Path = STATIC) -> None:
        self.assets = _load(directory)
        self.index = self.assets["index.html"].body.decode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        asset = self._asset(scope)
        if scope["method"] not in ("GET", "HEAD"):
            await _send(send, 405, b"text/plain; charset=utf-8", b"Method Not Allowed",
                        [(b"allow", b"GET, HEAD")])
            return
        if asset is None:
            await _send(send, 404, b"text/plain; charset=utf-8", b"Not Found", [])
            return
        etag = asset.etag.encode()
        inm = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if inm is not None and _matches(inm, etag):
            await _send(send, 304, None, b"", [(b"etag", etag)])
            return
        body = b"" if scope["method"] == "HEAD" else asset.body
        await _send(send, 200, asset.content_type.encode(), body, [(b"etag", etag)],
                    length=len(asset.body))

    def _asset(self, scope: Scope) -> Asset | None:
        root: str = scope.get("root_path", "")
        rel = scope["path"][len(root):]
        if rel == PREFIX:  # the Route: root is the app's
            return self._index(root + PREFIX + "/")
        if rel in ("", "/", "/index.html"):  # under the Mount: root ends with PREFIX
            return self._index(root + "/")
        return self.assets.get(rel.lstrip("/"))

    def _index(self, base_href: str) -> Asset:
        """The page with its `<base href>` where the app is mounted: its relative URLs
        (modules, styles, the API) resolve against it."""
        body = self.index.replace('<base href="/ui/">',
                                  f'<base href="{html.escape(base_href)}">').encode()
        tag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        return Asset(body, "text/html; charset=utf-8", tag)


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return b"*" in tags or etag in tags


async def _send(send: Send, status: int, content_type: bytes | None, body: bytes,
                extra: list[tuple[bytes, bytes]], length: int | None = None) -> None:
    headers = [*HEADERS, *extra]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if status != 304:
        headers.append((b"content-length", str(len(body) if length is None else length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def routes() -> list[BaseRoute]:
    """`/ui` and everything under it, for the API app's router."""
    files = UiFiles()  # an ASGI app: Route passes it the scope as it is
    return [Route(PREFIX, files, include_in_schema=False), Mount(PREFIX, app=files)]
