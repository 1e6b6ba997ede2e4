"""ETags on GET /clusters/{id} and GET /clusters: a 304 while nothing changed, a new tag as
soon as anything but the ticking cost changes, and the cost never more than a time bucket
old in a revalidated copy (app/api/etags.py)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from app.api.etags import BUCKET_S, cluster_etag, page_etag
from app.api.readpath import EncodedCluster, encode, encoded, page_json, row_of
from app.db.models import Node
from tests.support.events import finish, make_cluster

T0 = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


async def _get(client: httpx.AsyncClient, path: str, tag: str | None = None) -> httpx.Response:
    return await client.get(path, headers={"If-None-Match": tag} if tag else {})


async def _bill(db, cluster_id: uuid.UUID) -> None:
    """The cluster's node is running and billing."""
    async with db() as session, session.begin():
        await session.execute(update(Node).where(Node.cluster_id == cluster_id).values(
            status="ready", hourly_rate=0.69, started_at=datetime.now(UTC) - timedelta(hours=1),
            public_ip="203.0.113.7", ssh_port=22001))


async def test_get_cluster_revalidates(db, client_for) -> None:
    alpha = await client_for("alpha")
    cid = await make_cluster(db, alpha.team_id)
    path = f"/clusters/{cid}"
    first = await _get(alpha, path)
    tag = first.headers["etag"]
    assert tag.startswith('W/"') and tag.endswith('"')
    for sent in (tag, tag.removeprefix("W/"), f'"other", {tag}', "*"):
        again = await _get(alpha, path, sent)
        assert again.status_code == 304, sent
        assert again.content == b"" and again.headers["etag"] == tag
    assert (await _get(alpha, path, '"other"')).status_code == 200

    # Another team gets its 404, whatever it sends.
    beta = await client_for("beta")
    assert (await _get(beta, path, "*")).status_code == 404
    assert (await _get(beta, path, tag)).status_code == 404

    # A change (delete) is a new tag at once, so the old one gets the new state.
    assert (await alpha.delete(path)).status_code == 202
    changed = await _get(alpha, path, tag)
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["status"] in ("terminating", "terminated")


async def test_a_billing_cluster_revalidates_within_a_time_bucket(db, client_for) -> None:
    alpha = await client_for("alpha")
    cid = await make_cluster(db, alpha.team_id)
    await _bill(db, cid)
    path = f"/clusters/{cid}"
    for _ in range(3):  # a request may straddle a bucket boundary: then try again
        first = await _get(alpha, path)
        tag = first.headers["etag"]
        assert first.json()["accrued_cost"] > 0.68  # an hour at $0.69/h
        again = await _get(alpha, path, tag)
        if again.status_code == 304:
            break
        assert again.headers["etag"].split("-")[0] == tag.split("-")[0]  # the bucket moved
    else:
        raise AssertionError("never revalidated")
    bucket = int(tag.rstrip('"').rsplit("-", 1)[1])
    assert abs(bucket - int(datetime.now(UTC).timestamp()) // BUCKET_S) <= 1


async def test_list_clusters_revalidates(db, client_for) -> None:
    alpha = await client_for("alpha")
    await make_cluster(db, alpha.team_id, name="one")
    first = await _get(alpha, "/clusters")
    tag = first.headers["etag"]
    assert (await _get(alpha, "/clusters", tag)).status_code == 304
    # Another page is another representation.
    assert (await _get(alpha, "/clusters?status=ready", tag)).status_code == 200
    # A new cluster changes the page.
    await make_cluster(db, alpha.team_id, name="two")
    r = await _get(alpha, "/clusters", tag)
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    assert r.headers["etag"] != tag
    # Another team's page is its own.
    beta = await client_for("beta")
    r = await _get(beta, "/clusters", r.headers["etag"])
    assert r.status_code == 200 and r.json()["items"] == []


# --- what the tag covers ---------------------------------------------------------------------


def _encoded(billing: bool, **head) -> EncodedCluster:
    started = T0 - timedelta(hours=1)
    return encoded(uuid.uuid4(), uuid.uuid4(), ((0.69, started, None if billing else T0),),
                   json.dumps({"id": "x", **head}).encode()[:-1], b"[]",
                   b'"terminated_at":null}', status="ready" if billing else "terminated")


def test_a_billing_clusters_tag_moves_with_the_bucket_only() -> None:
    row = _encoded(billing=True)
    same_bucket = T0.replace(second=9)  # T0 is on a bucket boundary
    assert cluster_etag(row, T0) == cluster_etag(row, same_bucket)
    assert cluster_etag(row, T0) != cluster_etag(row, T0 + timedelta(seconds=BUCKET_S))


def test_a_cluster_that_bills_nothing_keeps_its_tag() -> None:
    row = _encoded(billing=False)
    assert cluster_etag(row, T0) == cluster_etag(row, T0 + timedelta(days=3))
    assert cluster_etag(row, T0) != cluster_etag(_encoded(billing=False, name="y"), T0)


def test_a_pages_tag_ignores_the_ticking_cost_only() -> None:
    record = _record()
    row = row_of(record)
    page = [encode(row)]
    early, later = T0, T0 + timedelta(seconds=5)
    assert page_json(page, None, early) != page_json(page, None, later)  # the cost grew
    assert page_etag(page, None, early) == page_etag(page, None, later)
    assert page_etag(page, None, early) != page_etag(page, None, T0 + timedelta(seconds=BUCKET_S))

    def changed(**columns) -> list[EncodedCluster]:
        return [encode(dataclasses.replace(row, columns={**row.columns, **columns}))]

    assert page_etag(changed(name="other"), None, early) != page_etag(page, None, early)
    # An env value that looks like a cost is part of the state.
    assert page_etag(changed(env={"accrued_cost": "1"}), None, early) != \
        page_etag(changed(env={"accrued_cost": "2"}), None, early)
    # Where the next page starts is part of the page; so are its clusters' order and number.
    assert page_etag(page, "http://x/clusters?cursor=a", early) != page_etag(page, None, early)
    other = changed(name="other")
    assert page_etag(page + other, None, early) != page_etag(other + page, None, early)
    assert page_etag(page + other, None, early) != page_etag(page, None, early)


def _record() -> tuple:
    """One row of the read path's select: team_id, the cluster's columns, its nodes (the
    columns the encoder names, in its order; those not given here are null)."""
    from app.schemas.clusters import CLUSTER_COLUMNS, NODE_COLUMNS

    values = {
        "id": uuid.uuid4(), "name": "c", "status": "ready", "gpu_type": "NVIDIA GeForce RTX 4090",
        "gpu_type_requested": "4090", "gpu_count": 1, "node_count": 1, "cloud_type": "secure",
        "allocation": "on-demand", "image": "img", "container_disk_gb": 50, "volume_gb": 20,
        "volume_mount_path": "/workspace", "ports": ["22/tcp"], "env": {},
        "data_center_ids": [], "setup": "", "ssh_public_key": "ssh-ed25519 A",
        "ssh_public_keys": [], "secret_names": [], "created_at": T0, "ready_at": T0,
    }
    node = {"index": 0, "status": "ready", "pod_id": "p", "public_ip": "203.0.113.7",
            "ssh_port": 22001, "gpu_type": "NVIDIA GeForce RTX 4090", "gpu_count": 1,
            "data_center_id": "EU", "hourly_rate": 0.69, "started_at": T0 - timedelta(hours=1),
            "ready_at": T0}
    return (uuid.uuid4(), *(values.get(f) for f in CLUSTER_COLUMNS),
            [tuple(node.get(f) for f in NODE_COLUMNS)])


async def test_finished_clusters_are_stable(db, client_for) -> None:
    alpha = await client_for("alpha")
    cid = await make_cluster(db, alpha.team_id)
    await finish(db, cid, None)
    tag = (await _get(alpha, f"/clusters/{cid}")).headers["etag"]
    assert "-" not in tag  # no time bucket: nothing bills
    assert (await _get(alpha, f"/clusters/{cid}", tag)).status_code == 304
