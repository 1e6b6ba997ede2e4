"""The newer calls of `hangar_client` and the commands built on them, against the real API
(with the worker and the RunPod simulator where a cluster must come up): changing a TTL,
the team's page, usage reports (on rows whose times are set in the database), stream
tokens, network volumes, and every create field; `hangar usage`, `hangar team`,
`hangar clusters ttl`, `hangar network-volumes` as a person or a script runs them."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hangar_client import (
    AsyncHangarClient,
    ClusterNotice,
    Conflict,
    HangarClient,
    Limit,
    Network,
    NodeStatus,
)
from sqlalchemy import select, update

from app.db.models import Cluster, Team
from app.services.state import utcnow
from tests.client.conftest import GPU, in_thread
from tests.client.test_cli import cli_env, hangar
from tests.support.events import billed_cluster, make_cluster

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def client(url: str, token: str) -> HangarClient:
    return HangarClient(url, token, backoff=0.05, max_backoff=0.5)


async def team_id(db, name: str = "alpha") -> uuid.UUID:
    async with db() as session:
        return (await session.execute(select(Team.id).where(Team.name == name))).scalar_one()


async def october(db) -> list[uuid.UUID]:
    """Three finished clusters in October 2026 (UTC):
    a: Oct 1 22:00 to Oct 2 02:00 at $1/h (across midnight), 1 GPU;
    b: Oct 1 10:00 to 11:30 at $3/h, 2 GPUs;
    c: Oct 2 00:00 to 01:00 at $0.5/h (H100)."""
    team = await team_id(db)
    a = await billed_cluster(db, team, [(T0 + timedelta(hours=22), T0 + timedelta(hours=26),
                                         1.0)], name="a")
    b = await billed_cluster(db, team, [(T0 + timedelta(hours=10),
                                         T0 + timedelta(hours=11, minutes=30), 3.0, 2)],
                             name="b")
    c = await billed_cluster(db, team, [(T0 + timedelta(hours=24), T0 + timedelta(hours=25),
                                         0.5)], name="c")
    async with db() as session, session.begin():
        await session.execute(update(Cluster).where(Cluster.id == c).values(
            gpu_type_id="NVIDIA H100 80GB HBM3"))
    return [a, b, c]


async def api(url: str, token: str, path: str, **params) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}
                                 ) as http:
        return await http.get(path, params=params)


# --- the client ----------------------------------------------------------------------------


async def test_every_create_field_ttl_stream_token_team(served, worker, sim, token) -> None:
    import asyncssh

    person = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    volume = sim.add_network_volume("data", 100, "US-TX-3", type="STANDARD")

    def scenario() -> tuple:
        with client(served.url, token) as hangar:
            volumes = hangar.list_network_volumes()
            created = hangar.create_cluster(
                "vol", GPU, network_volume_id=volume.id, ssh_public_keys=[person],
                secrets={"HF_TOKEN": "hf_very_secret"}, env={"A": "1"}, network="public",
                ttl_seconds=3600, max_hourly_cost=5.0, setup="echo $HF_TOKEN; true")
            ready = hangar.wait_until_ready(created.id, timeout=60)
            longer = hangar.update_cluster(created.id, ttl_seconds=7200)
            cleared = hangar.update_cluster(created.id, ttl_seconds=None)
            stream = hangar.create_stream_token(created.id)
            team = hangar.get_team()
            gone = hangar.delete_cluster(created.id, wait=True, timeout=60)
            with pytest.raises(Conflict) as ended:
                hangar.update_cluster(created.id, ttl_seconds=60)
            events = list(hangar.events(created.id))
            return volumes, created, ready, longer, cleared, stream, team, gone, ended.value, \
                events

    (volumes, created, ready, longer, cleared, stream, team, gone, ended,
     events) = await in_thread(scenario)

    assert [(v.id, v.name, v.size_gb, v.data_center_id, v.type) for v in volumes] == [
        (volume.id, "data", 100, "US-TX-3", "STANDARD")]
    # Every create field arrived, and the response carries them back (secrets by name).
    assert created.network_volume_id == volume.id and created.volume_gb == 0
    assert created.network == Network.PUBLIC and created.ssh_public_keys == [person]
    assert created.secret_names == ["HF_TOKEN"] and "hf_very_secret" not in str(created.raw)
    assert created.ttl_seconds == 3600 and created.max_hourly_cost == 5.0
    assert created.provider_cluster_id is None
    node = ready.nodes[0]
    assert node.status == NodeStatus.READY and node.data_center_id == "US-TX-3"
    assert node.ssh_command == f"ssh root@{node.public_ip} -p {node.ssh_port}"
    assert node.ssh_host_key.startswith("ssh-") and node.private_ip is None
    assert ready.expires_at == ready.ready_at + timedelta(seconds=3600)
    # The TTL moved, then went away; each change is a notice on the stream.
    assert longer.ttl_seconds == 7200
    assert longer.expires_at == ready.ready_at + timedelta(seconds=7200)
    assert cleared.ttl_seconds is None and cleared.expires_at is None
    notices = [e for e in events if isinstance(e, ClusterNotice) and e.code == "ttl_changed"]
    assert len(notices) == 2
    assert ended.status == 409 and ended.code == "cluster_ended"
    assert gone.finished
    # A stream token reads this cluster's events without the API token.
    assert stream.token and stream.expires_at > datetime.now(UTC)
    assert stream.token not in repr(stream)
    async with httpx.AsyncClient() as http:
        page = await http.get(stream.events_url, headers={"Accept": "application/json"})
    assert page.status_code == 200 and page.json()["items"][0]["type"] == "cluster.pending"
    # The team while the cluster ran: one cluster, one node, its price.
    assert team.name == "alpha" and team.live_clusters == 1 and team.live_nodes == 1
    assert team.hourly_spend == pytest.approx(ready.hourly_rate)
    assert team.month == datetime.now(UTC).strftime("%Y-%m")
    assert set(team.limits) == {"max_live_clusters", "max_live_nodes", "max_hourly_spend",
                                "monthly_budget"}
    assert all(lim.source == "default" for lim in team.limits.values())


async def test_async_usage_team_ttl_and_volumes(served, sim, token, db) -> None:
    a, b, c = await october(db)
    team = await team_id(db)
    now = utcnow()
    live = await billed_cluster(db, team, [(now - timedelta(hours=1), None, 2.0)],
                                name="live", ready_at=now - timedelta(minutes=50))
    async with db() as session, session.begin():
        await session.execute(update(Team).where(Team.id == team).values(monthly_budget=100))
    sim.add_network_volume("data", 50, "EU-RO-1", volume_id="vol-async")

    async with AsyncHangarClient(served.url, token, backoff=0.05) as hangar:
        by_day = await hangar.get_usage("2026-10-01", "2026-10-03")
        by_cluster = await hangar.get_usage(T0, T0 + timedelta(days=31), "cluster",
                                            page_size=1)
        by_gpu = await hangar.get_usage(T0, T0 + timedelta(days=2), group_by="gpu_type")
        text = await hangar.usage_csv(T0, T0 + timedelta(days=31), "cluster")
        mine = await hangar.get_team()
        longer = await hangar.update_cluster(str(live), ttl_seconds=3 * 3600)
        cleared = await hangar.update_cluster(str(live), ttl_seconds=None)
        volumes = await hangar.list_network_volumes()
        stream = await hangar.create_stream_token(str(live))

    # Per day: Oct 1 holds b (1.5 h × $3) and a's 2 h before midnight; Oct 2 the rest.
    assert [(i.key, i.cost) for i in by_day.items] == [
        ("2026-10-01", pytest.approx(4.5 + 2.0)), ("2026-10-02", pytest.approx(2.0 + 0.5))]
    assert by_day.items[0].gpu_hours == pytest.approx(1.5 * 2 + 2)
    assert by_day.total.cost == pytest.approx(9.0) and by_day.start == T0
    # Per cluster, one a page: every page followed, the total over all of them.
    assert sorted(i.key for i in by_cluster.items) == sorted(str(x) for x in (a, b, c))
    assert {i.cluster_name for i in by_cluster.items} == {"a", "b", "c"}
    assert by_cluster.total.cost == pytest.approx(9.0) and by_cluster.next is None
    assert {i.key: i.cost for i in by_gpu.items} == {
        "NVIDIA GeForce RTX 4090": pytest.approx(8.5),
        "NVIDIA H100 80GB HBM3": pytest.approx(0.5)}
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["cluster_id", "cluster_name", "cost_usd", "gpu_hours", "node_hours"]
    assert sum(float(r[2]) for r in rows[1:]) == pytest.approx(9.0)
    # The team: the running cluster, this month's cost, the budget it set for itself.
    assert mine.live_clusters == 1 and mine.hourly_spend == pytest.approx(2.0)
    assert mine.month_to_date_cost == pytest.approx(2.0, abs=0.05)
    assert mine.limits["monthly_budget"] == Limit(value=100.0, source="team")
    assert mine.monthly_budget == 100 and mine.budget_left == pytest.approx(98.0, abs=0.05)
    # The TTL counts from ready_at.
    assert longer.expires_at == longer.ready_at + timedelta(hours=3)
    assert cleared.ttl_seconds is None and cleared.expires_at is None
    assert [v.id for v in volumes] == ["vol-async"]
    assert f"/clusters/{live}/events?access_token=" in stream.events_url


# --- the command line ----------------------------------------------------------------------


async def test_hangar_usage_table_csv_json(served, sim, token, db) -> None:
    a, b, c = await october(db)
    env = cli_env(served.url, token)
    window = ("--from", "2026-10-01", "--to", "2026-10-03")

    run = await hangar(env, "usage", *window)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == ("usage from 2026-10-01 to 2026-10-03 (UTC, the end excluded), "
                        "per day")
    assert lines[1].split() == ["DAY", "COST", "GPU-HOURS", "NODE-HOURS"]
    assert lines[2].split() == ["2026-10-01", "$6.50", "5.00", "3.50"]
    assert lines[3].split() == ["2026-10-02", "$2.50", "3.00", "3.00"]
    assert lines[4].split() == ["TOTAL", "$9.00", "8.00", "6.50"]
    assert run.err == ""

    run = await hangar(env, "usage", *window, "--group-by", "cluster")
    assert run.code == 0
    rows = {line.split()[1]: line.split() for line in run.out.splitlines()[2:-1]}
    assert rows["a"] == [str(a), "a", "$4.00", "4.00", "4.00"]
    assert rows["b"] == [str(b), "b", "$4.50", "3.00", "1.50"]
    assert run.out.splitlines()[-1].split() == ["TOTAL", "$9.00", "8.00", "6.50"]

    # --csv and --json are the API's, byte for byte and document for document.
    for group in ("day", "cluster", "gpu_type"):
        params = {"from": "2026-10-01", "to": "2026-10-03", "group_by": group}
        run = await hangar(env, "usage", *window, "--group-by", group, "--csv")
        async with httpx.AsyncClient(base_url=served.url, headers={
                "Authorization": f"Bearer {token}", "Accept": "text/csv"}) as http:
            assert run.code == 0 and run.out == (await http.get("/usage", params=params)).text
        run = await hangar(env, "usage", *window, "--group-by", group, "--json")
        assert run.code == 0
        assert run.documents == [(await api(served.url, token, "/usage", **params)).json()]

    # Usage errors (exit 2) before any request; the API's refusals are failures (1).
    run = await hangar(env, "usage", "--from", "last tuesday")
    assert run.code == 2 and "not an ISO 8601 date" in run.err
    run = await hangar(env, "usage", "--csv", "--json")
    assert run.code == 2 and "not allowed with" in run.err
    run = await hangar(env, "usage", "--group-by", "week")
    assert run.code == 2
    run = await hangar(env, "usage", "--from", "2026-10-03", "--to", "2026-10-01")
    assert run.code == 1 and "422 invalid_window" in run.err


async def test_hangar_team(served, sim, token, db) -> None:
    team = await team_id(db)
    now = utcnow()
    await billed_cluster(db, team, [(now - timedelta(hours=1), None, 2.0),
                                    (now - timedelta(hours=1), None, 1.5, 2)], name="live")
    async with db() as session, session.begin():
        await session.execute(update(Team).where(Team.id == team).values(
            monthly_budget=500, max_live_nodes=8))
    env = cli_env(served.url, token)

    run = await hangar(env, "team")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == f"team alpha, {now:%Y-%m} (UTC)"
    assert lines[1].split() == ["live", "now", "1", "clusters,", "2", "nodes,", "$3.50/h"]
    assert lines[2].startswith("month to date   $3.5")
    assert lines[3].startswith("monthly budget  $500.00, $496.")
    limits = {line.split()[0]: line.split()[1:] for line in lines[5:]}
    assert limits["LIMIT"] == ["VALUE", "SOURCE"]
    assert limits["max_live_nodes"] == ["8", "team"]
    assert limits["monthly_budget"] == ["$500.00", "team"]
    assert limits["max_live_clusters"][-1] == "default"

    run = await hangar(env, "team", "--json")
    assert run.code == 0
    ours, theirs = run.documents[0], (await api(served.url, token, "/team")).json()
    for moving in ("month_to_date_cost", "budget_left"):  # running nodes: cost grows
        assert ours.pop(moving) == pytest.approx(theirs.pop(moving), abs=0.01)
    assert ours == theirs


async def test_hangar_clusters_ttl(served, sim, token, db) -> None:
    team = await team_id(db)
    now = utcnow()
    ready_at = (now - timedelta(minutes=10)).replace(microsecond=0)
    live = await billed_cluster(db, team, [(now - timedelta(minutes=11), None, 1.0)],
                                name="live", ready_at=ready_at)
    done = await billed_cluster(db, team, [(T0, T0 + timedelta(hours=1), 1.0)], name="done")
    env = cli_env(served.url, token)

    run = await hangar(env, "clusters", "ttl", str(live), "2h")
    assert run.code == 0, run.err
    expires = ready_at + timedelta(hours=2)
    assert run.out == (f"cluster live ({live}) expires at {expires:%Y-%m-%d %H:%M:%S} UTC "
                       "(ttl 7200 s after ready)\n")
    run = await hangar(env, "clusters", "ttl", str(live), "none", "--json")
    assert run.code == 0
    assert run.documents[0]["ttl_seconds"] is None and run.documents[0]["expires_at"] is None
    assert run.documents[0]["id"] == str(live)
    run = await hangar(env, "clusters", "ttl", str(live), "none")
    assert run.out == f"cluster live ({live}): no TTL, it runs until deleted\n"

    for bad in ("0", "-5", "soon", "1.5h"):
        run = await hangar(env, "clusters", "ttl", str(live), bad)
        assert run.code == 2 and "not a number of seconds" in run.err, bad
    run = await hangar(env, "clusters", "ttl", str(done), "3600")
    assert run.code == 1 and "409 cluster_ended" in run.err
    run = await hangar(env, "clusters", "ttl", str(uuid.uuid4()), "3600")
    assert run.code == 1 and "404 not_found" in run.err

    # An expiry already past tears the cluster down now.
    run = await hangar(env, "clusters", "ttl", str(live), "60")
    assert run.code == 0
    assert run.out == (f"cluster live ({live}) is terminating: its new TTL (60 s after "
                       "ready) has passed\n")


async def test_create_with_a_network_volume_and_listing_volumes(served, sim, token) -> None:
    volume = sim.add_network_volume("datasets", 200, "US-KS-2", type="HIGH_PERFORMANCE")
    env = cli_env(served.url, token)

    run = await hangar(env, "network-volumes")
    assert run.code == 0, run.err
    assert run.out.splitlines()[0].split() == ["ID", "NAME", "SIZE", "DATA", "CENTER", "TYPE"]
    assert run.out.splitlines()[1].split() == [volume.id, "datasets", "200", "GB", "US-KS-2",
                                               "HIGH_PERFORMANCE"]
    run = await hangar(env, "network-volumes", "--json")
    assert run.documents == [(await api(served.url, token, "/network-volumes")).json()]

    run = await hangar(env, "clusters", "create", "--name", "nv", "--gpu-type", GPU,
                       "--network-volume", volume.id, "--ttl", "2h", "--max-hourly-cost",
                       "5", "--json")
    assert run.code == 0, run.err
    created = run.documents[0]
    assert created["network_volume_id"] == volume.id and created["volume_gb"] == 0
    assert created["ttl_seconds"] == 7200 and created["max_hourly_cost"] == 5.0
    run = await hangar(env, "clusters", "create", "--name", "nv", "--gpu-type", GPU,
                       "--max-hourly-cost", "free")
    assert run.code == 2 and "positive amount" in run.err
    run = await hangar(env, "clusters", "create", "--name", "cheap", "--gpu-type", GPU,
                       "--max-hourly-cost", "0.01")
    assert run.code == 1 and "max_hourly_cost" in run.err


@pytest.mark.parametrize("argv", [["usage", "--csv"], ["team"], ["network-volumes"],
                                  ["clusters", "ttl", "{live}", "3600"]])
async def test_the_new_commands_load_nothing_of_the_server(served, sim, token, db,
                                                           argv) -> None:
    live = await make_cluster(db, await team_id(db), name="probe")
    argv = [a.format(live=live) for a in argv]
    probe = ("import sys\n"
             f"sys.argv = ['hangar', *{argv!r}]\n"
             "from app.cli import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
             "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, env=cli_env(served.url, token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    loaded = {name.split(".")[0] for name in err.decode().split()}
    heavy = {"fastapi", "starlette", "sqlalchemy", "asyncpg", "asyncssh", "arq", "redis",
             "pydantic", "typer", "click", "rich", "uvicorn", "structlog", "workers"}
    assert "hangar_client" in loaded and loaded & heavy == set()
    assert not {m for m in err.decode().split() if m.startswith("app.")} - {
        "app.cli", "app.cli.arguments", "app.cli.catalog", "app.cli.client", "app.cli.clusters",
        "app.cli.common", "app.cli.spend", "app.cli.text"}
