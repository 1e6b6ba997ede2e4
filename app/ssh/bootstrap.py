"""Bootstrap a pod over SSH: pin its host key, upload and start the setup script, follow its output.

Typical flow (one node; every step is safe to repeat after a crash of the worker):

1. The first connection trusts on first use; store its key before running anything::

       async with BootstrapSession.connect(host, port, private_key, host_key=None) as s:
           store(s.host_key)
           await s.start(render_script(setup, env))   # False if it was already started
           progress = await s.read(offset)

2. Every later connection passes the stored key as ``host_key`` and is refused
   (:class:`HostKeyChanged`) by any other server.
3. Feed ``progress.data`` to an :class:`app.ssh.output.OutputLines` and persist its offset.

Everything on the pod lives under ``$HOME/.hangar`` (``/root/.hangar`` on a real pod):

``script.sh``     the uploaded script (never rewritten once started)
``started/``      marker directory; ``mkdir`` is atomic, so only one ``start`` wins
``pid``           pid of the detached runner (for debugging)
``output.log``    the script's combined stdout and stderr
``exit_code``     the script's exit status, written (temp file + ``mv``) once it has ended

Errors: :class:`SSHUnavailable` means "try again later", :class:`HostKeyChanged` means "fail
the node and never run anything on it", :class:`AuthRejected` means our key was refused.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import asyncssh

REMOTE_DIR = "$HOME/.hangar"
# AES-GCM first: as strong as ChaCha20-Poly1305 (both AEAD) and, with AES-NI, cheaper per
# packet in asyncssh (about a fifth less CPU per bootstrap connection, measured on both ends).
# Key exchange keeps asyncssh's default order (post-quantum hybrid first).
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)


class SSHError(Exception):
    """Base class of the errors raised by this module."""


class SSHUnavailable(SSHError):
    """The pod's SSH is not reachable or usable right now (refused, reset, timed out, lost,
    incomplete upload). The caller should retry later."""


class HostKeyChanged(SSHError):
    """The server's host key is not the pinned one. Nothing was run on it (the key is checked
    during the key exchange, before authentication). The caller must fail the node."""


class AuthRejected(SSHError):
    """The server refused our key. Right after a pod starts this can mean its sshd has not
    installed the authorized key yet, so a caller may retry for a short grace period."""


def _import_private_key(private_key: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_private_key(private_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"invalid SSH private key: {exc}") from None


def _import_host_key(host_key: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(host_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"invalid pinned host key: {exc}") from None


async def _open(
    host: str,
    port: int,
    private_key: str,
    *,
    username: str,
    connect_timeout: float,
    host_key: str | None,
) -> asyncssh.SSHClientConnection:
    """Connect and authenticate; ``host_key=None`` accepts any host key (trust on first use)."""
    client_key = _import_private_key(private_key)
    known_hosts = None if host_key is None else ([_import_host_key(host_key)], [], [])
    try:
        return await asyncssh.connect(
            host,
            port,
            username=username,
            client_keys=[client_key],
            known_hosts=known_hosts,
            connect_timeout=connect_timeout,
            preferred_auth="publickey",
            encryption_algs=list(ENCRYPTION_ALGS),
            agent_path=None,  # never use the worker's ssh-agent
            config=None,  # nor its ~/.ssh/config
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyChanged(f"{host}:{port}: host key differs from the pinned one") from exc
    except asyncssh.KeyExchangeFailed as exc:
        if host_key is not None:
            # With a pinned key we only accept that key's algorithm: a server that no longer
            # offers it has changed its host key.
            raise HostKeyChanged(f"{host}:{port}: no pinned host key offered ({exc})") from exc
        raise SSHUnavailable(f"{host}:{port}: key exchange failed: {exc}") from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthRejected(f"{host}:{port}: our key was refused") from exc
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise SSHUnavailable(f"{host}:{port}: {type(exc).__name__}: {exc}") from exc


async def _exec(
    conn: asyncssh.SSHClientConnection,
    command: str,
    *,
    input: bytes | None = None,
    merge_stderr: bool = False,
    command_timeout: float | None = None,
) -> tuple[int, bytes, bytes]:
    """Run one remote command; returns (exit status or -signal, stdout, stderr) as bytes."""
    try:
        result = await conn.run(
            command,
            input=input,
            stderr=asyncssh.STDOUT if merge_stderr else asyncssh.PIPE,
            encoding=None,
            check=False,
            timeout=command_timeout,
        )
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise SSHUnavailable(f"command failed to run: {type(exc).__name__}: {exc}") from exc
    status = result.returncode
    return (
        (-1 if status is None else status),
        bytes(result.stdout or b""),
        bytes(result.stderr or b""),
    )


async def pin_host_key(
    host: str,
    port: int,
    private_key: str,
    *,
    username: str = "root",
    timeout: float = 10,  # noqa: ASYNC109 - bounds connect + login, passed to asyncssh
) -> str:
    """Trust on first use, as a probe: connect accepting any host key, run ``true`` (proving
    our key is accepted and the shell works) and return the server's host key as one OpenSSH
    line (``ssh-ed25519 AAAA...``). The worker pins on its bootstrap connection instead
    (``BootstrapSession.connect(host_key=None)`` and :attr:`BootstrapSession.host_key`)."""
    async with BootstrapSession.connect(
        host, port, private_key, host_key=None, username=username, timeout=timeout,
        command_timeout=timeout,
    ) as session:
        status, out = await session.run("true")
        if status != 0:
            raise SSHUnavailable(f"{host}:{port}: `true` exited {status}: {out[-500:]!r}")
        return session.host_key


@dataclass(frozen=True)
class Progress:
    """A slice of the remote output log.

    ``data``: bytes of ``output.log`` from the requested offset (at most ``max_bytes``).
    ``next_offset``: offset + len(data), where the next read continues.
    ``exit_code``: the script's exit status once it has ended, else None.
    ``complete``: exit_code is known and this read reached the end of the log (nothing more
    will be appended, unless the script left background processes writing to its stdout).
    """

    data: bytes
    next_offset: int
    exit_code: int | None
    complete: bool = False


# One round trip: upload to a temp file (checking its size, so a cut connection cannot start a
# truncated script), then take the `started` marker atomically; only the winner moves the
# script in place and launches it detached. `trap '' HUP` keeps a dropped session from killing
# us between taking the marker and launching.
_START_COMMAND = r"""trap '' HUP
d="$HOME/.hangar"
mkdir -p "$d" || exit 90
tmp="$d/script.sh.upload.$$"
cat > "$tmp" || { rm -f "$tmp"; exit 91; }
if [ "$(wc -c < "$tmp")" -ne @SIZE@ ]; then rm -f "$tmp"; echo "incomplete upload" >&2; exit 92; fi
command -v setsid >/dev/null && command -v nohup >/dev/null && command -v bash >/dev/null || {
  rm -f "$tmp"; echo "needs bash, nohup and setsid" >&2; exit 95; }
if ! mkdir "$d/started" 2>/dev/null; then
  rm -f "$tmp"
  if [ -d "$d/started" ]; then echo already; exit 0; fi
  exit 93
fi
mv -f "$tmp" "$d/script.sh" || { rmdir "$d/started"; exit 94; }
nohup setsid bash -c @RUNNER@ hangar-bootstrap "$d" </dev/null >/dev/null 2>&1 &
echo $! > "$d/pid"
echo started
"""

# The detached runner ($1 is the .hangar directory).
_RUNNER = (
    'bash "$1/script.sh" >"$1/output.log" 2>&1 </dev/null; '
    'echo $? >"$1/exit_code.tmp"; mv -f "$1/exit_code.tmp" "$1/exit_code"'
)

# One round trip: the exit code first, a NUL separator, then the log slice. Reading the exit
# code before the log guarantees that when it is present the slice is final.
_READ_COMMAND = r"""d="$HOME/.hangar"
cat "$d/exit_code" 2>/dev/null
printf '\000'
if [ -f "$d/output.log" ]; then tail -c +@START@ "$d/output.log" | head -c @MAX@; fi
"""


class BootstrapSession:
    """An SSH connection to a pod. Create with :meth:`connect`."""

    def __init__(self, conn: asyncssh.SSHClientConnection, *, command_timeout: float) -> None:
        self._conn = conn
        self._command_timeout = command_timeout

    @property
    def host_key(self) -> str:
        """The server's host key as one OpenSSH line (``ssh-ed25519 AAAA...``): what to pin."""
        key = self._conn.get_server_host_key()
        if key is None:  # pragma: no cover - asyncssh always has one after the handshake
            raise SSHUnavailable("no server host key")
        return key.export_public_key("openssh").decode().strip()

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        host: str,
        port: int,
        private_key: str,
        *,
        host_key: str | None,
        username: str = "root",
        timeout: float = 10,  # noqa: ASYNC109 - bounds connect + login, passed to asyncssh
        command_timeout: float = 60,
    ) -> AsyncIterator[BootstrapSession]:
        """``async with BootstrapSession.connect(...) as s:`` connects, accepting only the
        pinned ``host_key`` (raises :class:`HostKeyChanged` otherwise, :class:`AuthRejected` if
        our key is refused, :class:`SSHUnavailable` on network trouble), closes on exit.
        ``host_key=None`` trusts on first use: any host key is accepted; read
        :attr:`host_key` and store it before relying on the connection."""
        conn = await _open(
            host, port, private_key, username=username, connect_timeout=timeout, host_key=host_key
        )
        try:
            yield cls(conn, command_timeout=command_timeout)
        finally:
            conn.close()
            with suppress(Exception):
                await conn.wait_closed()

    async def run(self, command: str) -> tuple[int, str]:
        """Run a shell command; returns (exit status, stdout and stderr combined as text).
        The exit status is negative (-signal) or -1 when the command died without one."""
        status, out, _ = await _exec(
            self._conn, command, merge_stderr=True, command_timeout=self._command_timeout
        )
        return status, out.decode("utf-8", errors="replace")

    async def start(self, script: str) -> bool:
        """Upload ``script`` to ``$HOME/.hangar/script.sh`` and start it detached (it survives
        this session and our restarts). Idempotent: returns True if this call started it, False
        if it had already been started (then nothing is uploaded over the running script and
        nothing is started again). One round trip."""
        body = script.encode()
        command = _START_COMMAND.replace("@SIZE@", str(len(body))).replace(
            "@RUNNER@", shlex.quote(_RUNNER)
        )
        status, out, err = await _exec(
            self._conn, command, input=body, command_timeout=self._command_timeout
        )
        answer = out.decode(errors="replace").strip()
        if status == 0 and answer in ("started", "already"):
            return answer == "started"
        detail = f"start exited {status}: {(out + err)[-500:].decode(errors='replace')!r}"
        if status == 92:  # the upload was cut short: a connection problem, try again
            raise SSHUnavailable(detail)
        raise SSHError(detail)

    async def read(self, offset: int, max_bytes: int = 65536) -> Progress:
        """Read up to ``max_bytes`` of ``output.log`` from byte ``offset`` and the exit code if
        the script has ended. One round trip. See :class:`Progress`."""
        if offset < 0 or max_bytes < 1:
            raise ValueError("offset must be >= 0 and max_bytes >= 1")
        command = _READ_COMMAND.replace("@START@", str(offset + 1)).replace("@MAX@", str(max_bytes))
        status, out, err = await _exec(self._conn, command, command_timeout=self._command_timeout)
        head, sep, data = out.partition(b"\0")
        if status != 0 or not sep:
            raise SSHError(f"read exited {status}: {(out + err)[-500:]!r}")
        try:
            exit_code: int | None = int(head.decode().strip())
        except ValueError:
            exit_code = None  # no exit_code file yet (the script is still running)
        return Progress(
            data=data,
            next_offset=offset + len(data),
            exit_code=exit_code,
            complete=exit_code is not None and len(data) < max_bytes,
        )
