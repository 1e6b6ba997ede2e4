"""`hangar clusters …` and `hangar gpu-types` as a person or a script runs them: a child
process against the API (with worker and simulator), exit codes, standard output and
standard error, and the live progress as a terminal shows it (a pseudo-terminal)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import struct
import sys
import termios
from dataclasses import dataclass

import httpx

from app.cli.text import printable
from tests.client.conftest import GPU

SETUP = "echo bootstrap says hello; sleep 0.5; printf '\\033]0;retitled\\007done\\n'"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def documents(self) -> list:
        return [json.loads(line) for line in self.out.splitlines()]


def cli_env(url: str, token: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANGAR_")}
    env.update(HANGAR_URL=url, TERM="xterm-256color", COLUMNS="120", LINES="40", **extra)
    if token is not None:
        env["HANGAR_TOKEN"] = token
    return env


async def hangar(env: dict[str, str], *args: str, terminal: bool = False) -> Run:
    """`hangar *args`; with `terminal`, standard error is a pseudo-terminal (what a person
    at a terminal sees, escape sequences included)."""
    argv = [sys.executable, "-m", "app.cli", *args]
    if not terminal:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return Run(proc.returncode, out.decode(), err.decode())
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=follower)
    os.close(follower)

    def read_terminal() -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        screen, out = await asyncio.wait_for(asyncio.gather(
            asyncio.to_thread(read_terminal), proc.stdout.read()), 120)
        await proc.wait()
    finally:
        os.close(leader)
    return Run(proc.returncode, out.decode(), screen.decode(errors="replace"))


async def api_json(url: str, token: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}
                                 ) as http:
        return await http.get(path)


async def test_create_wait_json_then_ls_get_rm(served, worker, sim, token, tmp_path) -> None:
    env = cli_env(served.url, token)
    setup = tmp_path / "setup.sh"
    setup.write_text(SETUP)

    run = await hangar(env, "clusters", "create", "--name", "cli", "--gpu-type", GPU,
                       "--nodes", "2", "--setup", str(setup), "--env", "A=1",
                       "--wait", "--json")
    assert run.code == 0, run.err
    created, ready = run.documents  # the accepted cluster, then the ready one, last
    assert created["status"] == "pending" and created["env"] == {"A": "1"}
    assert ready["id"] == created["id"] and ready["status"] == "ready"
    assert [n["status"] for n in ready["nodes"]] == ["ready", "ready"]
    cid = ready["id"]
    # Progress went to standard error: statuses and the setup script's output, made
    # harmless: the server drops the escape sequence that would retitle a terminal
    # (app/ssh/output.py), and the CLI would replace any control character that came
    # through (`printable`, below).
    assert "node 0 ready" in run.err and "node 1 ready" in run.err
    assert "node 1 │ bootstrap says hello" in run.err
    assert "\x1b]0;" not in run.err and "node 0 │ done" in run.err
    assert printable("\x1b]0;retitled\x07done") == "\ufffd]0;retitled\ufffddone"

    run = await hangar(env, "clusters", "ls")
    assert run.code == 0 and cid in run.out and "ready" in run.out and "$0.88" in run.out
    run = await hangar(env, "clusters", "ls", "--status", "failed", "--json")
    assert run.code == 0 and run.documents == [[]]
    run = await hangar(env, "clusters", "ls", "--json")
    assert [c["id"] for c in run.documents[0]] == [cid]

    run = await hangar(env, "clusters", "get", cid)
    assert run.code == 0 and "NODE" in run.out and "127.0.0.1:" in run.out

    run = await hangar(env, "gpu-types", "--json")
    assert run.code == 0
    assert run.documents == [(await api_json(served.url, token, "/gpu-types")).json()]

    run = await hangar(env, "clusters", "rm", cid, "--wait")
    assert run.code == 0, run.err
    assert run.out.strip() == f"cluster cli ({cid}) is terminated"
    assert "node 0 terminated" in run.err and "cluster terminated" in run.err
    assert sim.alive_pods() == []

    # --json is the API's JSON, exactly (a terminated cluster's cost no longer moves).
    run = await hangar(env, "clusters", "get", cid, "--json")
    assert run.out == (await api_json(served.url, token, f"/clusters/{cid}")).text + "\n"

    run = await hangar(env, "clusters", "rm", cid, "--json")  # deleting again is fine
    assert run.code == 0 and run.documents[0]["status"] == "terminated"


async def test_a_failing_create_exits_1_with_the_reason(served, worker, sim, token) -> None:
    sim.faults.capacity(gpu_ids="NVIDIA GeForce RTX 4090")
    env = cli_env(served.url, token)
    run = await hangar(env, "clusters", "create", "--name", "full", "--gpu-type", GPU,
                       "--wait", "--json")
    assert run.code == 1
    failed = run.documents[-1]
    assert failed["status"] == "failed" and failed["reason"] == "no_capacity"
    assert re.search(r"error: cluster full \(.+\) is failed: no_capacity: ", run.err), run.err

    run = await hangar(env, "clusters", "watch", failed["id"])
    assert run.code == 1 and "no_capacity" in run.err


async def test_progress_on_a_terminal(served, worker, sim, token) -> None:
    env = cli_env(served.url, token)
    run = await hangar(env, "clusters", "create", "--name", "tty", "--gpu-type", GPU,
                       "--nodes", "2", "--setup", "-", "--wait", terminal=True)
    assert run.code == 0, run.err
    screen = ANSI.sub("", run.err)
    # The live panel: a row per node with its status, as it went.
    assert re.search(r"NODE\s+STATUS\s+ADDRESS", screen)
    for status in ("bootstrapping", "ready"):
        assert re.search(rf"\n0\s+{status}\s", screen), status
        assert re.search(rf"\n1\s+{status}\s", screen), status
    assert "elapsed" in screen and "$0.88/h" in screen
    # The result on standard output.
    assert re.search(r"^tty  \S+  ready  2 × 1 NVIDIA GeForce RTX 4090", run.out)

    cid = run.out.split()[1]
    run = await hangar(env, "clusters", "rm", cid, "--wait", terminal=True)
    assert run.code == 0
    assert re.search(r"\n0\s+terminated\s", ANSI.sub("", run.err))


async def test_watch_follows_a_cluster_until_ready(served, worker, sim, token) -> None:
    env = cli_env(served.url, token)
    run = await hangar(env, "clusters", "create", "--name", "w", "--gpu-type", GPU,
                       "--setup", "/dev/null")
    assert run.code == 0
    cid = run.out.strip()
    assert "follow it with `hangar clusters watch" in run.err
    run = await hangar(env, "clusters", "watch", cid)
    assert run.code == 0, run.err
    assert "node 0 ready" in run.err and "cluster ready" in run.err
    assert f"w  {cid}  ready" in run.out


async def test_usage_errors_exit_2(served, token) -> None:
    run = await hangar(cli_env(served.url, None), "clusters", "ls")
    assert run.code == 2 and "HANGAR_TOKEN is not set" in run.err
    env = cli_env(served.url, token)
    run = await hangar(env, "clusters", "create", "--name", "x")
    assert run.code == 2 and "--gpu-type" in run.err
    run = await hangar(env, "clusters", "create", "--name", "x", "--gpu-type", GPU,
                       "--secret", "NOT_IN_THE_ENVIRONMENT")
    assert run.code == 2 and "NOT_IN_THE_ENVIRONMENT" in run.err
    run = await hangar(env, "clusters", "ls", "--", "extra")
    assert run.code == 2
    # The API's refusals are failures (1), with what to fix.
    run = await hangar(env, "clusters", "create", "--name", "Bad_Name", "--gpu-type", GPU)
    assert run.code == 1 and "name:" in run.err and "422 invalid_request" in run.err
    run = await hangar(cli_env(served.url, "hgr_wrong"), "clusters", "ls")
    assert run.code == 1 and "401 unauthorized" in run.err


async def test_help_lists_every_command() -> None:
    run = await hangar(cli_env("http://127.0.0.1:9", None), "--help")
    assert run.code == 0
    for command in ("clusters", "gpu-types", "network-volumes", "usage", "team", "api",
                    "worker", "migrate", "dev", "keys"):
        assert re.search(rf"^\W+{command}\s", run.out, re.M), command
    run = await hangar(cli_env("http://127.0.0.1:9", None), "clusters", "--help")
    for command in ("create", "ls", "get", "watch", "rm", "ttl", "ssh"):
        assert re.search(rf"^\s+{command}\s", run.out, re.M), command


async def test_client_commands_load_nothing_of_the_server(served, token) -> None:
    """What makes `hangar clusters …` start fast: no FastAPI, SQLAlchemy, asyncssh, arq,
    pydantic or settings, and not typer either."""
    probe = ("import sys\n"
             "sys.argv = ['hangar', 'clusters', 'ls']\n"
             "from app.cli import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
             "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, env=cli_env(served.url, token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    loaded = {name.split(".")[0] for name in err.decode().split()}
    assert "hangar_client" in loaded and "httpx" in loaded
    heavy = {"fastapi", "starlette", "sqlalchemy", "asyncpg", "asyncssh", "arq", "redis",
             "pydantic", "typer", "click", "rich", "uvicorn", "structlog", "workers"}
    assert loaded & heavy == set()
    assert not {m for m in err.decode().split() if m.startswith("app.")} - {
        "app.cli", "app.cli.arguments", "app.cli.catalog", "app.cli.client", "app.cli.clusters",
        "app.cli.common", "app.cli.spend", "app.cli.text"}


async def test_ssh_onto_a_node_with_your_own_key(served, worker, sim, token, tmp_path) -> None:
    """`create --ssh-key` puts the caller's key on every node; `hangar clusters ssh` runs
    OpenSSH with the pinned host key (strict checking) and the command's exit status."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "id").write_bytes(key.export_private_key())
    (tmp_path / "id").chmod(0o600)
    (tmp_path / "id.pub").write_bytes(key.export_public_key())
    env = cli_env(served.url, token, HOME=str(tmp_path))
    run = await hangar(env, "clusters", "create", "--name", "mine", "--gpu-type", GPU,
                       "--nodes", "2", "--ssh-key", str(tmp_path / "id.pub"), "--wait",
                       "--json")
    assert run.code == 0, run.err
    cluster = run.documents[-1]
    assert cluster["ssh_public_keys"] == [key.export_public_key().decode().strip()]
    for node in ("0", "1"):
        run = await hangar(env, "clusters", "ssh", cluster["id"], "--node", node,
                           "-i", str(tmp_path / "id"), "--", "echo", "rank", node)
        assert run.code == 0, run.err
        assert run.out.strip() == f"rank {node}"
    failing = await hangar(env, "clusters", "ssh", cluster["id"], "-i", str(tmp_path / "id"),
                           "--", "exit", "3")
    assert failing.code == 3  # the remote command's status, as ssh gives it


async def test_rm_tears_several_clusters_down_together(served, worker, sim, token) -> None:
    """Every DELETE goes first; an id that cannot be deleted is reported, the others go on,
    and the exit code says something failed."""
    env = cli_env(served.url, token)
    ids = []
    for name in ("rm-a", "rm-b"):
        run = await hangar(env, "clusters", "create", "--name", name, "--gpu-type", GPU,
                           "--setup", "/dev/null", "--wait", "--json")
        assert run.code == 0, run.err
        ids.append(run.documents[-1]["id"])
    missing = "00000000-0000-4000-8000-000000000000"
    run = await hangar(env, "clusters", "rm", ids[0], missing, ids[1], "--wait")
    assert run.code == 1
    assert f"error: {missing}: " in run.err and "404 not_found" in run.err
    assert run.out.splitlines() == [f"cluster rm-a ({ids[0]}) is terminated",
                                    f"cluster rm-b ({ids[1]}) is terminated"]
    assert sim.alive_pods() == []

    run = await hangar(env, "clusters", "rm", *ids, "--json")  # again: fine
    assert run.code == 0 and [d["status"] for d in run.documents] == ["terminated"] * 2
