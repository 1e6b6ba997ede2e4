"""`/docs` (Swagger UI) and `/redoc` (ReDoc) from assets that ship in the package.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and (ReDoc) Google Fonts from CDNs,
so they are blank on a network without internet. The `fastapi-offline` package vendors
the same Swagger UI and ReDoc bundles (kept current by its maintainer); only its static
files are used, served under `/docs/assets/`. Swagger UI's validator badge (a call to
validator.swagger.io) is off, and the one remote URL left in the ReDoc bundle (its
vendor's logo, drawn in the side menu) is replaced by an empty image as the file is loaded.
As a safety net, the pages' Content Security Policy lets them load from the origin only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from starlette.routing import Route

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
# Swagger UI starts from an inline script and ReDoc styles itself inline and searches in a
# blob: worker; everything else comes from, and goes to, the origin.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
       "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
       "worker-src 'self' blob:; base-uri 'self'; frame-ancestors 'none'")


# The ReDoc bundle's attribution image; an empty SVG instead.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".png": "image/png"}


def _assets() -> dict[str, tuple[bytes, str, str]]:
    """name -> (body, content type, ETag), read once."""
    out = {}
    for path in ASSETS_DIR.iterdir():
        if path.suffix not in _TYPES:
            continue
        body = path.read_bytes()
        if path.name == "redoc.standalone.js":
            body = body.replace(REDOC_LOGO, EMPTY_IMAGE)
        out[path.name] = (body, _TYPES[path.suffix], f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"')
    return out


def _local(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page


def install(app: FastAPI) -> None:
    """Serve the documentation pages; create the app with `docs_url=None, redoc_url=None`."""
    assets = _assets()

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        body, kind, etag = found
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=kind, headers=headers)

    app.router.routes.append(Route(ASSETS_URL + "/{name}", asset, include_in_schema=False))

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        ))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        ))
