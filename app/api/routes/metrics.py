"""`GET /metrics`: Prometheus text exposition of this API process."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app import metrics
from app.api.deps import Session

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="HTTP requests and latencies by route template, RunPod requests by endpoint "
    "and outcome, clusters and nodes by status (read from the database at scrape time), "
    "connected event-stream clients. Counters are per process. No token needed: expose "
    "it on the internal network only.",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE_LATEST.split(";")[0]: {
        "schema": {"type": "string"},
        "example": "# TYPE hangar_clusters gauge\nhangar_clusters{status=\"ready\"} 3.0\n",
    }}}},
)
async def prometheus_metrics(request: Request, session: Session) -> Response:
    state = request.app.state
    metrics.observe_caches(state.read_cache, state.tokens)
    body = await metrics.render(session, state.hub.subscribers)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)
