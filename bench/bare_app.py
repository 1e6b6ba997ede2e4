"""The framework's ceiling on this machine: a bare FastAPI endpoint returning a constant JSON.

Served by `bench/api.py` with the same uvicorn options as `hangar api` (see `serve()`), in a
process of its own, so `GET /clusters/{id}` can be compared with it side by side.

With BARE_DATABASE_URL set it also serves `GET /raw/clusters/{id}`: the same cluster read as
one asyncpg query (Postgres builds the JSON, no ORM, no auth) — a reference for how close a
lean read path could get to the ceiling. It is not Hangar's API.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

BODY = {"id": "00000000-0000-0000-0000-000000000000", "name": "bare", "status": "ready"}

RAW_QUERY = """
SELECT json_build_object(
  'id', c.id, 'name', c.name, 'status', c.status, 'reason', c.reason,
  'gpu_type', c.gpu_type_id, 'node_count', c.node_count, 'created_at', c.created_at,
  'ready_at', c.ready_at,
  'nodes', (SELECT coalesce(json_agg(json_build_object(
      'index', n.index, 'status', n.status, 'pod_id', n.pod_id, 'public_ip', n.public_ip,
      'ssh_port', n.ssh_port, 'hourly_rate', n.hourly_rate, 'started_at', n.started_at)
      ORDER BY n.index), '[]') FROM nodes n WHERE n.cluster_id = c.id))::text
FROM clusters c WHERE c.id = $1
"""


def create_app() -> FastAPI:
    url = os.environ.get("BARE_DATABASE_URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if url:
            import asyncpg

            app.state.pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
        try:
            yield
        finally:
            if url:
                await app.state.pool.close()

    app = FastAPI(title="bare", lifespan=lifespan)

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return BODY

    @app.get("/raw/clusters/{cluster_id}")
    async def raw(cluster_id: uuid.UUID) -> Response:
        if not url:
            raise HTTPException(404)
        body = await app.state.pool.fetchval(RAW_QUERY, cluster_id)
        if body is None:
            raise HTTPException(404)
        return Response(body, media_type="application/json")

    return app


def serve(host: str, port: int) -> None:
    """The options of `hangar api` (app/cli.py), minus what needs Hangar's settings."""
    import uvicorn

    uvicorn.run(
        "bench.bare_app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        log_level="info",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    a = parser.parse_args()
    serve(a.host, a.port)
