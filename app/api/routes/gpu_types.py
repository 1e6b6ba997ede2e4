"""The GPU catalog with prices and availability (cached from the provider)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from app.api.deps import CurrentCaller
from app.api.docs import problems
from app.domain.errors import ProviderUnavailable
from app.providers.base import ProviderError
from app.schemas.catalog import GpuTypeOut

router = APIRouter(tags=["catalog"])


@router.get(
    "/gpu-types",
    response_model=list[GpuTypeOut],
    summary="GPU types with per-GPU hourly prices and availability",
    description="The provider's catalog (cached for `HANGAR_CATALOG_TTL` seconds). Prices "
    "are USD per GPU per hour, on-demand; `availability` is the best stock level over data "
    "centers (HIGH, MEDIUM, LOW, NONE).",
    responses=problems(401, 422, 503, descriptions={503: "The catalog could not be read"}),
)
async def gpu_types(
    request: Request,
    caller: CurrentCaller,
    name: Annotated[
        str | None,
        Query(max_length=128, description="Case-insensitive substring of the id or the "
              "display name, e.g. `4090` or `h100`"),
    ] = None,
    cloud_type: Annotated[
        Literal["secure", "community"] | None,
        Query(description="Only GPU types offered on this cloud"),
    ] = None,
) -> list[GpuTypeOut]:
    provider = request.app.state.provider
    try:
        catalog = await provider.gpu_types()
    except ProviderError as exc:
        raise ProviderUnavailable(
            "provider_unavailable",
            f"Could not read the GPU catalog ({exc.message}); retry shortly.", retry_after=5,
        ) from exc
    out = []
    for g in catalog:
        if name and name.lower() not in f"{g.id} {g.display_name}".lower():
            continue
        if cloud_type and not g.offered_on(cloud_type):
            continue
        out.append(GpuTypeOut(
            id=g.id, display_name=g.display_name, memory_gb=g.memory_gb, secure=g.secure,
            community=g.community, price_secure=g.price_secure,
            price_community=g.price_community, availability=g.availability,
            data_centers=[{"id": d.id, "availability": d.availability} for d in g.data_centers],
        ))
    return out
