"""The RunPod client against the simulator over real HTTP, and its pods over real SSH."""

from __future__ import annotations

import asyncio

import pytest

from app.providers.base import CapacityError, InvalidCredentials, PodSpec, PodState
from app.providers.runpod import RunPodConfig, RunPodProvider
from app.simulator import Simulator
from app.ssh.bootstrap import AuthRejected, BootstrapSession, pin_host_key
from app.ssh.keys import generate_keypair


@pytest.fixture
async def sim(tmp_path):
    simulator = Simulator(api_key="k", provision_delay=0.05, start_delay=0.1,
                          work_dir=tmp_path / "pods")
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def provider(sim):
    p = RunPodProvider(RunPodConfig(api_key="k", api_url=sim.base_url, backoff_base=0.01))
    yield p
    await p.aclose()


async def test_pod_lifecycle_over_http_and_ssh(sim, provider) -> None:
    private, public = generate_keypair()
    other_private, _ = generate_keypair()
    gpu = await provider.resolve_gpu_type("4090")
    pod = await provider.create_pod(PodSpec(
        name="hangar-test-n0-a1", image="img", gpu_type_id=gpu.id, gpu_count=1,
        env={"PUBLIC_KEY": public, "GREETING": "hello there"},
    ))
    assert pod.status is PodState.PROVISIONING and not pod.ssh_ready
    for _ in range(100):
        pod = await provider.get_pod(pod.id)
        if pod.ssh_ready:
            break
        await asyncio.sleep(0.05)
    assert pod.ssh_ready and pod.ssh_host == "127.0.0.1" and pod.cost_per_hour > 0
    assert (await provider.find_pod_by_name("hangar-test-n0-a1")).id == pod.id

    host_key = await pin_host_key(pod.ssh_host, pod.ssh_port, private)
    async with BootstrapSession.connect(pod.ssh_host, pod.ssh_port, private,
                                        host_key=host_key) as session:
        status, out = await session.run('echo "$GREETING from $(pwd)"')
    assert status == 0 and out.startswith("hello there from ")
    with pytest.raises(AuthRejected):
        await pin_host_key(pod.ssh_host, pod.ssh_port, other_private)

    await provider.terminate_pod(pod.id)
    assert await provider.get_pod(pod.id) is None
    assert sim.alive_pods() == []
    await provider.terminate_pod(pod.id)  # already gone is fine


async def test_typed_errors_from_the_simulator(sim, provider) -> None:
    sim.faults.capacity(gpu_ids="NVIDIA GeForce RTX 4090")
    with pytest.raises(CapacityError):
        await provider.create_pod(PodSpec(name="x", image="img",
                                          gpu_type_id="NVIDIA GeForce RTX 4090", gpu_count=1))
    bad = RunPodProvider(RunPodConfig(api_key="wrong", api_url=sim.base_url))
    try:
        with pytest.raises(InvalidCredentials):
            await bad.list_pods()
    finally:
        await bad.aclose()
