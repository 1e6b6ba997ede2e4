"""The RunPod client's Instant Cluster, global networking and network volume calls against
the simulator over real HTTP, and the members over real SSH."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.providers.base import (
    CapacityError,
    Cluster,
    ClusterSpec,
    InvalidRequest,
    NetworkVolume,
    PodSpec,
    ServerError,
    TransportError,
)
from app.providers.runpod import Conflict, RunPodConfig, RunPodProvider
from app.providers.runpod.mapping import cluster_body, create_body
from app.simulator import Simulator
from app.simulator.spec import validation_errors
from app.ssh.bootstrap import BootstrapSession, pin_host_key
from app.ssh.keys import generate_keypair

GPU = "NVIDIA GeForce RTX 4090"


@pytest.fixture(scope="module")
async def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Simulator]:
    simulator = Simulator(
        api_key="k", provision_delay=0.05, start_delay=0.1,
        work_dir=tmp_path_factory.mktemp("cluster-pods"),
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def sim(shared_sim: Simulator) -> Simulator:
    await shared_sim.reset()
    return shared_sim


@pytest.fixture
async def provider(sim: Simulator) -> AsyncIterator[RunPodProvider]:
    p = RunPodProvider(RunPodConfig(api_key="k", api_url=sim.base_url, backoff_base=0.01))
    yield p
    await p.aclose()


def cluster_spec(name: str = "hangar-c1-a1", nodes: int = 3, **kw) -> ClusterSpec:
    values = {"name": name, "image": "img", "gpu_type_id": GPU, "gpu_count": 1,
              "node_count": nodes, "volume_gb": 0}
    values.update(kw)
    return ClusterSpec(**values)


async def until_ready(provider: RunPodProvider, cluster_id: str) -> Cluster:
    for _ in range(200):
        cluster = await provider.get_cluster(cluster_id)
        assert cluster is not None
        if cluster.all_ready:
            return cluster
        await asyncio.sleep(0.03)
    raise AssertionError(f"cluster {cluster_id} never became ready: {cluster}")


async def test_cluster_lifecycle(sim: Simulator, provider: RunPodProvider) -> None:
    private, public = generate_keypair()
    created = await provider.create_cluster(
        cluster_spec(env={"PUBLIC_KEY": public}, data_center_ids=("US-TX-3",))
    )
    assert created.name == "hangar-c1-a1" and created.node_count == 3 and created.gpu_count == 1
    assert created.data_center_id == "US-TX-3" and created.members == ()
    assert created.members_by_rank() is None and not created.all_ready

    cluster = await until_ready(provider, created.id)
    members = cluster.members_by_rank()
    assert members is not None
    assert [(m.cluster_rank, m.private_ip) for m in members] == [
        (0, "10.65.0.2"), (1, "10.65.0.3"), (2, "10.65.0.4"),
    ]
    assert all(m.cluster_id == created.id and m.data_center_id == "US-TX-3" for m in members)
    assert cluster.cost_per_hour == pytest.approx(3 * 0.44)
    assert cluster.network_cidr == "10.65.0.0/16" and cluster.primary_pod_id == members[0].id
    assert cluster.member_count == 3 and cluster.members_by_status == {"RUNNING": 3}

    # Each member takes the key given at create and knows its place in the cluster.
    second = members[1]
    host_key = await pin_host_key(second.ssh_host, second.ssh_port, private)
    async with BootstrapSession.connect(second.ssh_host, second.ssh_port, private,
                                        host_key=host_key) as session:
        status, out = await session.run('echo "$NODE_RANK $NODE_ADDR $MASTER_ADDR"')
    assert status == 0 and out.strip() == "1 10.65.0.3 10.65.0.2"

    # Members are not pods of their own: hidden from the pod list, not deletable alone.
    assert await provider.list_pods() == []
    assert (await provider.get_pod(second.id)).cluster_rank == 1
    with pytest.raises(Conflict):
        await provider.terminate_pod(second.id)
    assert len(sim.alive_pods()) == 3

    assert [c.id for c in await provider.list_clusters("hangar-c1-")] == [created.id]
    assert await provider.list_clusters("other-") == []
    assert (await provider.find_cluster_by_name("hangar-c1-a1")).id == created.id
    assert await provider.find_cluster_by_name("hangar-c1") is None

    await provider.delete_cluster(created.id)
    assert await provider.get_cluster(created.id) is None
    assert sim.alive_pods() == [] and sim.alive_clusters() == []
    await provider.delete_cluster(created.id)  # already gone is fine


async def test_lost_create_is_found_by_name_not_duplicated(
    sim: Simulator, provider: RunPodProvider
) -> None:
    sim.faults.lost_create(count=1, endpoint="create_cluster")
    with pytest.raises(TransportError):
        await provider.create_cluster(cluster_spec("hangar-lost", nodes=2))
    assert sim.count("create_cluster") == 1  # not retried: it may (and did) happen
    adopted = await provider.find_cluster_by_name("hangar-lost")
    assert adopted is not None and adopted.node_count == 2
    assert [c.id for c in sim.alive_clusters()] == [adopted.id]


async def test_create_retried_on_429_not_on_5xx(sim: Simulator, provider: RunPodProvider) -> None:
    sim.faults.rate_limit(count=1, endpoint="create_cluster", retry_after=0)
    await provider.create_cluster(cluster_spec("after-429", nodes=2))
    assert sim.count("create_cluster") == 2 and len(sim.alive_clusters()) == 1

    sim.faults.server_error(503, count=1, endpoint="create_cluster")
    with pytest.raises(ServerError):
        await provider.create_cluster(cluster_spec("after-503", nodes=2))
    assert sim.count("create_cluster") == 3 and len(sim.alive_clusters()) == 1

    sim.faults.server_error(503, count=2, endpoint="clusters")
    assert len(await provider.list_clusters()) == 1  # reads are retried


async def test_capacity_is_all_or_nothing(sim: Simulator, provider: RunPodProvider) -> None:
    sim.set_stock(2, gpu_id=GPU, data_center="US-KS-2", cloud="SECURE")
    with pytest.raises(CapacityError):
        await provider.create_cluster(cluster_spec(data_center_ids=("US-KS-2",)))
    assert sim.all_pods() == [] and sim.all_clusters() == []
    # The caller tries the next data center it allows.
    cluster = await provider.create_cluster(cluster_spec(data_center_ids=("US-TX-3",)))
    assert cluster.data_center_id == "US-TX-3"


async def test_bad_specs_are_refused_before_sending(
    sim: Simulator, provider: RunPodProvider
) -> None:
    for spec in (
        cluster_spec(nodes=1),
        cluster_spec(nodes=251),
        cluster_spec(cloud_type="community"),
        cluster_spec(gpu_count=0),
        cluster_spec(volume_gb=20, network_volume_id="vol"),
        cluster_spec(volume_gb=5),
    ):
        with pytest.raises(InvalidRequest):
            await provider.create_cluster(spec)
    with pytest.raises(InvalidRequest):
        await provider.create_pod(PodSpec(name="p", image="i", gpu_type_id=GPU, gpu_count=1,
                                          network_volume_id="vol"))  # volume_gb defaults to 20
    assert sim.requests == []


async def test_global_networking_pod_gets_a_private_ip(
    sim: Simulator, provider: RunPodProvider
) -> None:
    pod = await provider.create_pod(PodSpec(name="hangar-gn", image="img", gpu_type_id=GPU,
                                            gpu_count=1, global_networking=True))
    assert pod.private_ip is None  # not assigned while provisioning
    for _ in range(200):
        pod = await provider.get_pod(pod.id)
        if pod.ssh_ready:
            break
        await asyncio.sleep(0.03)
    assert pod.private_ip and pod.private_ip.startswith("10.65.")
    assert pod.cluster_id is None and pod.cluster_rank is None
    assert [p.private_ip for p in await provider.list_pods()] == [pod.private_ip]
    assert sim.pod(pod.id).data_center_id != "CA-MTL-1"  # no global networking there
    plain = await provider.create_pod(PodSpec(name="hangar-plain", image="img",
                                              gpu_type_id=GPU, gpu_count=1))
    assert plain.private_ip is None


async def test_network_volumes(sim: Simulator, provider: RunPodProvider) -> None:
    assert await provider.list_network_volumes() == []
    volume = sim.add_network_volume("dataset", 100, "EU-RO-1", volume_id="vol-1")
    assert await provider.list_network_volumes() == [
        NetworkVolume(id="vol-1", name="dataset", size_gb=100, data_center_id="EU-RO-1",
                      type="STANDARD")
    ]
    assert (await provider.get_network_volume("vol-1")).data_center_id == "EU-RO-1"
    assert await provider.get_network_volume("nope") is None

    def pod(**kw) -> PodSpec:
        return PodSpec(name="hangar-v", image="img", gpu_type_id=GPU, gpu_count=1,
                       volume_gb=0, **kw)

    with pytest.raises(InvalidRequest) as info:
        await provider.create_pod(pod(network_volume_id="nope"))
    assert info.value.status == 404
    with pytest.raises(InvalidRequest) as info:
        await provider.create_pod(pod(network_volume_id=volume.id, data_center_ids=("US-KS-2",)))
    assert info.value.status == 400 and "EU-RO-1" in info.value.message
    placed = await provider.create_pod(pod(network_volume_id=volume.id))
    assert placed.data_center_id == "EU-RO-1"
    assert sim.pod(placed.id).mounts == {"network": [{"volumeId": "vol-1", "path": "/workspace"}]}

    with pytest.raises(InvalidRequest):
        await provider.create_cluster(cluster_spec(network_volume_id="nope"))
    cluster = await provider.create_cluster(cluster_spec(network_volume_id=volume.id))
    assert cluster.data_center_id == "EU-RO-1"


@pytest.mark.parametrize(
    "spec",
    [
        cluster_spec(),
        cluster_spec(volume_gb=20, ports=("8888/http",), data_center_ids=("US-KS-2", "EU-RO-1")),
        cluster_spec(network_volume_id="vol-1", env={"A": "b"}),
        cluster_spec(nodes=250, gpu_count=8),
    ],
)
def test_cluster_bodies_match_the_spec(spec: ClusterSpec) -> None:
    assert validation_errors("CreateClusterRequest", cluster_body(spec)) == []


@pytest.mark.parametrize(
    "spec",
    [
        PodSpec(name="p", image="i", gpu_type_id=GPU, gpu_count=1, volume_gb=0,
                global_networking=True),
        PodSpec(name="p", image="i", gpu_type_id=GPU, gpu_count=1, volume_gb=0,
                network_volume_id="vol-1", volume_mount_path="/data"),
    ],
)
def test_pod_bodies_with_networking_match_the_spec(spec: PodSpec) -> None:
    body = create_body(spec)
    assert validation_errors("CreatePodRequest", body) == []
    assert body.get("globalNetworking", False) is spec.global_networking
    assert "persistent" not in body.get("mounts", {})
