"""`network: cluster`: one RunPod Instant Cluster per Hangar cluster, through the simulator
(real HTTP, members that are real SSH servers): ranks and overlay addresses reach the setup
script, a lost create is adopted, capacity moves to the next data center, DELETE removes
the Instant Cluster and its members, an orphan is swept."""

from __future__ import annotations

import asyncio

from tests.support.stack import events, wait_for
from workers.cron import sweep

GPU = "NVIDIA GeForce RTX 4090"
# The setup writes what it got; the test reads it from the member's directory.
REPORT = ('echo "$HANGAR_NODE_RANK $HANGAR_NUM_NODES $HANGAR_NODE_ADDR $HANGAR_HEAD_ADDR '
          '$MASTER_ADDR $MASTER_PORT $NODE_RANK $NNODES $NODE_ADDR" > "$HOME/net.txt"; '
          'echo "rank $HANGAR_NODE_RANK of $HANGAR_NUM_NODES, head $HANGAR_HEAD_ADDR"')


async def create(client, **fields) -> str:
    body = {"name": "ic", "gpu_type": GPU, "network": "cluster", "nodes": 3, **fields}
    r = await client.post("/clusters", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def only_cluster(sim):
    clusters = sim.all_clusters()
    assert len(clusters) == 1, [c.name for c in clusters]
    return clusters[0]


async def test_three_nodes_ready_with_ranks_and_overlay_addresses(hangar, worker, sim) -> None:
    cid = await create(hangar, setup=REPORT)
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert body["network"] == "cluster"
    ic = only_cluster(sim)
    assert body["provider_cluster_id"] == ic.id
    assert ic.name.startswith("hangar-" + cid.replace("-", ""))
    assert sim.count("create_cluster") == 1 and sim.count("create_pod") == 0
    assert len(ic.members) == 3

    by_rank = {m.membership.rank: m for m in ic.members}
    head = by_rank[0].private_ip
    for node in body["nodes"]:
        member = by_rank[node["index"]]
        assert node["pod_id"] == member.id
        assert node["private_ip"] == member.private_ip
        assert node["public_ip"] and node["ssh_port"] == member.ssh.port
        assert node["hourly_rate"] and node["data_center_id"] == ic.data_center_id
        seen = (member.workdir / "net.txt").read_text().split()
        rank = str(node["index"])
        # HANGAR_*, the torchrun variables, and RunPod's own NODE_ADDR all agree.
        assert seen == [rank, "3", member.private_ip, head, head, "29500", rank, "3",
                        member.private_ip], seen
    assert body["hourly_rate"] == round(sum(n["hourly_rate"] for n in body["nodes"]), 6)

    lines = sorted(e["data"]["line"] for e in await events(hangar, cid)
                   if e["type"] == "node.output")
    assert lines == [f"rank {r} of 3, head {head}" for r in range(3)]

    r = await hangar.delete(f"/clusters/{cid}")
    assert r.status_code == 202
    body = await wait_for(hangar, cid, {"terminated"})
    assert all(n["status"] == "terminated" for n in body["nodes"])
    assert sim.alive_clusters() == [] and sim.alive_pods() == []
    assert sim.count("delete_cluster") == 1
    assert sim.count("delete_pod") == 0, "members are never terminated one by one"


async def test_lost_create_is_adopted_not_duplicated(hangar, worker, sim) -> None:
    rule = sim.faults.lost_create(count=1, mode="drop", endpoint="create_cluster")
    cid = await create(hangar, nodes=2, setup="true")
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert rule.remaining == 0, "the create's answer was lost"
    assert sim.count("create_cluster") == 1, "found by name, never created again"
    assert only_cluster(sim).id == body["provider_cluster_id"]


async def test_create_that_failed_before_creating_is_retried_under_a_new_name(
        hangar, worker, sim) -> None:
    # A 503 before the simulator creates anything: the name is looked up (twice, a retry
    # apart) before a new attempt, under a new name, creates it.
    sim.faults.server_error(503, count=1, endpoint="create_cluster")
    cid = await create(hangar, nodes=2, setup="true")
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert sim.count("create_cluster") == 2 and sim.count("create_cluster", status=503) == 1
    assert [c.name[-3:] for c in sim.all_clusters()] == ["-a2"]
    assert sim.count("list_clusters") >= 2, "looked up before creating again"
    notices = [e["data"]["code"] for e in await events(hangar, cid)
               if e["type"] == "cluster.notice"]
    assert notices == ["provider_retry"]


async def test_no_capacity_in_first_data_center_placed_in_second(hangar, worker, sim) -> None:
    sim.faults.capacity(gpu_ids=GPU, data_centers="US-KS-2", products="CLUSTER")
    cid = await create(hangar, nodes=2, data_center_ids=["US-KS-2", "EU-RO-1"], setup="true")
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    assert {n["data_center_id"] for n in body["nodes"]} == {"EU-RO-1"}
    assert sim.count("create_cluster") == 2 and sim.count("create_cluster", status=400) == 1
    names = [c.name for c in sim.all_clusters()]
    assert len(names) == 1 and names[0].endswith("-a2"), "a new name for the new attempt"
    notices = [e["data"] for e in await events(hangar, cid) if e["type"] == "cluster.notice"]
    assert [n["code"] for n in notices] == ["no_capacity_candidate"]
    assert "US-KS-2" in notices[0]["message"]


async def test_no_capacity_anywhere_fails_without_a_cluster(hangar, worker, sim) -> None:
    sim.faults.capacity(gpu_ids=GPU, products="CLUSTER")
    cid = await create(hangar, nodes=2, data_center_ids=["US-KS-2", "EU-RO-1"])
    body = await wait_for(hangar, cid, {"failed"})
    assert body["reason"] == "no_capacity"
    assert "US-KS-2" in body["message"] and "EU-RO-1" in body["message"]
    assert sim.all_clusters() == [] and sim.count("create_cluster") == 2


async def test_member_that_exits_fails_the_cluster_and_deletes_it(hangar, worker, sim) -> None:
    sim.faults.exit_after(0.2, status="ERROR", name_prefix="hangar-")  # every member, early
    cid = await create(hangar, nodes=2)
    body = await wait_for(hangar, cid, {"failed"}, timeout=40)
    assert body["reason"] == "pod_exited", body
    assert "Instant Cluster" in body["message"]
    assert sim.alive_clusters() == [] and sim.count("delete_cluster") == 1


async def test_delete_while_creating_removes_what_was_created(hangar, worker, sim) -> None:
    sim.faults.latency(1.0, endpoint="create_cluster", count=1)
    cid = await create(hangar, nodes=2)
    await asyncio.sleep(0.5)  # the create is in flight
    assert (await hangar.delete(f"/clusters/{cid}")).status_code == 202
    body = await wait_for(hangar, cid, {"terminated"}, timeout=40)
    assert all(n["status"] == "terminated" for n in body["nodes"])
    assert sim.count("create_cluster") == 1
    assert sim.alive_clusters() == [] and sim.alive_pods() == []


async def test_teardown_retried_until_runpod_confirms(hangar, worker, sim) -> None:
    cid = await create(hangar, nodes=2, setup="true")
    await wait_for(hangar, cid, {"ready"}, timeout=40)
    sim.faults.server_error(503, count=8, endpoint="delete_cluster")
    await hangar.delete(f"/clusters/{cid}")
    body = await wait_for(hangar, cid, {"terminated"}, timeout=40)
    assert all(n["terminated_at"] for n in body["nodes"])
    assert sim.alive_clusters() == []
    notices = [e["data"]["code"] for e in await events(hangar, cid)
               if e["type"] == "cluster.notice"]
    assert "terminate_retry" in notices


async def test_orphan_instant_cluster_is_swept(hangar, worker, sim, app_settings) -> None:
    # Created under Hangar's prefix by nobody Hangar knows (a create whose row was lost).
    from app.providers.base import ClusterSpec

    w = await worker.work()
    orphan = await w.provider.create_cluster(ClusterSpec(
        name=f"{app_settings.pod_name_prefix}-{'0' * 32}-ic-a1", image="img", gpu_type_id=GPU,
        gpu_count=1, node_count=2, volume_gb=0))
    # And one of a live Hangar cluster, which must stay.
    cid = await create(hangar, nodes=2, setup="true")
    body = await wait_for(hangar, cid, {"ready"}, timeout=40)
    await asyncio.sleep(app_settings.orphan_grace_s + 0.1)
    assert await sweep(w) == 1
    assert sim.cluster(orphan.id).alive is False
    assert [c.id for c in sim.alive_clusters()] == [body["provider_cluster_id"]]
    assert await sweep(w) == 0
