"""Where a cluster's nodes may go, given how they reach each other (`network`) and the
network volume they share (`network_volume_id`): checked against the provider at POST,
before anything is created, and turned into the ordered placements the workers try.

- `public`: independent pods, placed as before (pinned data centers as one create, else
  each data center that stocks the GPU, best stocked first).
- `private`: the same, restricted to data centers that offer global networking.
- `cluster`: one Instant Cluster, placed whole in one data center: every placement is a
  single data center (the caller's, in order, else the catalog's best stocked first).
- a network volume pins every node to the volume's data center.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import InvalidRequest, ProviderUnavailable
from app.providers.base import GpuType, NetworkVolume, Provider, ProviderError
from app.schemas.cluster_request import ClusterCreate
from app.services.quotes import placements_for


@dataclass(frozen=True)
class NetworkPlan:
    """What `network` and `network_volume_id` decide at POST."""

    placements: list[list[str]]  # data center ids per create attempt; [] = provider's choice
    volume: NetworkVolume | None


def _unavailable(provider: Provider, what: str, exc: ProviderError) -> ProviderUnavailable:
    return ProviderUnavailable(
        "provider_unavailable",
        f"Could not read {provider.name}'s {what} ({exc.message}); retry shortly.",
        retry_after=5,
    )


async def plan_network(provider: Provider, req: ClusterCreate, gpu: GpuType) -> NetworkPlan:
    """The placements for this request; `InvalidRequest` when the network, the volume and
    `data_center_ids` cannot all be satisfied (unknown volume, a volume outside the data
    centers asked for, no global networking where the nodes must go)."""
    volume = await _volume(provider, req)
    pinned = list(req.data_center_ids)
    if volume is not None and volume.data_center_id:
        candidates = [[volume.data_center_id]]
        where = f"network volume {volume.id}'s data center {volume.data_center_id}"
    elif pinned:
        # An Instant Cluster is placed in one data center per create: the caller's order.
        candidates = [[dc] for dc in pinned] if req.network == "cluster" else [pinned]
        where = "data_center_ids " + ", ".join(pinned)
    else:
        candidates = placements_for(gpu, [])
        where = ""
    if req.network == "private":
        candidates = await _with_global_networking(provider, candidates, where)
    return NetworkPlan(placements=candidates, volume=volume)


async def _volume(provider: Provider, req: ClusterCreate) -> NetworkVolume | None:
    if req.network_volume_id is None:
        return None
    try:
        volume = await provider.get_network_volume(req.network_volume_id)
    except ProviderError as exc:
        raise _unavailable(provider, "network volumes", exc) from exc
    if volume is None:
        raise InvalidRequest(
            "unknown_network_volume",
            f"Your {provider.name} account has no network volume {req.network_volume_id!r}; "
            "GET /network-volumes lists the ones it has (Hangar does not create volumes).",
        )
    if req.data_center_ids and volume.data_center_id not in req.data_center_ids:
        raise InvalidRequest(
            "network_volume_data_center",
            f"Network volume {volume.id} is in data center {volume.data_center_id}, which "
            f"data_center_ids ({', '.join(req.data_center_ids)}) leaves out; nodes must run "
            "in the volume's data center. Add it to data_center_ids or leave them out.",
            data_center_id=volume.data_center_id,
        )
    return volume


async def _with_global_networking(
    provider: Provider, candidates: list[list[str]], where: str
) -> list[list[str]]:
    """Only data centers that offer global networking (RunPod refuses the others)."""
    try:
        eligible = [dc.id for dc in await provider.data_centers() if dc.global_network]
    except ProviderError as exc:
        raise _unavailable(provider, "data center catalog", exc) from exc
    kept = [[dc for dc in placement if dc in eligible] for placement in candidates]
    kept = [placement for placement in kept if placement]
    if kept:
        return kept
    if where:  # the caller (or the volume) chose the data centers: none will do
        raise InvalidRequest(
            "global_networking_unavailable",
            f"network 'private' needs a data center with RunPod global networking, and "
            f"{where} offers none. Data centers that do: {', '.join(eligible) or 'none'}; "
            "or use network 'public' or 'cluster'.",
            data_center_ids=eligible,
        )
    return [[]]  # no stocked data center offers it: let the provider choose among those that do
