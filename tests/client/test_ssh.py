"""`hangar clusters ssh`: the known_hosts entry and ssh command line it builds, and that
OpenSSH with them logs into a real (simulated) pod only when the pinned key is the pod's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import httpx
import pytest

from app.cli.ssh import NotReachable, Target, ssh_argv, target
from tests.simulator.helpers import create, our_body, wait_status

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIBmN5Vq9mQ6sTgq3OeCW1Y6O5wY0q1dWm0Q0l9kqJ3rN"


def test_known_hosts_line_and_command_line(tmp_path: Path) -> None:
    t = target("203.0.113.7", 22001, f"ssh-ed25519 {KEY} root@pod")
    assert t == Target("203.0.113.7", 22001, "ssh-ed25519", KEY)
    assert t.known_hosts_line == f"[203.0.113.7]:22001 ssh-ed25519 {KEY}\n"
    assert target("2001:db8::1", 22, f"ssh-ed25519 {KEY}").known_hosts_line == (
        f"2001:db8::1 ssh-ed25519 {KEY}\n")

    argv = ssh_argv(t, tmp_path / "known_hosts", ["nvidia-smi", "-L"], identity="~/.ssh/k")
    assert argv[0] == "ssh"
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert f'UserKnownHostsFile="{tmp_path / "known_hosts"}"' in options
    assert {"StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null",
            "UpdateHostKeys=no", "IdentitiesOnly=yes"} <= set(options)
    assert argv[argv.index("-p") + 1] == "22001" and argv[argv.index("-i") + 1] == "~/.ssh/k"
    # The destination after `--`, the remote command after it, verbatim.
    assert argv[-4:] == ["--", "root@203.0.113.7", "nvidia-smi", "-L"]
    assert ssh_argv(t, tmp_path / "k")[-2:] == ["--", "root@203.0.113.7"]


@pytest.mark.parametrize(("ip", "port", "key", "why"), [
    (None, 22001, f"ssh-ed25519 {KEY}", "no public address"),
    ("203.0.113.7", 22001, None, "not pinned"),
    ("-oProxyCommand=sh", 22, f"ssh-ed25519 {KEY}", "not an IP address"),
    ("203.0.113.7", 70000, f"ssh-ed25519 {KEY}", "not a port"),
    ("203.0.113.7", 22, f"ssh-ed25519 {KEY}\n* ssh-ed25519 {KEY}", "not an OpenSSH"),
    ("203.0.113.7", 22, "ssh-ed25519", "not an OpenSSH"),
    ("203.0.113.7", 22, f"evil {KEY}", "not an OpenSSH"),
])
def test_what_the_api_says_is_checked(ip, port, key, why) -> None:
    with pytest.raises(NotReachable, match=why):
        target(ip, port, key)


async def run(argv: list[str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_openssh_logs_in_only_with_the_pinned_key(sim, runpod_key, tmp_path) -> None:
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    identity = tmp_path / "id_ed25519"
    user_key.write_private_key(str(identity))
    identity.chmod(0o600)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10,
                                 headers={"Authorization": f"Bearer {runpod_key}"}) as rp:
        pod = await create(rp, our_body(
            "ssh-test", env={"PUBLIC_KEY": user_key.export_public_key().decode()}))
        pod = await wait_status(rp, pod["id"], "RUNNING")
    host, port = pod["ssh"]["direct"]["host"], pod["ssh"]["direct"]["port"]
    pinned = sim.pod(pod["id"]).host_key.export_public_key().decode()
    known_hosts = tmp_path / "known_hosts"

    def argv(t: Target) -> list[str]:
        known_hosts.write_text(t.known_hosts_line)
        cmd = ssh_argv(t, known_hosts, ["echo", "hello from", "$HOSTNAME-less pod"],
                       identity=str(identity))
        # No prompts and no personal ssh config in a test.
        return [cmd[0], "-o", "BatchMode=yes", "-F", "/dev/null", *cmd[1:]]

    code, out, err = await run(argv(target(host, port, pinned)))
    assert code == 0, err
    assert out.startswith("hello from")

    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    code, out, err = await run(argv(target(host, port, impostor)))
    assert code == 255 and out == ""
    assert "Host key verification failed" in err
