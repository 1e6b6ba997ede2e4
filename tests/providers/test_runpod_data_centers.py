"""The data center catalog (`GET /v2/catalog/datacenters`) through the RunPod client against
the simulator: which data centers offer global networking, cached like the GPU catalog."""

from __future__ import annotations

from app.providers.runpod import RunPodConfig, RunPodProvider
from app.simulator import Simulator


async def test_data_centers_say_which_offer_global_networking(tmp_path) -> None:
    async with Simulator(api_key="k", work_dir=tmp_path) as sim:
        provider = RunPodProvider(RunPodConfig(api_key="k", api_url=sim.base_url,
                                               catalog_ttl=60))
        try:
            dcs = {dc.id: dc for dc in await provider.data_centers()}
            assert dcs["EU-RO-1"].global_network and not dcs["CA-MTL-1"].global_network
            assert dcs["US-KS-2"].network_volume_types == ("STANDARD", "HIGH_PERFORMANCE")
            assert dcs["EU-SE-1"].network_volume_types == ()
            await provider.data_centers()
            assert sim.count("list_datacenters") == 1, "cached"
            await provider.data_centers(refresh=True)
            assert sim.count("list_datacenters") == 2
        finally:
            await provider.aclose()
