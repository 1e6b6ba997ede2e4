"""What every client command shares (`app/cli/client.py`): where and as whom
(HANGAR_URL, HANGAR_TOKEN) through `hangar_client`, loaded only when used; results on
standard output, messages on standard error; and the client's exceptions turned into a
message and an exit code (`Exit`)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hangar_client import Cluster, HangarClient

DEFAULT_URL = "http://127.0.0.1:8000"


class Exit(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def fail(message: str, code: int = 1) -> Exit:
    return Exit(code, message)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def out(text: str) -> None:
    print(text, flush=True)


def print_json(document: Any) -> None:
    import json

    # Compact, one document a line, as the API writes it.
    out(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def load_client() -> Any:
    # httpx imports its own command line (click, rich, pygments: ~90 ms) whenever they are
    # installed, which they are beside Hangar; nothing here uses it.
    sys.modules.setdefault("httpx._main", type(sys)("httpx._main"))
    import hangar_client

    return hangar_client


def connect() -> HangarClient:
    token = os.environ.get("HANGAR_TOKEN", "").strip()
    if not token:
        raise fail("HANGAR_TOKEN is not set: create a token with `hangar keys create --team "
                   "<team>` and `export HANGAR_TOKEN=<token>`", 2)
    url = os.environ.get("HANGAR_URL", "").strip() or DEFAULT_URL
    try:
        return load_client().HangarClient(url, token)
    except ValueError as exc:
        raise fail(f"HANGAR_URL: {exc}", 2) from None


def explained(run: Callable[[argparse.Namespace], int | None]) -> Callable[..., int | None]:
    """The client's exceptions as a message on standard error and exit code 1."""

    @functools.wraps(run)
    def command(args: argparse.Namespace) -> int | None:
        try:
            return run(args)
        except load_client().HangarError as exc:
            raise fail(explain(exc)) from None

    return command


def explain(exc: Exception) -> str:
    """What a person reads for one of the client's exceptions."""
    hc = load_client()
    if isinstance(exc, hc.ClusterFailed):
        return failure(exc.cluster)
    if isinstance(exc, hc.ApiError):
        # With field errors the detail is their summary: list them instead.
        lines = [f"{exc.title if exc.errors else exc.detail} ({exc.status} {exc.code})"]
        lines += [f"  {e.field}: {e.message}" for e in exc.errors]
        if exc.candidates and not all(c in exc.detail for c in exc.candidates):
            lines.append("  candidates: " + ", ".join(exc.candidates[:30]))
        return "\n".join(lines)
    if isinstance(exc, hc.Unreachable):
        url = os.environ.get("HANGAR_URL") or DEFAULT_URL
        return f"cannot reach Hangar at {url} (HANGAR_URL): {exc}"
    return str(exc)  # WaitTimeout and every other HangarError


def failure(cluster: Cluster) -> str:
    return (f"cluster {cluster.name} ({cluster.id}) is {cluster.status}: "
            f"{cluster.reason or 'no reason given'}"
            + (f": {cluster.message}" if cluster.message else ""))
