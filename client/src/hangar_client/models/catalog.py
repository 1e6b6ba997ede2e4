"""What a cluster can be made of: the GPU types of the catalog with their prices and stock
per data center, and the account's network volumes."""

from __future__ import annotations

from dataclasses import dataclass, field

from hangar_client.models._json import _enum, _int, _num, _str
from hangar_client.models.enums import Availability


@dataclass(frozen=True, kw_only=True)
class DataCenterStock:
    id: str
    availability: Availability | None = None


@dataclass(frozen=True, kw_only=True)
class GpuType:
    """A catalog entry; prices are USD per GPU per hour, on-demand."""

    id: str
    display_name: str
    memory_gb: int | None = None
    secure: bool = False
    community: bool = False
    price_secure: float | None = None
    price_community: float | None = None
    availability: Availability | None = None
    data_centers: list[DataCenterStock] = field(default_factory=list)
    stale: bool = False  # the server could not read the provider: its last catalog
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> GpuType:
        dcs = d.get("data_centers")
        return cls(
            id=str(d.get("id", "")),
            display_name=str(d.get("display_name") or d.get("id", "")),
            memory_gb=_int(d.get("memory_gb")),
            secure=d.get("secure") is True,
            community=d.get("community") is True,
            price_secure=_num(d.get("price_secure")),
            price_community=_num(d.get("price_community")),
            availability=_enum(Availability, d.get("availability")),
            data_centers=[
                DataCenterStock(id=str(x.get("id", "")),
                                availability=_enum(Availability, x.get("availability")))
                for x in dcs if isinstance(x, dict)
            ] if isinstance(dcs, list) else [],
            stale=d.get("stale") is True,
            raw=d,
        )


@dataclass(frozen=True, kw_only=True)
class NetworkVolume:
    """A RunPod network volume a cluster can mount (`network_volume_id`); a cluster that
    mounts one runs in the volume's data center."""

    id: str
    name: str
    size_gb: int | None = None
    data_center_id: str | None = None
    type: str | None = None  # STANDARD or HIGH_PERFORMANCE
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict) -> NetworkVolume:
        return cls(id=str(d.get("id", "")), name=str(d.get("name") or d.get("id", "")),
                   size_gb=_int(d.get("size_gb")), data_center_id=_str(d.get("data_center_id")),
                   type=_str(d.get("type")), raw=d)
