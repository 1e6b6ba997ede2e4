"""Pricing a cluster request against the live catalog, and where to place its pods."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import InvalidRequest, ProviderUnavailable
from app.providers.base import (
    GpuType,
    GpuTypeAmbiguous,
    GpuTypeNotFound,
    Provider,
    ProviderError,
)
from app.schemas.cluster_request import ClusterCreate

AVAILABILITY_RANK = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}


@dataclass(frozen=True)
class Quote:
    gpu: GpuType
    hourly_rate: float  # whole cluster, USD per hour


async def resolve_and_quote(provider: Provider, req: ClusterCreate) -> Quote:
    """Resolve the GPU type and price the cluster; `InvalidRequest` with something to act
    on otherwise, `ProviderUnavailable` when the catalog cannot be read."""
    if req.allocation == "spot" and not provider.supports_spot:
        raise InvalidRequest(
            "spot_unavailable",
            f"{provider.name}'s current API offers no spot (interruptible) pods; "
            "use allocation 'on-demand', or 'spot-if-available' to fall back to on-demand.",
        )
    try:
        gpu = await provider.resolve_gpu_type(req.gpu_type)
    except GpuTypeAmbiguous as exc:
        raise InvalidRequest(
            "ambiguous_gpu_type",
            f"gpu_type {req.gpu_type!r} matches several GPU types; use one of: "
            + "; ".join(exc.candidates),
            candidates=exc.candidates,
        ) from exc
    except GpuTypeNotFound as exc:
        raise InvalidRequest(
            "unknown_gpu_type",
            f"gpu_type {req.gpu_type!r} matches no GPU type; the catalog has: "
            + "; ".join(exc.candidates),
            candidates=exc.candidates,
        ) from exc
    except ProviderError as exc:
        raise ProviderUnavailable(
            "provider_unavailable",
            f"Could not read {provider.name}'s GPU catalog ({exc.message}); retry shortly.",
            retry_after=5,
        ) from exc
    if req.data_center_ids:
        await _check_data_centers(provider, req.data_center_ids)
    if not gpu.offered_on(req.cloud_type):
        raise InvalidRequest(
            "cloud_type_unavailable",
            f"{gpu.id} is not offered on the {req.cloud_type} cloud; try the other cloud_type.",
        )
    max_count = gpu.max_count_secure if req.cloud_type == "secure" else gpu.max_count_community
    if max_count and req.gpu_count > max_count:
        raise InvalidRequest(
            "gpu_count_too_high",
            f"{gpu.id} allows at most {max_count} GPUs per pod on the {req.cloud_type} cloud.",
        )
    price = gpu.price(req.cloud_type)
    if price is None:
        raise InvalidRequest("no_price", f"{gpu.id} has no {req.cloud_type} price in the catalog.")
    rate = round(price * req.gpu_count * req.nodes, 6)
    if req.max_hourly_cost is not None and rate > req.max_hourly_cost:
        raise InvalidRequest(
            "max_hourly_cost_exceeded",
            f"{req.nodes} node(s) × {req.gpu_count} × {gpu.id} costs ${rate:.4f}/h on the "
            f"{req.cloud_type} cloud, above max_hourly_cost ${req.max_hourly_cost:.4f}/h.",
            hourly_rate=rate,
        )
    return Quote(gpu=gpu, hourly_rate=rate)


async def _check_data_centers(provider: Provider, pinned: list[str]) -> None:
    """Pinned data centers must be ones the provider lists: an unknown one (a typo) is the
    caller's 422 now, not a cluster that fails `no_capacity` later."""
    try:
        known = {dc.id for dc in await provider.data_centers()}
    except ProviderError as exc:
        raise ProviderUnavailable(
            "provider_unavailable",
            f"Could not read {provider.name}'s data centers ({exc.message}); retry shortly.",
            retry_after=5,
        ) from exc
    unknown = [dc for dc in pinned if dc not in known]
    if unknown:
        raise InvalidRequest(
            "unknown_data_center",
            f"data_center_ids {', '.join(unknown)}: not {provider.name} data centers; "
            f"known: {', '.join(sorted(known))}",
            candidates=sorted(known),
        )


def placements_for(gpu: GpuType, pinned: list[str]) -> list[list[str]]:
    """Data centers to try in order. Pinned: exactly those, as one create.
    Otherwise each data center with stock, best stocked first, then anywhere."""
    if pinned:
        return [list(pinned)]
    ranked = sorted(
        (dc for dc in gpu.data_centers if dc.availability in AVAILABILITY_RANK),
        key=lambda dc: AVAILABILITY_RANK[dc.availability],
    )
    return [[dc.id] for dc in ranked] or [[]]
