"""HTTP methods the way clients and proxies expect them: `HEAD` on every `GET` route (the
same headers, no body), and a 405's `Allow` listing every method of the path, not only
those of the route that happened to match first."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Sent(Exception):
    """The head of a HEAD response went out: the body is not wanted."""


class HeadAsGet:
    """Answers `HEAD` as the `GET` it stands for, sending the headers only. A streaming
    answer (the event stream) is stopped once its head is out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def head_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                raise _Sent

        try:
            await self.app({**scope, "method": "GET"}, receive, head_only)
        except _Sent:
            pass


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of this path takes (HEAD with GET), sorted."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
