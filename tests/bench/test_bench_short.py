"""Short runs of the benchmark scripts (small N, a few seconds each) so they cannot rot.

Each script runs as a subprocess with `--json` against the Postgres and Redis named by
DATABASE_URL and REDIS_URL (the scripts start their own simulator, worker and API processes
on loopback, and stop them); the tests assert the invariants, not the timings. The full runs
stay out of CI: see bench/RESULTS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import parse_json_line  # noqa: E402

REDIS_DB = "13"  # not the scripts' default index: a developer may run one meanwhile


_SERVICES: dict[str, str] = {}


@pytest.fixture(autouse=True)
def services(database_server: str, redis_url: str) -> dict[str, str]:
    """The Postgres server and Redis the rest of the suite uses (the machine's when
    DATABASE_URL/REDIS_URL are set, the embedded ones otherwise)."""
    _SERVICES.update(DATABASE_URL=database_server, REDIS_URL=redis_url)
    return _SERVICES


def run_script(name: str, *args: str, timeout: float = 150) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / name), "--json", "--redis-db", REDIS_DB, *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **_SERVICES, PYTHONUNBUFFERED="1"))
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the script stops what it started and drops its database
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(f"{name} took more than {timeout:.0f}s:\n{stdout[-3000:]}\n{stderr[-3000:]}",
                    pytrace=False)
    try:
        figures = parse_json_line(stdout)
    except ValueError:
        pytest.fail(f"{name} printed no figures (exit {proc.returncode}):\n{stdout[-3000:]}\n"
                    f"{stderr[-3000:]}", pytrace=False)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{stdout[-3000:]}"
    return figures


def test_provision_short(services) -> None:
    f = run_script("provision.py", "--sizes", "1,3", "--clusters", "2", "--start-delay", "0.3")
    assert f["clusters"] == 4 and f["nodes"] == 8
    assert f["ready"] == 4 and f["failed"] == {}, f["failed"]
    assert f["orphan_pods"] == 0 and f["duplicate_pods"] == 0
    assert f["creates_per_node"] == {"min": 1, "max": 1}  # exactly one create per node
    assert f["requests_per_node"]["create_pod"] == 1.0
    assert f["requests_per_node"]["delete_pod"] == 1.0  # one delete per node
    assert f["requests_total"].get("get_pod", 0) == 0  # readiness comes from pod lists
    assert 1 <= f["list_pods_peak_per_s"] <= f["requests_total"]["list_pods"]
    assert f["per_size"]["1"]["overhead_p50_s"] is not None
    # At least one connection and a start + a read per node, as counted by the pods' sshd.
    assert f["ssh_per_node"]["connections"] >= 1 and f["ssh_per_node"]["commands"] >= 2
    assert all(v for v in f["peak_rss_mib"].values())


def test_provision_instant_clusters_short(services) -> None:
    f = run_script("provision.py", "--sizes", "3", "--network", "public,cluster",
                   "--clusters", "1", "--start-delay", "0.3")
    assert f["ready"] == 2 and f["failed"] == {}, f["failed"]
    assert set(f["per_size"]) == {"3", "3-cluster"}
    ic = f["instant_clusters"]
    assert ic["created"] == 1 and ic["duplicates"] == 0 and ic["alive_after_teardown"] == 0
    assert ic["requests_per_instant_cluster"]["create_cluster"] == 1
    assert ic["requests_per_instant_cluster"]["delete_cluster"] == 1
    assert 1 <= ic["get_cluster_per_s_max"] <= 2  # one read per 0.5 s poll tick
    assert f["orphan_pods"] == 0 and f["duplicate_pods"] == 0


def test_api_short(services) -> None:
    f = run_script("api.py", "--duration", "1", "--rounds", "1", "--clusters", "10",
                   "--page", "10", "--seed-nodes", "1", "--connections", "16",
                   "--history-small", "20", "--history-large", "200")
    for name in ("bare", "get_cluster", "list_clusters", "list_history_small",
                 "list_history_large", "list_large_live", "get_cluster_304"):
        assert f["endpoints"][name]["rps"] > 0, name
        assert f["endpoints"][name]["non_2xx"] == 0, name
    assert f["ratio_to_bare"]["get_cluster"] is not None
    if f["ui_first_load"] is not None:  # Chromium installed
        for load in f["ui_first_load"].values():
            assert load["requests"] > 0 and load["elsewhere"] == 0


def test_chaos_short(services) -> None:
    f = run_script("chaos.py", "--clusters", "6", "--nodes", "2", "--start-delay", "1",
                   "--kill-every", "4", "--max-kills", "2", "--flush-at", "2", timeout=150)
    assert f["worker_kills"] >= 1 and f["redis_flushes"] == 1
    assert f["ready"] == 6 and f["failed"] == {}, f["failed"]
    assert f["orphan_pods"] == 0, f["orphan_pod_names"]
    assert f["duplicate_pods"] == 0, f["duplicate_pod_nodes"]
    assert f["events_missing"] == 0 and f["events_duplicated"] == 0
    assert f["sse_unfinished"] == 0


def test_chaos_with_outages_short(services) -> None:
    f = run_script("chaos.py", "--embedded", "--clusters", "4", "--nodes", "2",
                   "--start-delay", "3", "--kill-every", "0", "--flush-at", "-1",
                   "--redis-outage", "1", "--postgres-outage", "6", "--outage-s", "3",
                   timeout=150)
    assert [o["server"] for o in f["outages"]] == ["redis", "postgres"]
    assert all(o["up_at_s"] is not None for o in f["outages"])
    assert f["ready"] == 4 and f["failed"] == {}, f["failed"]
    assert f["orphan_pods"] == 0 and f["duplicate_pods"] == 0
    assert f["events_missing"] == 0 and f["events_duplicated"] == 0
    assert f["sse_unfinished"] == 0


def test_usage_short() -> None:
    figures = run_script("usage.py", "--clusters", "200", "--nodes-per", "3",
                         "--requests", "2", "--months", "2")
    assert figures["nodes"] == 600 and figures["month_cost"] > 0
    assert figures["day_p50_ms"] > 0 and figures["team_p50_ms"] > 0


def test_webhooks_short(services) -> None:
    f = run_script("webhooks.py", "--clusters", "4", "--events", "5", "--rate", "0",
                   "--timeout", "2")
    for phase in ("healthy", "with_dead"):
        p = f[phase]
        assert p["healthy_deliveries"] == 4 * 5 * 5, p
        assert p["lost"] == 0 and p["duplicates"] == 0 and p["out_of_order"] == 0, p
        assert p["latency_ms"]["p99"] is not None and p["deliveries_per_s"] > 0
        assert p["worker_cpu_ms_per_delivery"] > 0
    assert f["dead_endpoint"]["connections"] >= 1  # the dead endpoint was tried
    assert f["p99_ratio_with_dead"] is not None and f["machine_speed_ms"] > 0
