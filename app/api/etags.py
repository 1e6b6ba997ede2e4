"""ETags for `GET /clusters/{id}` and `GET /clusters`, so polling dashboards pay a 304 when
nothing changed (docs/browser.md).

What a tag covers: everything in the response except `accrued_cost`, which is priced at
response time and grows every second while a node bills. A tag over the exact bytes would
change on every request for a running cluster (no 304 ever); a tag that ignored the cost
would let a client keep showing a cost frozen at its first read for as long as nothing
else changed. So the tag is weak (same state, the cost may differ by a few seconds' worth)
and, while any node in the response is billing, carries the current `BUCKET_S`-second time
bucket: a revalidated answer is at most `BUCKET_S` seconds old in its cost, and exact in
everything else (statuses, nodes, rates: any change is a new tag at once). A client that
wants the cost to the second extrapolates `accrued_cost + hourly_rate x elapsed` (the
dashboard does). Clusters that bill nothing (finished, or not yet running) keep their tag
until their rows change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from app.api.readpath import EncodedCluster

BUCKET_S = 10


def _tag(digest: str, billing: bool, now: datetime) -> str:
    bucket = f"-{int(now.timestamp()) // BUCKET_S}" if billing else ""
    return f'W/"{digest}{bucket}"'


def cluster_etag(row: EncodedCluster, now: datetime) -> str:
    """The tag of `GET /clusters/{id}`: the cluster's rows (the response's bytes but the
    prices, which follow from them; digested once, when they were read), and the time
    bucket while it bills."""
    return _tag(row.digest, row.bills, now)


def page_etag(clusters: Sequence[EncodedCluster], next_url: str | None,
              now: datetime) -> str:
    """The tag of a `GET /clusters` page: its clusters' states (their digests, in order),
    where the next page starts, and the time bucket while any cluster on it bills."""
    digest = hashlib.blake2b(digest_size=12)
    for cluster in clusters:
        digest.update(cluster.digest.encode())
    digest.update(b"|" + (next_url or "").encode())
    return _tag(digest.hexdigest(), any(c.bills for c in clusters), now)


def fresh(request: Request, etag: str) -> bool:
    """The client's copy is current: `If-None-Match` names this tag (weak comparison, as
    RFC 9110 13.1.2 has it for GET) or is `*`."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    mine = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == mine
               for t in (t.strip() for t in header.split(",")))


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag})


# OpenAPI: what both routes document.
RESPONSES: dict[int | str, dict] = {
    304: {"description": "Not modified: `If-None-Match` names the current `ETag` (weak; "
          "see the route's description)",
          "headers": {"ETag": {"schema": {"type": "string"}}}},
}
ETAG_HEADER = {"ETag": {"description": "Weak validator: send it back as `If-None-Match` to "
                        "get a 304 while nothing changed", "schema": {"type": "string"}}}
