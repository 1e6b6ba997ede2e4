"""A faithful RunPod REST v2 simulator: real HTTP, real SSH pods, Instant Clusters, network
volumes, and fault injection.

    sim = Simulator(api_key="sim-key", provision_delay=0.1, start_delay=0.1)
    base_url = await sim.start()          # http://127.0.0.1:<port>/v2
    sim.faults.capacity(gpu_ids=["NVIDIA GeForce RTX 4090"], data_centers=["US-KS-2"])
    ...
    await sim.stop()

`serve()` runs one until interrupted (the `hangar simulator` command).
"""

from app.simulator.catalog import Catalog
from app.simulator.clusters import SimCluster
from app.simulator.faults import Faults, Rule
from app.simulator.pods import PodStatus, SimPod
from app.simulator.problems import CAPACITY_DETAIL
from app.simulator.records import RequestRecord
from app.simulator.server import Simulator, serve
from app.simulator.volumes import SimVolume

__all__ = [
    "CAPACITY_DETAIL",
    "Catalog",
    "Faults",
    "PodStatus",
    "RequestRecord",
    "Rule",
    "SimCluster",
    "SimPod",
    "SimVolume",
    "Simulator",
    "serve",
]
