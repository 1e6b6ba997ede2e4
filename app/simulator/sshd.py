"""Real SSH servers for simulated pods (asyncssh), one per RUNNING pod.

Each server listens on its own loopback port and:

- accepts only public-key auth with the keys from the pod's `PUBLIC_KEY` env (any
  username; clients use `root`);
- runs each exec request as `bash -c <command>` (a shell request as `bash`) in the pod's
  directory with `HOME` set to it and the pod's env exported, stdin/stdout/stderr wired to
  the channel and the exit status returned;
- like OpenSSH, keeps the channel open until the command's stdout/stderr reach EOF, so a
  background job that still holds them keeps the session open (redirect it, as on a real
  pod); it never signals a command when the channel closes;
- offers SFTP/SCP chrooted to the pod directory.

The host key is chosen per connection, which is how the "changed host key" fault works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import asyncssh

from app.simulator.processes import ProcessTracker

log = logging.getLogger(__name__)

# How long to wait for an SSH client's banner before treating a connection as real.
# Connections that close without sending a byte (TCP port probes) are not counted.
_BANNER_WAIT = 0.25
_CHUNK = 65536


def parse_authorized_keys(text: str | None) -> list[asyncssh.SSHKey]:
    """Public keys from a `PUBLIC_KEY` value: one OpenSSH key per line, bad lines skipped."""
    keys: list[asyncssh.SSHKey] = []
    for raw in (text or "").replace("\\n", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        # authorized_keys lines may carry options before the key type: start at the type.
        words = line.split()
        start = next((i for i, w in enumerate(words) if w.startswith(("ssh-", "ecdsa-", "sk-"))), 0)
        try:
            keys.append(asyncssh.import_public_key(" ".join(words[start:])))
        except (asyncssh.KeyImportError, ValueError):
            continue  # a malformed line simply authorizes nothing
    return keys


class _AuthServer(asyncssh.SSHServer):
    """Public-key-only auth against a fixed key set, for any username."""

    def __init__(self, authorized: frozenset[bytes]) -> None:
        self._authorized = authorized

    def begin_auth(self, username: str) -> bool:
        return True  # auth is always required

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data in self._authorized

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        # Local port forwarding (ssh -L) to the pod's own loopback, as `direct` allows.
        return dest_host in ("127.0.0.1", "localhost", "::1")


async def _client_spoke(sock: socket.socket) -> bool:
    """False when the peer closed without sending anything (a bare TCP probe)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, _BANNER_WAIT)
    except TimeoutError:
        return True  # a client that waits for our banner first
    finally:
        loop.remove_reader(fd)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return True
    except OSError:
        return False


class PodSshServer:
    """The SSH server of one pod. `start()` binds, `close()` stops it and drops sessions."""

    def __init__(
        self,
        *,
        host: str,
        authorized_keys: str | None,
        host_key_for_connection: Callable[[], asyncssh.SSHKey],
        workdir: Path,
        env: Callable[[str], Mapping[str, str]],
        tracker: ProcessTracker,
        sftp: bool = True,
        on_command: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.workdir = workdir
        self.tracker = tracker
        self.port: int | None = None
        self.connections = 0  # SSH connections seen (bare TCP probes excluded)
        self._on_command = on_command  # called for every exec/shell request
        self._authorized = frozenset(k.public_data for k in parse_authorized_keys(authorized_keys))
        self._host_key = host_key_for_connection
        self._env = env
        self._sftp = sftp
        self._sock: socket.socket | None = None
        self._accept_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._options: dict[bytes, asyncssh.SSHServerConnectionOptions] = {}

    async def start(self, port: int = 0) -> int:
        """Listen on `port` (0 or taken: a free one); returns the port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stalls
        try:
            sock.bind((self.host, port))
        except OSError:
            if not port:
                sock.close()
                raise
            sock.bind((self.host, 0))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._accept_task = asyncio.create_task(self._accept_loop())
        return self.port

    async def close(self) -> None:
        """Stop listening and abort every open SSH connection."""
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._accept_task
            self._accept_task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for conn in list(self._conns):
            conn.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- connections ----------------------------------------------------------------

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            try:
                conn_sock, _ = await loop.sock_accept(self._sock)
            except OSError:
                return
            task = asyncio.create_task(self._serve(conn_sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _options_for(self, key: asyncssh.SSHKey) -> asyncssh.SSHServerConnectionOptions:
        cached = self._options.get(key.public_data)
        if cached is None:
            authorized = self._authorized
            cached = await asyncssh.SSHServerConnectionOptions.construct(
                server_host_keys=[key],
                server_factory=lambda: _AuthServer(authorized),
                process_factory=self._run_process,
                sftp_factory=self._sftp_server if self._sftp else None,
                allow_scp=self._sftp,
                encoding=None,  # bytes end to end: `cat > file` must carry binary data
                line_editor=False,
                agent_forwarding=False,
                x11_forwarding=False,
                login_timeout=30,
            )
            self._options[key.public_data] = cached
        return cached

    async def _serve(self, sock: socket.socket) -> None:
        try:
            if not await _client_spoke(sock):
                sock.close()
                return
            self.connections += 1
            options = await self._options_for(self._host_key())
            conn = await asyncssh.run_server(sock, options=options)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            log.debug("ssh connection ended before auth: %s", exc)
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._conns.add(conn)
        try:
            await conn.wait_closed()
        finally:
            self._conns.discard(conn)

    def _sftp_server(self, chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=os.fsencode(self.workdir))

    # --- sessions -------------------------------------------------------------------

    async def _run_process(self, process: asyncssh.SSHServerProcess) -> None:
        """Run one exec/shell request as a real subprocess wired to the channel."""
        if process.subsystem:
            process.stderr.write(f"subsystem {process.subsystem!r} not supported\n".encode())
            process.exit(1)
            return
        if self._on_command is not None:
            self._on_command()
        username = process.get_extra_info("username") or "root"
        argv = ["bash"] if process.command is None else ["bash", "-c", process.command]
        try:
            child = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(self.workdir),
                env=dict(self._env(username)),
                # Its own session: closing the channel must not signal the command or
                # anything it backgrounds, and the pod can kill the session later.
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: an env name with "=" or NUL
            with contextlib.suppress(Exception):
                process.stderr.write(f"bash: {exc}\n".encode())
                process.exit(127)
            return
        self.tracker.add(child.pid)
        feeder = asyncio.create_task(self._pump_stdin(process, child))
        try:
            await asyncio.gather(
                self._pump_out(child, 1, process.stdout), self._pump_out(child, 2, process.stderr)
            )
            status = await child.wait()
        finally:
            feeder.cancel()
        with contextlib.suppress(Exception):
            if status < 0:
                process.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
            else:
                process.exit(status)

    @staticmethod
    async def _pump_stdin(
        process: asyncssh.SSHServerProcess, child: asyncio.subprocess.Process
    ) -> None:
        assert child.stdin is not None
        try:
            while True:
                try:
                    chunk = await process.stdin.read(_CHUNK)
                except asyncssh.SignalReceived as sig:
                    # `process.send_signal("TERM")` from the client reaches the command.
                    with contextlib.suppress(OSError, AttributeError):
                        os.killpg(child.pid, getattr(signal, f"SIG{sig.signal}"))
                    continue
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not chunk:
                    break
                child.stdin.write(chunk)
                await child.stdin.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            with contextlib.suppress(Exception):
                child.stdin.close()

    @staticmethod
    async def _pump_out(
        child: asyncio.subprocess.Process, fd: int, writer: asyncssh.SSHWriter
    ) -> None:
        reader = child.stdout if fd == 1 else child.stderr
        assert reader is not None
        while chunk := await reader.read(_CHUNK):
            try:
                writer.write(chunk)
                await writer.drain()
            except (OSError, asyncssh.Error):
                # The client went away. Close our end so the command sees EPIPE/SIGPIPE
                # on its next write, which is what happens under sshd.
                transport = getattr(child, "_transport", None)
                pipe = transport.get_pipe_transport(fd) if transport is not None else None
                if pipe is not None:
                    pipe.close()
                    return
                # Cannot close it: keep draining so the command never blocks on a full pipe.
                while await reader.read(_CHUNK):
                    pass
                return
