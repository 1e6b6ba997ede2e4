"""People on their nodes and secrets through the whole pipeline, against the simulator
(real SSH): the caller's keys log in as root on every node with the host key Hangar pinned;
secrets reach the setup script after worker kills, are redacted from its output, and are
deleted when the cluster ends; rows written under an old HANGAR_SECRET_KEY stay readable
and `hangar keys rotate-secrets` moves them to the new one."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid

import asyncssh
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from app.db.models import Cluster
from app.domain.crypto import Keyring, KeyUnavailable
from app.domain.secrets import decrypt_secrets
from tests.support.stack import RunningWorker, WorkerProcesses, events, settings_env, wait_for

SSH_COMMAND = re.compile(r"^ssh root@(\S+) -p (\d+)$")
TOKEN = "hf_" + uuid.uuid4().hex  # a secret value: never in an event


def user_key(alg: str = "ssh-ed25519", **kw) -> asyncssh.SSHKey:
    return asyncssh.generate_private_key(alg, comment="ada@laptop", **kw)


def public_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


async def login(node: dict, key: asyncssh.SSHKey, host_key: str | None = None) -> str:
    """Log in as the node's `ssh_command` says, trusting only `host_key` (default: the
    node's `ssh_host_key`); returns what `echo` printed."""
    host, port = SSH_COMMAND.match(node["ssh_command"]).groups()
    pinned = asyncssh.import_public_key(host_key or node["ssh_host_key"])
    async with asyncssh.connect(
        host, int(port), username="root", client_keys=[key], known_hosts=([pinned], [], []),
        agent_path=None, config=None, connect_timeout=5,
    ) as conn:
        result = await conn.run("echo logged-in", check=True)
    return str(result.stdout).strip()


async def test_own_keys_log_in_on_every_node(hangar, worker, sim) -> None:
    ada, bob, stranger = user_key(), user_key("ssh-rsa", key_size=2048), user_key()
    r = await hangar.post("/clusters", json={
        "name": "people", "gpu_type": "4090", "nodes": 2,
        "ssh_public_keys": [public_line(ada), public_line(bob)],
    })
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready", body

    for node in body["nodes"]:
        assert SSH_COMMAND.match(node["ssh_command"]).groups() == (
            node["public_ip"], str(node["ssh_port"]))
        assert node["ssh_host_key"].startswith("ssh-") and node["private_ip"] is None
        assert await login(node, ada) == "logged-in"
        assert await login(node, bob) == "logged-in"
        with pytest.raises(asyncssh.PermissionDenied):
            await login(node, stranger)
        # The pinned key is what makes the login safe: another one is refused.
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            await login(node, ada, host_key=public_line(user_key()))

    # RunPod got Hangar's key and the caller's, one a line, in PUBLIC_KEY.
    for pod in sim.alive_pods():
        lines = pod.request["env"]["PUBLIC_KEY"].split("\n")
        assert lines == [body["ssh_public_key"], public_line(ada), public_line(bob)]

    await hangar.delete(f"/clusters/{cid}")
    body = await wait_for(hangar, cid, {"terminated"})
    assert [n["ssh_command"] for n in body["nodes"]] == [None, None]


# The value is printed whole, then in two parts a second apart (two reads of the output).
SETUP = r"""
echo start >> "$HOME/runs"
echo "begin $HF_TOKEN"
sleep 2
printf '%s' "${HF_TOKEN:0:9}"; sleep 1; printf '%s\n' "${HF_TOKEN:9} end"
printf '%s' "$HF_TOKEN" > "$HOME/seen"
echo done
"""


async def test_secrets_survive_worker_kills_and_go_with_the_cluster(
    hangar, sim, app_settings, db
) -> None:
    # Creates take 1 s: the first kill lands before any script started (the bootstrap is
    # done by a new process, from the rows); the second while the setup runs.
    sim.faults.latency(1.0, endpoint="create", count=2)
    workers = WorkerProcesses(app_settings)
    restart, kill = workers.start, workers.kill

    try:
        await restart()
        r = await hangar.post("/clusters", json={
            "name": "secretive", "gpu_type": "4090", "nodes": 2, "setup": SETUP,
            "secrets": {"HF_TOKEN": TOKEN},
        })
        assert r.status_code == 202, r.text
        cid = r.json()["id"]
        await asyncio.sleep(0.5)
        await kill()

        await restart()
        for _ in range(300):  # until both scripts have started and said so
            begun = [e for e in await events(hangar, cid) if e["type"] == "node.output"]
            if len(begun) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(begun) >= 2, begun
        await kill()

        await restart()
        body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
        assert body["status"] == "ready", body
        await check_delivered_and_redacted(hangar, sim, cid)

        await hangar.delete(f"/clusters/{cid}")
        body = await wait_for(hangar, cid, {"terminated"}, timeout=30)
    finally:
        await workers.stop()  # never leave a worker behind to take other tests' jobs

    assert body["secret_names"] == ["HF_TOKEN"]  # names stay; values are gone
    async with db() as session:
        row = await session.get(Cluster, uuid.UUID(cid))
    assert row.secrets_enc is None


async def check_delivered_and_redacted(hangar, sim, cid: str) -> None:
    assert len(sim.alive_pods()) == 2
    for pod in sim.alive_pods():
        assert (pod.workdir / "seen").read_text() == TOKEN  # the setup had it
        assert (pod.workdir / "runs").read_text() == "start\n"  # and ran once
        hangar_dir = pod.workdir / ".hangar"
        assert not (hangar_dir / "secrets.env").exists()
        assert TOKEN not in (hangar_dir / "script.sh").read_text()
        assert TOKEN not in str(pod.request) and TOKEN not in str(pod.env)
    evs = await events(hangar, cid)
    lines = sorted(e["data"]["line"] for e in evs if e["type"] == "node.output")
    assert lines == sorted(["begin [redacted]", "[redacted] end", "done"] * 2)
    assert TOKEN not in str(evs) and TOKEN[:9] not in str(evs)


async def test_rotation_keeps_old_rows_readable(hangar, sim, app_settings, db) -> None:
    """A cluster stored under the old key is bootstrapped by a worker on the new key (the
    old one listed for decryption); `hangar keys rotate-secrets` re-encrypts the rows,
    after which the new key alone reads them."""
    old = app_settings.secret_key.get_secret_value()  # the API writes with it
    new = Fernet.generate_key().decode()
    rotated_settings = app_settings.model_copy(update={
        "secret_key": SecretStr(new), "secret_key_old": SecretStr(old)})
    r = await hangar.post("/clusters", json={
        "name": "rotated", "gpu_type": "4090", "secrets": {"HF_TOKEN": TOKEN},
        "setup": 'printf %s "$HF_TOKEN" > "$HOME/seen"'})
    cid = r.json()["id"]
    worker = RunningWorker(rotated_settings)
    await worker.start()
    try:
        body = await wait_for(hangar, cid, {"ready", "failed"})
        assert body["status"] == "ready", body
    finally:
        await worker.stop()
    assert (sim.alive_pods()[0].workdir / "seen").read_text() == TOKEN

    env = settings_env(rotated_settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "keys", "rotate-secrets", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, out
    assert "re-encrypted 1 cluster(s)" in out
    assert new not in out and old not in out

    async with db() as session:
        row = await session.scalar(select(Cluster).where(Cluster.id == uuid.UUID(cid)))
    alone = Keyring(new)
    assert decrypt_secrets(alone, row.secrets_enc) == {"HF_TOKEN": TOKEN}
    assert "PRIVATE KEY" in alone.decrypt(row.ssh_private_key_enc)
    with pytest.raises(KeyUnavailable):
        Keyring(old).decrypt(row.ssh_private_key_enc)

    # A row no key reads (its key lost) is reported, and the command fails.
    async with db() as session, session.begin():
        session.add(Cluster(**{
            **{c.name: getattr(row, c.name) for c in Cluster.__table__.columns},
            "id": uuid.uuid4(), "ssh_private_key_enc": Keyring("lost key").encrypt("x")}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "keys", "rotate-secrets",
        env={k: v for k, v in env.items() if k != "HANGAR_SECRET_KEY_OLD"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 1 and "1 cluster(s) could not be decrypted" in out, out
