"""`ssh_public_keys` and `secrets` on create: what is accepted and answered (keys echoed,
secret names only), and every bad input a 422 problem+json that names the field, never
quotes a secret value, and creates nothing."""

from __future__ import annotations

import asyncssh
from sqlalchemy import func, select

from app.db.models import Cluster, IdempotencyKey
from tests.support.stack import VALID, assert_problem


def public_key(alg: str = "ssh-ed25519", comment: str = "ada@laptop", **kw) -> str:
    key = asyncssh.generate_private_key(alg, comment=comment, **kw)
    return key.export_public_key("openssh").decode().strip()


ED = public_key()
VALUE = "sEcReT-vAlUe-7f3a9c"  # must never come back in any answer


def bad_bodies() -> list[tuple[str, dict, str]]:
    rsa_1024 = public_key("ssh-rsa", key_size=1024)
    ed_blob = ED.split()[1]
    ca = asyncssh.generate_private_key("ssh-ed25519")
    cert = ca.generate_user_certificate(ca, "ada").export_certificate("openssh").decode().strip()
    return [
        ("key garbage", {"ssh_public_keys": ["not a key"]}, "ssh_public_keys.0"),
        ("key bad base64", {"ssh_public_keys": [ED, "ssh-ed25519 AAAAnope"]}, "ssh_public_keys.1"),
        ("key type lies", {"ssh_public_keys": [f"ssh-rsa {ed_blob}"]}, "ssh_public_keys.0"),
        ("key dsa", {"ssh_public_keys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP"]}, "ssh_public_keys.0"),
        ("key rsa 1024", {"ssh_public_keys": [rsa_1024]}, "ssh_public_keys.0"),
        ("key with options", {"ssh_public_keys": [f'command="id" {ED}']}, "ssh_public_keys.0"),
        ("key certificate", {"ssh_public_keys": [cert]}, "ssh_public_keys.0"),
        ("key two lines", {"ssh_public_keys": [f"{ED}\n{public_key()}"]}, "ssh_public_keys.0"),
        ("key too long", {"ssh_public_keys": [ED + " " + "x" * 17000]}, "ssh_public_keys.0"),
        ("21 keys", {"ssh_public_keys": [public_key() for _ in range(21)]}, "ssh_public_keys"),
        ("keys not a list", {"ssh_public_keys": ED}, "ssh_public_keys"),
        ("secret reserved prefix", {"secrets": {"HANGAR_TOKEN": VALUE}}, "secrets"),
        ("secret PUBLIC_KEY", {"secrets": {"PUBLIC_KEY": VALUE}}, "secrets"),
        ("secret bad name", {"secrets": {"1TOKEN": VALUE}}, "secrets"),
        ("secret NUL", {"secrets": {"TOKEN": VALUE + "\x00"}}, "secrets"),
        ("secret too big", {"secrets": {"TOKEN": VALUE * 2000}}, "secrets"),
        ("secret too big in sum", {"secrets": {f"T{i}": VALUE * 100 for i in range(20)}},
         "secrets"),
        ("secrets too many", {"secrets": {f"T{i}": VALUE for i in range(101)}}, "secrets"),
        ("secret not a string", {"secrets": {"TOKEN": 7}}, "secrets.TOKEN"),
        ("secret also in env", {"env": {"TOKEN": "x"}, "secrets": {"TOKEN": VALUE}}, "secrets"),
    ]


async def test_bad_keys_and_secrets_are_422_and_create_nothing(client_for, db, sim) -> None:
    alpha = await client_for("alpha")
    for case, extra, field in bad_bodies():
        r = await alpha.post("/clusters", json={**VALID, **extra})
        problem = assert_problem(r, 422, "invalid_request")
        assert field in [e["field"] for e in problem["errors"]], (case, problem)
        assert VALUE not in r.text, (case, r.text)
    # An unpaired surrogate in a value (not UTF-8): refused, not a 500.
    r = await alpha.post("/clusters", headers={"Content-Type": "application/json"},
                         content=b'{"name": "a", "gpu_type": "4090", "secrets": '
                                 b'{"TOKEN": "' + VALUE.encode() + b'\\ud800"}}')
    assert_problem(r, 422, "invalid_request")
    assert VALUE not in r.text
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(Cluster)) == 0
    assert sim.count("create_pod") == 0


async def test_keys_are_echoed_and_secrets_are_named_never_shown(client_for, db) -> None:
    alpha = await client_for("alpha")
    rsa, ecdsa = public_key("ssh-rsa", key_size=2048), public_key("ecdsa-sha2-nistp256")
    body = {**VALID, "ssh_public_keys": [f"  {ED}  ", rsa, ecdsa, ED],
            "secrets": {"WANDB_API_KEY": VALUE, "HF_TOKEN": VALUE + "2"},
            "env": {"WANDB_PROJECT": "p"}}
    r = await alpha.post("/clusters", json=body)
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["ssh_public_keys"] == [ED, rsa, ecdsa]  # trimmed, the duplicate once
    assert created["secret_names"] == ["HF_TOKEN", "WANDB_API_KEY"]
    assert "secrets" not in created and VALUE not in r.text
    assert created["env"] == {"WANDB_PROJECT": "p"}
    node = created["nodes"][0]
    assert node["private_ip"] is None and node["ssh_command"] is None
    assert node["ssh_host_key"] is None

    one = await alpha.get(f"/clusters/{created['id']}")
    listed = await alpha.get("/clusters")
    for response in (one, listed):
        assert VALUE not in response.text
    assert one.json()["secret_names"] == created["secret_names"]
    assert listed.json()["items"][0]["ssh_public_keys"] == [ED, rsa, ecdsa]
    async with db() as session:
        row = await session.scalar(select(Cluster))
    assert row.secrets_enc and VALUE.encode() not in row.secrets_enc


async def test_idempotency_tells_secret_values_apart_without_storing_them(client_for,
                                                                          db) -> None:
    alpha = await client_for("alpha")
    body = {**VALID, "secrets": {"TOKEN": VALUE}}
    key = {"Idempotency-Key": "with-secrets"}
    first = await alpha.post("/clusters", json=body, headers=key)
    again = await alpha.post("/clusters", json=body, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await alpha.post("/clusters", json={**VALID, "secrets": {"TOKEN": VALUE + "x"}},
                             headers=key)
    assert_problem(other, 422)
    async with db() as session:
        stored = await session.scalar(select(IdempotencyKey))
    assert VALUE not in repr(stored.__dict__)


async def test_openapi_marks_secrets_write_only(client_for) -> None:
    doc = (await (await client_for("alpha")).get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    secrets = schemas["ClusterCreate"]["properties"]["secrets"]
    assert secrets["additionalProperties"]["writeOnly"] is True
    assert "secrets" not in schemas["ClusterOut"]["properties"]
    assert {"secret_names", "ssh_public_keys"} <= set(schemas["ClusterOut"]["properties"])
    node = schemas["NodeOut"]["properties"]
    assert {"private_ip", "ssh_command", "ssh_host_key"} <= set(node)
