"""Fixtures for the simulator tests.

One simulator serves the whole session (starting and stopping uvicorn costs ~0.2 s);
the `sim` fixture resets it before each test, so every test starts with no pods, faults
or requests, default stock and 0.05 s lifecycle delays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncssh
import httpx
import pytest

from app.simulator import Simulator

from .helpers import API_KEY


@pytest.fixture(scope="session")
async def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Simulator]:
    simulator = Simulator(
        api_key=API_KEY,
        forbidden_keys=["no-access-key"],
        provision_delay=0.05,
        start_delay=0.05,
        work_dir=tmp_path_factory.mktemp("sim"),
        seed=1,
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def sim(shared_sim: Simulator) -> Simulator:
    await shared_sim.reset()
    return shared_sim


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.base_url
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ) as c:
        yield c


@pytest.fixture
async def admin(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.admin_url
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def ssh_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="session")
def public_key(ssh_key: asyncssh.SSHKey) -> str:
    return ssh_key.export_public_key().decode().strip()
