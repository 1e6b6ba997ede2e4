"""Pods as real SSH servers: auth, exec, detached jobs, host keys, termination."""

from __future__ import annotations

import asyncio
import socket
import time

import asyncssh
import httpx
import pytest

from app.simulator import Simulator
from app.simulator.processes import is_running

from .helpers import create, our_body, ssh_connect, wait_status


async def running_pod(
    client: httpx.AsyncClient, public_key: str, name: str = "ssh-0", **kw
) -> dict:
    pod = await create(client, our_body(name, public_key=public_key, **kw))
    return await wait_status(client, pod["id"], "RUNNING")


async def test_exec_with_creation_key(
    sim: Simulator, client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    pod = await running_pod(client, public_key, env={"PUBLIC_KEY": public_key, "FOO": "bar baz"})
    workdir = str(sim.pod(pod["id"]).workdir)
    async with await ssh_connect(pod, ssh_key) as conn:
        result = await conn.run(
            'echo out; echo err >&2; pwd; echo "$HOME|$FOO|$RUNPOD_POD_ID"; exit 3'
        )
        assert result.exit_status == 3
        assert result.stdout == f"out\n{workdir}\n{workdir}|bar baz|{pod['id']}\n"
        assert result.stderr == "err\n"

        # Files are piped over stdin, binary-safe.
        payload = bytes(range(256)) * 1000
        result = await conn.run("cat > blob.bin && wc -c < blob.bin", input=payload, encoding=None)
        assert result.exit_status == 0 and result.stdout.strip() == str(len(payload)).encode()
        assert (sim.pod(pod["id"]).workdir / "blob.bin").read_bytes() == payload

        # A shell request reads commands from stdin.
        result = await conn.run(input="echo from-shell\nexit 4\n")
        assert result.stdout == "from-shell\n" and result.exit_status == 4
        # Two execs and a shell, counted for the admin view (benchmarks report them per node).
        assert sim.pod(pod["id"]).ssh_commands == 3

        async with conn.start_sftp_client() as sftp:
            assert "blob.bin" in await sftp.listdir(".")


async def test_other_keys_are_refused(
    client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    pod = await running_pod(client, public_key)
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(pod, stranger)
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            pod["ssh"]["direct"]["port"],
            username="root",
            password="root",
            client_keys=None,
            known_hosts=None,
            agent_path=None,
        )
    # Several keys in PUBLIC_KEY, one per line, all work.
    both = f"{stranger.export_public_key().decode().strip()}\n{public_key}\n"
    pod2 = await running_pod(client, public_key, name="ssh-1", env={"PUBLIC_KEY": both})
    for key in (stranger, ssh_key):
        async with await ssh_connect(pod2, key) as conn:
            assert (await conn.run("true")).exit_status == 0


async def test_detached_job_outlives_the_session(
    client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    pod = await running_pod(client, public_key)
    async with await ssh_connect(pod, ssh_key) as conn:
        started = time.monotonic()
        result = await conn.run("nohup sh -c 'sleep 1; echo done > f' > /dev/null 2>&1 &")
        assert result.exit_status == 0
        assert time.monotonic() - started < 0.5  # redirected: the session ends at once
        # Without redirection the job holds stdout (OpenSSH keeps such a session open);
        # the client hangs up anyway and the job must survive that too.
        proc = await conn.create_process("nohup sh -c 'sleep 1; echo done > g' &")
        await asyncio.sleep(0.2)
        proc.close()
    await asyncio.sleep(1.3)
    async with await ssh_connect(pod, ssh_key) as conn:
        result = await conn.run("cat f g")
        assert result.stdout == "done\ndone\n"


async def test_changed_host_key_after_first_connection(
    sim: Simulator, client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    sim.faults.change_host_key(name_prefix="hk-")
    pod = await running_pod(client, public_key, name="hk-0")
    steady = await running_pod(client, public_key, name="steady-0")
    port = pod["ssh"]["direct"]["port"]

    async def host_key(p: dict) -> asyncssh.SSHKey:
        async with await ssh_connect(p, ssh_key) as conn:
            key = conn.get_server_host_key()
            assert key is not None
            return key

    # A bare TCP probe (port check) is not an SSH connection and does not count.
    with socket.create_connection(("127.0.0.1", port)):
        pass
    first = await host_key(pod)
    second = await host_key(pod)
    third = await host_key(pod)
    assert first.public_data != second.public_data
    assert second.public_data == third.public_data
    assert (await host_key(steady)).public_data == (await host_key(steady)).public_data
    # A client that pinned the first key refuses the pod afterwards.
    known = asyncssh.import_known_hosts(f"[127.0.0.1]:{port} {first.export_public_key().decode()}")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            "127.0.0.1",
            port,
            username="root",
            client_keys=[ssh_key],
            known_hosts=known,
            agent_path=None,
        )


async def test_terminate_closes_ssh_and_kills_processes(
    sim: Simulator, client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    pod = await running_pod(client, public_key)
    workdir = sim.pod(pod["id"]).workdir
    async with await ssh_connect(pod, ssh_key) as conn:
        nohup = int((await conn.run("nohup sleep 60 > /dev/null 2>&1 & echo $!")).stdout)
        # setsid leaves the session; the environment marker still finds it.
        escaped = int(
            (await conn.run("setsid sleep 61 > /dev/null 2>&1 < /dev/null & echo $!")).stdout
        )
    assert is_running(nohup) and is_running(escaped)

    assert (await client.delete(f"/pods/{pod['id']}")).status_code == 204
    assert (await client.get(f"/pods/{pod['id']}")).status_code == 404
    with pytest.raises(OSError):
        await ssh_connect(pod, ssh_key)
    # Killed before the DELETE was answered (kill() re-scans until nothing is left).
    assert not is_running(nohup) and not is_running(escaped)
    assert not workdir.exists()


async def test_stop_kills_and_start_restores_ssh(
    sim: Simulator, client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    pod = await running_pod(client, public_key)
    async with await ssh_connect(pod, ssh_key) as conn:
        pid = int((await conn.run("nohup sleep 60 > /dev/null 2>&1 & echo $!")).stdout)
        await conn.run("echo kept > state")
    resp = await client.post(f"/pods/{pod['id']}/action", json={"action": "stop"})
    assert resp.json()["status"] == "EXITED"
    with pytest.raises(OSError):
        await ssh_connect(pod, ssh_key)
    assert not is_running(pid)
    await client.post(f"/pods/{pod['id']}/action", json={"action": "start"})
    again = await wait_status(client, pod["id"], "RUNNING")
    async with await ssh_connect(again, ssh_key) as conn:
        assert (await conn.run("cat state")).stdout == "kept\n"  # the disk survives a stop


async def test_simulator_stop_cleans_up(ssh_key: asyncssh.SSHKey, public_key: str) -> None:
    sim = Simulator(provision_delay=0, start_delay=0)
    base = await sim.start()
    work_dir = sim.work_dir
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": "Bearer sim-key"}) as c:
        pod = await running_pod(c, public_key)
        async with await ssh_connect(pod, ssh_key) as conn:
            pid = int((await conn.run("nohup sleep 60 > /dev/null 2>&1 & echo $!")).stdout)
    await sim.stop()
    assert not is_running(pid)
    assert not work_dir.exists()
    with pytest.raises(OSError):
        await ssh_connect(pod, ssh_key)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.get(f"{base}/pods")


async def test_bad_env_name_fails_the_command_not_the_server(
    client: httpx.AsyncClient, ssh_key: asyncssh.SSHKey, public_key: str
) -> None:
    pod = await running_pod(client, public_key, env={"PUBLIC_KEY": public_key, "A=B": "x"})
    async with await ssh_connect(pod, ssh_key) as conn:
        result = await conn.run("true")
        assert result.exit_status == 127 and "bash:" in result.stderr
