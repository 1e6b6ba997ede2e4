import asyncio
import time

import asyncssh
import pytest

from app.embedded import free_port
from app.ssh.bootstrap import (
    BootstrapSession,
    HostKeyChanged,
    Progress,
    SSHUnavailable,
    pin_host_key,
)
from app.ssh.script import render_script

HOST = "127.0.0.1"


def session(pod, keypair, host_key=None):
    return BootstrapSession.connect(
        HOST, pod.port, keypair[0], host_key=host_key or pod.host_key_line, timeout=5
    )


async def wait_until_done(s: BootstrapSession, within: float = 5) -> Progress:
    deadline = time.monotonic() + within
    while True:
        progress = await s.read(0)
        if progress.complete or time.monotonic() > deadline:
            return progress
        await asyncio.sleep(0.05)


async def test_pin_host_key_returns_the_servers_key(pod, keypair):
    pinned = await pin_host_key(HOST, pod.port, keypair[0], username="root")
    assert pinned == pod.host_key_line
    assert pinned.startswith("ssh-ed25519 AAAA")
    assert pod.commands == ["true"]


async def test_pinned_session_runs_commands(pod, keypair):
    pinned = await pin_host_key(HOST, pod.port, keypair[0])
    async with session(pod, keypair, pinned) as s:
        status, out = await s.run('echo "$HOME"; pwd')
    assert status == 0
    assert out.split() == [str(pod.home), str(pod.home)]


async def test_changed_host_key_raises_and_runs_nothing(pod, keypair):
    pinned = await pin_host_key(HOST, pod.port, keypair[0])
    port = pod.port
    await pod.restart(new_host_key=True)  # same port, a different machine
    assert pod.port == port and pod.host_key_line != pinned
    marker = pod.home / "marker"
    with pytest.raises(HostKeyChanged):
        async with session(pod, keypair, pinned) as s:
            await s.run(f"touch {marker}")
    with pytest.raises(HostKeyChanged):
        async with session(pod, keypair, pinned) as s:
            await s.start(f"touch {marker}\n")
    assert not marker.exists()
    assert pod.commands == ["true"]  # only the pinning command ever ran


async def test_pinned_key_of_another_type_is_a_host_key_change(pod, keypair):
    # The server no longer offers a key of the pinned type: the key exchange fails.
    other = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    with pytest.raises(HostKeyChanged) as info:
        async with session(pod, keypair, other.export_public_key().decode().strip()):
            pass
    assert isinstance(info.value.__cause__, asyncssh.KeyExchangeFailed)
    assert pod.commands == []


async def test_connection_refused_is_unavailable(keypair):
    port = free_port()
    with pytest.raises(SSHUnavailable):
        await pin_host_key(HOST, port, keypair[0], timeout=2)
    with pytest.raises(SSHUnavailable):
        async with BootstrapSession.connect(HOST, port, keypair[0], host_key=keypair[1], timeout=2):
            pass


async def test_connection_reset_is_unavailable(keypair):
    async def hang_up(reader, writer):
        writer.transport.abort()

    server = await asyncio.start_server(hang_up, HOST, 0)
    try:
        with pytest.raises(SSHUnavailable):
            await pin_host_key(HOST, server.sockets[0].getsockname()[1], keypair[0], timeout=2)
    finally:
        server.close()


async def test_silent_server_times_out_as_unavailable(keypair):
    release = asyncio.Event()

    async def never_speak(reader, writer):
        await release.wait()
        writer.close()

    server = await asyncio.start_server(never_speak, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(SSHUnavailable):
            await pin_host_key(HOST, port, keypair[0], timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        release.set()
        server.close()


async def test_start_is_detached_and_idempotent(pod, keypair):
    script = render_script(
        'echo run >> runs\necho "started $$"\nsleep 0.8\necho done > finished\necho bye\n', {}
    )
    async with session(pod, keypair) as s:
        assert await s.start(script) is True
    # The session is closed; the script keeps running.
    await asyncio.sleep(0.2)
    assert (pod.home / "runs").read_text() == "run\n"
    assert not (pod.home / "finished").exists()

    async with session(pod, keypair) as s:
        # A re-run while it is running: not started again, the running script is untouched.
        assert await s.start("echo second >> runs\n") is False
        assert (pod.home / ".hangar" / "script.sh").read_text() == script
        progress = await wait_until_done(s)
    assert progress.exit_code == 0 and progress.complete
    assert progress.data.decode().splitlines()[1] == "bye"
    assert (pod.home / "finished").exists()

    async with session(pod, keypair) as s:
        assert await s.start(script) is False  # also after it ended
        await asyncio.sleep(0.3)
    assert (pod.home / "runs").read_text() == "run\n"
    hangar = pod.home / ".hangar"
    assert sorted(p.name for p in hangar.iterdir()) == [
        "exit_code",
        "output.log",
        "pid",
        "script.sh",
        "started",
    ]


async def test_concurrent_starts_start_once(pod, keypair):
    script = "echo run >> runs\n"
    async with session(pod, keypair) as a, session(pod, keypair) as b:
        results = await asyncio.gather(a.start(script), b.start(script), a.start(script))
        assert sorted(results) == [False, False, True]
        assert (await wait_until_done(a)).exit_code == 0
    assert (pod.home / "runs").read_text() == "run\n"


async def test_env_values_are_quoted(pod, keypair):
    env = {
        "PLAIN": "value",
        "SPACES": "a  b   c",
        "QUOTES": 'it\'s "quoted"',
        "DOLLAR": "$HOME and ${PATH} and `id` and $(id)",
        "MULTILINE": "line1\nline2",
        "EMPTY": "",
        "_UNDER9": "x;rm -rf /tmp/nope #",
    }
    setup = "for n in " + " ".join(env) + ' ; do printf "%s=[%s]\\n" "$n" "${!n}"; done\npwd\n'
    async with session(pod, keypair) as s:
        assert await s.start(render_script(setup, env)) is True
        progress = await wait_until_done(s)
    expected = "".join(f"{k}=[{v}]\n" for k, v in env.items()) + f"{pod.home}\n"
    assert progress.exit_code == 0
    assert progress.data.decode() == expected


def test_render_script_rejects_bad_names():
    for bad in ["1ABC", "A-B", "A B", "", "A=B", "É", "A\n"]:
        with pytest.raises(ValueError):
            render_script("true", {bad: "x"})
    with pytest.raises(ValueError):
        render_script("true", {"A": "nul\0"})
    script = render_script("echo hi", {"A_1": "x y"})
    assert script.splitlines() == [
        "#!/usr/bin/env bash",
        "# Written by Hangar: environment, then the setup script.",
        "export A_1='x y'",
        'cd "$HOME"',
        "echo hi",
    ]
    assert script.endswith("\n")


async def test_read_incrementally_with_offsets(pod, keypair):
    setup = (
        'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.1; done\n'
        "echo 'to stderr' >&2\nprintf 'nul\\000byte'\nexit 3\n"
    )
    async with session(pod, keypair) as s:
        before = await s.read(0)
        assert before == Progress(b"", 0, None, False)
        assert await s.start(render_script(setup, {})) is True
        collected = b""
        offset = 0
        reads = 0
        while True:
            progress = await s.read(offset, max_bytes=4)
            reads += 1
            assert len(progress.data) <= 4
            assert progress.next_offset == offset + len(progress.data)
            collected += progress.data
            offset = progress.next_offset
            if progress.complete:
                break
            if not progress.data:
                await asyncio.sleep(0.05)
        assert progress.exit_code == 3
        assert reads > 10
        # Past the end: nothing more, still complete.
        assert await s.read(offset + 100) == Progress(b"", offset + 100, 3, True)
    expected = b"".join(b"line %d\n" % i for i in range(1, 6)) + b"to stderr\nnul\0byte"
    assert collected == expected


async def test_read_reports_incomplete_when_max_bytes_is_reached(pod, keypair):
    async with session(pod, keypair) as s:
        await s.start("printf 0123456789\n")
        done = await wait_until_done(s)
        assert done.data == b"0123456789" and done.exit_code == 0
        part = await s.read(2, max_bytes=8)
        assert part == Progress(b"23456789", 10, 0, False)  # full slice: maybe more to come
        assert await s.read(10, max_bytes=8) == Progress(b"", 10, 0, True)
