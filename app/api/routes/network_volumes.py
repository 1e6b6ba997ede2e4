"""The RunPod account's network volumes, for pickers (read only)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.deps import CurrentCaller
from app.api.docs import problems
from app.domain.errors import ProviderUnavailable
from app.providers.base import ProviderError
from app.schemas.network_volumes import NetworkVolumeOut

router = APIRouter(tags=["catalog"])


@router.get(
    "/network-volumes",
    response_model=list[NetworkVolumeOut],
    operation_id="list_network_volumes",
    summary="Network volumes a cluster can mount",
    description="The provider account's network volumes, as it lists them, for "
    "`network_volume_id`. A cluster that mounts one runs in the volume's data center. "
    "Hangar neither creates nor deletes volumes.",
    responses=problems(401, 503, descriptions={503: "The provider could not be read"}),
)
async def list_network_volumes(request: Request, caller: CurrentCaller) -> list[NetworkVolumeOut]:
    provider = request.app.state.provider
    try:
        volumes = await provider.list_network_volumes()
    except ProviderError as exc:
        raise ProviderUnavailable(
            "provider_unavailable",
            f"Could not read the network volumes ({exc.message}); retry shortly.",
            retry_after=5,
        ) from exc
    return [NetworkVolumeOut(id=v.id, name=v.name, size_gb=v.size_gb,
                             data_center_id=v.data_center_id, type=v.type) for v in volumes]
