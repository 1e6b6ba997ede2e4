"""A client generated from the app's OpenAPI document (openapi-python-client) gets names a
person would write and imports: it keeps the document honest for other generators too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.api.app import create_app


def test_openapi_python_client_generates_a_client_that_imports(tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(create_app().openapi()))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"package_name_override": "hangar_generated",
                                  "project_name_override": "hangar-generated"}))
    out = tmp_path / "hangar_generated"
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec),
         "--config", str(config), "--output-path", str(out), "--meta", "none"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    api = out / "api"
    modules = {p.relative_to(api).as_posix() for p in api.rglob("*.py")
               if p.name != "__init__.py"}
    assert {"clusters/create_cluster.py", "clusters/list_clusters.py",
            "clusters/get_cluster.py", "clusters/update_cluster.py",
            "clusters/delete_cluster.py", "events/cluster_events.py",
            "events/create_stream_token.py", "catalog/list_gpu_types.py",
            "spend/get_team.py", "spend/get_usage.py"} <= modules, modules
    models = {p.stem for p in (out / "models").glob("*.py")}
    assert {"cluster_out", "node_out", "cluster_create", "problem"} <= models, models
    # No names made of paths and methods (`healthz_response_healthz_healthz_get`).
    assert not [m for m in models if "_get" in m or "_post" in m or "response_" in m], models
    check = subprocess.run(
        [sys.executable, "-c", "import hangar_generated.api.clusters.create_cluster, "
         "hangar_generated.api.clusters.list_clusters, hangar_generated.models; "
         "from hangar_generated import AuthenticatedClient; "
         "AuthenticatedClient(base_url='http://h', token='t')"],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
