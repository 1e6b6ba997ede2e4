"""Property-based testing of the whole API from its own OpenAPI document (Schemathesis),
over real HTTP against uvicorn, with a valid token: valid and invalid inputs for every
operation, no 5xx, and every response (status, content type, headers, body) as documented;
invalid input is refused, and auth is not ignored. (The stateful phase is off: it would
open event streams on live clusters, which by design do not end.)

The schemathesis CLI runs as a subprocess so this event loop stays free to serve the API
and the RunPod simulator it calls. Deterministic generation and a fixed seed make a
failure reproducible: the output names the case and gives a curl command.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from app.api.app import create_app
from app.services.teams import create_token
from tests.support.stack import serve_app

MAX_EXAMPLES = 60  # per operation and phase: ~600 cases, ~15 s
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
))


@pytest.fixture
async def fuzz_target(app_settings, db):
    """The API with limits no fuzzer reaches (so POST /clusters keeps creating clusters, and
    its invalid tokens keep getting 401s rather than the failed-authentication throttle)."""
    settings = app_settings.model_copy(update=dict(
        max_live_clusters=1_000_000, max_live_nodes=1_000_000, max_hourly_spend=1e12,
        auth_failures_per_minute=1_000_000,
    ))
    served = await serve_app(create_app(settings))
    async with db() as session:
        _, token = await create_token(session, "fuzz")
    yield served.url, token
    await served.stop()


async def test_schemathesis_finds_no_errors(fuzz_target, tmp_path: Path) -> None:
    url, token = fuzz_target
    report = tmp_path / "report.json"
    cli = Path(sys.executable).parent / "schemathesis"
    proc = await asyncio.create_subprocess_exec(
        str(cli), "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--request-timeout", "10",
        # One worker: with several, Hypothesis' lambda-source cache races between threads
        # ("AST constructor recursion depth mismatch" runtime errors, more often the more
        # operations there are); on 2 cores one worker is as fast.
        "--workers", "1",
        "--no-color",
        "--report", "json", "--report-json-path", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 9
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["test_cases"]["generated"] >= 300, summary["test_cases"]
