"""Finding and killing every process a simulated pod started.

Each SSH exec runs in a new session (`start_new_session=True`) so that closing the SSH
channel does not signal it (a `nohup ... &` must survive the session, as on a real pod).
That also means nothing kills those processes automatically when the pod goes away, so
the tracker remembers two things:

- the session ids it created (a session id is the pid of its leader);
- a marker environment variable set on every process it starts, which descendants
  inherit even if they call `setsid` to leave the session.

`kill_all` scans /proc for either and SIGKILLs the matches, repeating a few times to catch
processes forked while the scan ran.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

MARKER_ENV = "HANGAR_SIM_POD"
_PROC = Path("/proc")


def _stat_fields(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, or None if it is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ..." and comm may contain spaces or parens.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return rest[0], int(rest[3])
    except (IndexError, ValueError):
        return None


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return needle in b"\0" + data


def _pids() -> Iterator[int]:
    try:
        names = os.listdir(_PROC)
    except OSError:
        return
    for name in names:
        if name.isdigit():
            yield int(name)


def is_running(pid: int) -> bool:
    """True if `pid` exists and is not a zombie (zombies are dead, just not reaped)."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    return fields[0] not in ("Z", "X")


def find(sessions: set[int], marker: bytes | None) -> list[int]:
    """Live pids in one of `sessions` or whose environment contains `marker`
    (a `b"\\0KEY=value"`-style needle; a prefix of the value also matches)."""
    me = os.getpid()
    found = []
    for pid in _pids():
        if pid == me:
            continue
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if fields[1] in sessions or (marker is not None and _environ_has(pid, marker)):
            found.append(pid)
    return found


def kill(sessions: set[int], marker: bytes | None, *, passes: int = 5) -> list[int]:
    """SIGKILL every process `find` reports; returns the pids signalled."""
    killed: list[int] = []
    if not _PROC.is_dir():
        # No /proc (not Linux): the best we can do is the process groups we know.
        for sid in sessions:
            try:
                os.killpg(sid, signal.SIGKILL)
            except OSError:
                pass
        return killed
    for _ in range(passes):
        pids = find(sessions, marker)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        time.sleep(0.01)
    return killed


class ProcessTracker:
    """The processes of one pod: its session ids and its environment marker."""

    def __init__(self, marker_value: str) -> None:
        self.marker_value = marker_value
        self.sessions: set[int] = set()
        self._ever_spawned = False

    @property
    def env(self) -> dict[str, str]:
        """Environment entries every pod process must carry."""
        return {MARKER_ENV: self.marker_value}

    @property
    def spawned(self) -> bool:
        """Whether this pod ever started a process (no scan needed otherwise)."""
        return self._ever_spawned

    def add(self, session_leader_pid: int) -> None:
        self.sessions.add(session_leader_pid)
        self._ever_spawned = True

    def needle(self) -> bytes:
        return f"\0{MARKER_ENV}={self.marker_value}\0".encode()

    def alive(self) -> list[int]:
        """Pids of this pod's processes that are still running."""
        return find(self.sessions, self.needle()) if self.spawned else []

    def kill_all(self) -> list[int]:
        """SIGKILL everything this pod started (blocking; run it in a thread)."""
        if not self.spawned:
            return []
        killed = kill(self.sessions, self.needle())
        self.sessions.clear()
        return killed


def _marker_value(pid: int, prefix: bytes) -> bytes | None:
    """The value of the marker variable in a process's environment, or None."""
    try:
        data = b"\0" + (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    at = data.find(prefix)
    if at < 0:
        return None
    start = at + len(prefix)
    end = data.find(b"\0", start)
    return data[start:] if end < 0 else data[start:end]


def kill_many(trackers: Iterable[ProcessTracker], *, passes: int = 5) -> list[int]:
    """`kill_all` for several pods with one /proc scan per pass (each scan reads every
    process's stat and environ, so scanning once per pod made mass teardowns slow)."""
    trackers = [t for t in trackers if t.spawned]
    if not trackers:
        return []
    sessions: set[int] = set().union(*(t.sessions for t in trackers))
    markers = {t.marker_value.encode() for t in trackers}
    prefix = f"\0{MARKER_ENV}=".encode()
    killed: list[int] = []
    if not _PROC.is_dir():
        killed = kill(sessions, None)
    else:
        me = os.getpid()
        for _ in range(passes):
            found = []
            for pid in _pids():
                if pid == me:
                    continue
                fields = _stat_fields(pid)
                if fields is None or fields[0] in ("Z", "X"):
                    continue
                if fields[1] in sessions or _marker_value(pid, prefix) in markers:
                    found.append(pid)
            if not found:
                break
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except OSError:
                    pass
            time.sleep(0.01)
    for t in trackers:
        t.sessions.clear()
    return killed


class Reaper:
    """Kills pods' processes in batches: concurrent requests (a mass DELETE) share one scan.

    `await reaper.kill(tracker)` returns once a scan that started after the call has killed
    that pod's processes, exactly as `await asyncio.to_thread(tracker.kill_all)` would."""

    def __init__(self) -> None:
        self._pending: list[tuple[ProcessTracker, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def kill(self, tracker: ProcessTracker) -> None:
        if not tracker.spawned:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((tracker, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sim-reaper")
        await asyncio.shield(future)

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(kill_many, [t for t, _ in batch])
            except BaseException as exc:  # hand the failure to every waiter of this batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception)
                                             else RuntimeError("reaper cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
