"""A minimal pod SSH server for the SSH client tests.

Behaves like a simulator pod's sshd: real asyncssh server on 127.0.0.1, public-key auth with
one authorized key, every exec runs as a ``bash -c`` subprocess with cwd and HOME set to the
pod's directory, and children (``nohup``/``setsid``) are not killed when the channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import asyncssh
import pytest

from app.ssh.keys import generate_keypair


class PodSSHServer:
    """One pod's sshd. ``restart(new_host_key=True)`` simulates a replaced machine on the
    same port."""

    def __init__(self, home: Path, authorized_key: str) -> None:
        self.home = home
        self.authorized_key = authorized_key
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.port = 0
        self.commands: list[str] = []
        self._server: asyncssh.SSHAcceptor | None = None
        self._procs: set[asyncio.subprocess.Process] = set()

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key().decode().strip()

    async def start(self) -> None:
        self._server = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.authorized_key),
            process_factory=self._handle,
            encoding=None,
            reuse_address=True,
            config=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def restart(self, *, new_host_key: bool = False) -> None:
        await self.stop()
        if new_host_key:
            self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        await self.start()

    async def _handle(self, process: asyncssh.SSHServerProcess) -> None:
        command = process.command or "exec bash"
        self.commands.append(command)
        env = {**os.environ, "HOME": str(self.home)}
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=self.home,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # closing the channel must not signal its children
        )
        self._procs.add(proc)

        async def feed_stdin() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(Exception):
                while data := await process.stdin.read(65536):
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            with contextlib.suppress(Exception):
                proc.stdin.close()

        async def pump(reader: asyncio.StreamReader | None, writer) -> None:
            assert reader is not None
            while data := await reader.read(65536):
                with contextlib.suppress(Exception):
                    writer.write(data)

        stdin_task = asyncio.create_task(feed_stdin())
        try:
            await asyncio.gather(
                pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)
            )
            status = await proc.wait()
        finally:
            stdin_task.cancel()
            self._procs.discard(proc)
        with contextlib.suppress(Exception):
            process.exit(status)


@pytest.fixture(scope="session")
def keypair() -> tuple[str, str]:
    return generate_keypair("hangar-test")


@pytest.fixture
async def pod(tmp_path: Path, keypair: tuple[str, str]):
    """A running pod SSH server whose HOME is a fresh tmp directory."""
    home = tmp_path / "pod-home"
    home.mkdir()
    server = PodSSHServer(home, keypair[1])
    await server.start()
    yield server
    await server.stop()
