"""The GPU catalog as `GET /gpu-types` returns it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GpuTypeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "NVIDIA GeForce RTX 4090", "display_name": "RTX 4090", "memory_gb": 24,
        "secure": True, "community": True, "price_secure": 0.69, "price_community": 0.44,
        "availability": "HIGH",
        "data_centers": [{"id": "EU-RO-1", "availability": "HIGH"}],
    }]})

    id: str = Field(description="Catalog id: what `gpu_type` resolves to")
    display_name: str
    memory_gb: int | None = Field(description="GPU memory")
    secure: bool = Field(description="Offered on the secure cloud")
    community: bool = Field(description="Offered on the community cloud")
    price_secure: float | None = Field(description="USD per GPU per hour, on-demand, secure")
    price_community: float | None = Field(description="USD per GPU per hour, on-demand, community")
    availability: str | None = Field(description="Best stock level: HIGH, MEDIUM, LOW or NONE")
    data_centers: list[dict[str, str]] = Field(description="`id` and `availability` of each")
