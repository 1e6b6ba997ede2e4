"""Network volumes as `GET /network-volumes` returns them (read only: Hangar mounts existing
volumes, it neither creates nor deletes them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NetworkVolumeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "agv6w2qcg7", "name": "datasets", "size_gb": 500,
        "data_center_id": "EU-RO-1", "type": "STANDARD",
    }]})

    id: str = Field(description="What `network_volume_id` takes")
    name: str
    size_gb: int | None = Field(description="Size in GB")
    data_center_id: str | None = Field(
        description="Where it lives: a cluster that mounts it runs there")
    type: str | None = Field(description="STANDARD or HIGH_PERFORMANCE")
