"""`/metrics` after some traffic, structured request logs with request and cluster ids,
and the OpenAPI document (every route with models, examples and problem+json errors)."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.logging_setup import configure_logging
from tests.support.stack import VALID


def _samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


async def test_metrics_after_some_traffic(client_for, served, sim) -> None:
    alpha = await client_for("alpha")
    cid = (await alpha.post("/clusters", json={**VALID, "nodes": 2})).json()["id"]
    await alpha.get(f"/clusters/{cid}")
    await alpha.get("/clusters/00000000-0000-4000-8000-000000000000")  # a 404
    await alpha.get("/no/such/route")
    metrics.observe_job("poll_node", 0.2, "ok")  # as the worker process records them

    async with httpx.AsyncClient(base_url=served.url) as anon:
        r = await anon.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)

    requests = samples["hangar_http_requests_total"]
    assert any(s.labels == {"method": "GET", "route": "/clusters/{cluster_id}", "status": "404"}
               for s in requests)
    assert any(s.labels["route"] == "/clusters" and s.labels["status"] == "202" for s in requests)
    assert any(s.labels["route"] == "<unmatched>" for s in requests)  # not the raw path
    assert not any("00000000" in s.labels["route"] for s in requests)
    assert any(s.labels["route"] == "/clusters/{cluster_id}"
               for s in samples["hangar_http_request_duration_seconds_bucket"])

    clusters = {s.labels["status"]: s.value for s in samples["hangar_clusters"]}
    nodes = {s.labels["status"]: s.value for s in samples["hangar_nodes"]}
    assert clusters["pending"] == 1 and clusters["ready"] == 0
    assert nodes["pending"] == 2 and set(nodes) >= {"creating", "terminated"}

    runpod = samples["hangar_runpod_requests_total"]
    assert any(s.labels == {"endpoint": "GET /catalog/gpus", "outcome": "ok"} and s.value >= 1
               for s in runpod), [s.labels for s in runpod]
    assert any(s.labels["endpoint"] == "GET /catalog/gpus"
               for s in samples["hangar_runpod_request_duration_seconds_bucket"])
    assert any(s.labels == {"job": "poll_node", "outcome": "ok"}
               for s in samples["hangar_job_duration_seconds_count"])
    assert samples["hangar_sse_subscribers"][0].value == 0


async def test_metrics_count_sse_subscribers(client_for, served) -> None:
    alpha = await client_for("alpha")
    cid = (await alpha.post("/clusters", json=VALID)).json()["id"]
    async with alpha.stream("GET", f"/clusters/{cid}/events",
                            headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        await anext(stream.aiter_lines())  # connected
        text = (await alpha.get("/metrics")).text
        assert _samples(text)["hangar_sse_subscribers"][0].value == 1


async def test_logs_are_json_with_request_and_cluster_ids(client_for, capsys) -> None:
    configure_logging("INFO", json=True)
    try:
        alpha = await client_for("alpha")
        created = await alpha.post("/clusters", json=VALID, headers={"X-Request-ID": "req-1"})
        cid = created.json()["id"]
        await alpha.get(f"/clusters/{cid}", headers={"X-Request-ID": "req-2"})
        lines: list[dict] = []
        for _ in range(100):  # the access line is written just after the response is sent
            lines += [json.loads(line) for line in capsys.readouterr().err.splitlines()
                      if line.startswith("{")]
            if any(line.get("request_id") == "req-2" for line in lines):
                break
            await asyncio.sleep(0.01)
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    access = {line["request_id"]: line for line in lines if line.get("event") == "request"}
    assert access["req-1"]["cluster_id"] == cid and access["req-1"]["status"] == 202
    assert access["req-1"]["route"] == "/clusters" and access["req-1"]["method"] == "POST"
    assert access["req-2"]["cluster_id"] == cid and access["req-2"]["route"] == (
        "/clusters/{cluster_id}")
    assert all({"timestamp", "level", "logger"} <= set(line) for line in lines)


async def test_openapi_documents_every_route(served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anon:
        doc = (await anon.get("/openapi.json")).json()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert set(ops) >= {
        ("POST", "/clusters"), ("GET", "/clusters"), ("GET", "/clusters/{cluster_id}"),
        ("DELETE", "/clusters/{cluster_id}"), ("GET", "/clusters/{cluster_id}/events"),
        ("GET", "/gpu-types"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    }
    for (method, path), op in ops.items():
        assert op.get("summary"), (method, path)
        assert "500" in op["responses"], (method, path)
        for code, response in op["responses"].items():
            if int(code) >= 400:
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, code)
        if op.get("security"):
            assert "401" in op["responses"], (method, path)
        if "{cluster_id}" in path:
            assert {"404", "422"} <= set(op["responses"]), (method, path)
    post = ops[("POST", "/clusters")]
    assert {"202", "409", "413", "415", "422", "429", "503"} <= set(post["responses"])
    assert "Location" in post["responses"]["202"]["headers"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["ClusterCreate"]["examples"] and schemas["GpuTypeOut"]["examples"]
    assert {"type", "title", "status", "detail", "code"} <= set(schemas["Problem"]["required"])


async def test_readyz_is_a_problem_when_the_database_is_down(settings) -> None:
    from app.api.app import create_app
    from app.embedded import free_port
    from tests.support.stack import serve_app

    down = settings.model_copy(update=dict(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nope"))
    served = await serve_app(create_app(down))
    try:
        async with httpx.AsyncClient(base_url=served.url) as anon:
            r = await anon.get("/readyz")
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["checks"]["database"].startswith("unavailable")
            assert r.json()["checks"]["redis"] == "ok"
            assert (await anon.get("/healthz")).status_code == 200
            scrape = await anon.get("/metrics")  # still served; the counts are stale
            assert scrape.status_code == 200
            assert _samples(scrape.text)["hangar_metrics_scrape_errors_total"][0].value >= 1
    finally:
        await served.stop()


async def test_timed_job_records_outcomes_for_the_worker() -> None:
    """What the worker process records (see docs/observability.md)."""
    import pytest

    @metrics.timed_job
    async def sample_job(ctx: dict, fail: bool) -> str:
        if fail:
            raise RuntimeError("boom")
        return "done"

    assert sample_job.__qualname__.endswith("sample_job")  # arq names jobs by this
    assert await sample_job({}, False) == "done"
    with pytest.raises(RuntimeError):
        await sample_job({}, True)
    text = metrics.generate_latest(metrics.REGISTRY).decode()
    counts = {tuple(sorted(s.labels.items())): s.value
              for s in _samples(text)["hangar_job_duration_seconds_count"]}
    assert counts[(("job", "sample_job"), ("outcome", "ok"))] == 1
    assert counts[(("job", "sample_job"), ("outcome", "error"))] == 1


async def test_worker_metrics_server(app_settings) -> None:
    """A worker with HANGAR_WORKER_METRICS_PORT serves its own job and RunPod metrics."""
    import httpx

    from app.embedded import free_port
    from tests.support.stack import RunningWorker

    port = free_port()
    w = RunningWorker(app_settings.model_copy(update={"worker_metrics_port": port}))
    await w.start()
    try:
        body = ""
        for _ in range(100):  # the reconciler runs at startup and is timed
            try:
                async with httpx.AsyncClient() as client:
                    body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                body = ""
            if 'job="reconcile"' in body:
                break
            await asyncio.sleep(0.1)
        assert 'hangar_job_duration_seconds_count{job="reconcile"' in body, body[-2000:]
    finally:
        await w.stop()
