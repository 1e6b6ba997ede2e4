"""The simulated GPU catalog: GPU types, data centers, and free stock per data center.

Stock is counted in GPUs per (GPU type, data center, cloud). Creating a pod takes
`gpu.count` GPUs from one data center and terminating it gives them back. Defaults are
generous (10,000 GPUs per offering) so a benchmark can create 1,000 pods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

CLOUDS = ("SECURE", "COMMUNITY")

# (gpu_id, data_center_id, cloud) -> True when a capacity fault hides that offering.
BlockedFn = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class GpuModel:
    """One GPU type as the catalog describes it. Prices are USD/hour for ONE GPU."""

    id: str
    name: str
    pool: str | None
    memory: int
    price_secure: float
    price_community: float
    price_serverless: float | None
    max_secure: int
    max_community: int
    cuda_versions: tuple[str, ...] = ("12.4", "12.6", "12.8")
    manufacturer: str = "NVIDIA"

    def price(self, cloud: str) -> float:
        return self.price_secure if cloud == "SECURE" else self.price_community

    def max_count(self, cloud: str) -> int:
        return self.max_secure if cloud == "SECURE" else self.max_community


@dataclass(frozen=True)
class DataCenterModel:
    """One data center (`DataCenter` in the spec) plus its country for `countryCodes`."""

    id: str
    name: str
    region: str
    country: str
    global_network: bool
    volume_types: tuple[str, ...]
    compliance: tuple[str, ...]


DEFAULT_GPUS: tuple[GpuModel, ...] = (
    GpuModel("NVIDIA GeForce RTX 4090", "RTX 4090", "ADA_24", 24, 0.44, 0.31, 1.1, 8, 4),
    GpuModel("NVIDIA RTX A6000", "RTX A6000", "AMPERE_48", 48, 0.49, 0.33, 0.85, 8, 8),
    GpuModel("NVIDIA A100 80GB PCIe", "A100 PCIe", "AMPERE_80", 80, 1.64, 1.19, 2.72, 8, 8),
    GpuModel("NVIDIA A100-SXM4-80GB", "A100 SXM", "AMPERE_80", 80, 1.74, 1.39, 2.72, 8, 8),
    GpuModel(
        "NVIDIA H100 80GB HBM3",
        "H100 SXM",
        "ADA_80_PRO",
        80,
        2.69,
        2.39,
        4.18,
        8,
        8,
        ("12.4", "12.6", "12.8", "12.9"),
    ),
    GpuModel(
        "NVIDIA H100 PCIe",
        "H100 PCIe",
        "ADA_80_PRO",
        80,
        2.39,
        1.99,
        4.18,
        8,
        4,
        ("12.4", "12.6", "12.8", "12.9"),
    ),
    # Secure only: community price is quoted but maxCount.community is 0 and no stock.
    GpuModel(
        "NVIDIA H100 NVL",
        "H100 NVL",
        None,
        94,
        2.79,
        2.59,
        None,
        8,
        0,
        ("12.6", "12.8", "12.9"),
    ),
    GpuModel(
        "NVIDIA L40S",
        "L40S",
        "ADA_48_PRO",
        48,
        0.86,
        0.79,
        1.33,
        8,
        8,
        ("12.4", "12.6", "12.8", "12.9"),
    ),
)

DEFAULT_DATA_CENTERS: tuple[DataCenterModel, ...] = (
    DataCenterModel(
        "US-KS-2",
        "US Kansas 2",
        "NORTH_AMERICA",
        "US",
        True,
        ("STANDARD", "HIGH_PERFORMANCE"),
        ("SOC_2_TYPE_2", "ISO_IEC_27001"),
    ),
    DataCenterModel(
        "US-TX-3", "US Texas 3", "NORTH_AMERICA", "US", True, ("STANDARD",), ("SOC_2_TYPE_2",)
    ),
    DataCenterModel(
        "EU-RO-1",
        "EU Romania 1",
        "EUROPE",
        "RO",
        True,
        ("STANDARD",),
        ("GDPR", "ISO_IEC_27001"),
    ),
    DataCenterModel(
        "CA-MTL-1",
        "CA Montreal 1",
        "NORTH_AMERICA",
        "CA",
        False,
        ("STANDARD",),
        ("SOC_2_TYPE_2", "RENEWABLE"),
    ),
    DataCenterModel("EU-SE-1", "EU Sweden 1", "EUROPE", "SE", False, (), ("GDPR", "RENEWABLE")),
)

# gpu id -> cloud -> data centers offering it.
DEFAULT_OFFERINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "NVIDIA GeForce RTX 4090": {
        "SECURE": ("US-KS-2", "EU-RO-1", "US-TX-3", "CA-MTL-1"),
        "COMMUNITY": ("EU-RO-1", "CA-MTL-1", "EU-SE-1"),
    },
    "NVIDIA RTX A6000": {
        "SECURE": ("US-KS-2", "CA-MTL-1", "EU-SE-1"),
        "COMMUNITY": ("EU-RO-1", "US-TX-3"),
    },
    "NVIDIA A100 80GB PCIe": {
        "SECURE": ("US-KS-2", "EU-RO-1", "US-TX-3"),
        "COMMUNITY": ("CA-MTL-1",),
    },
    "NVIDIA A100-SXM4-80GB": {
        "SECURE": ("US-KS-2", "US-TX-3", "EU-RO-1"),
        "COMMUNITY": ("EU-SE-1",),
    },
    "NVIDIA H100 80GB HBM3": {
        "SECURE": ("US-KS-2", "US-TX-3", "EU-RO-1", "CA-MTL-1"),
        "COMMUNITY": ("US-TX-3",),
    },
    "NVIDIA H100 PCIe": {
        "SECURE": ("US-TX-3", "EU-RO-1", "CA-MTL-1"),
        "COMMUNITY": ("CA-MTL-1",),
    },
    "NVIDIA H100 NVL": {"SECURE": ("US-KS-2", "EU-RO-1"), "COMMUNITY": ()},
    "NVIDIA L40S": {
        "SECURE": ("US-KS-2", "EU-RO-1", "CA-MTL-1", "US-TX-3"),
        "COMMUNITY": ("EU-SE-1", "US-KS-2"),
    },
}

DEFAULT_STOCK = 10_000


def cuda_key(version: str) -> tuple[int, ...]:
    """`"12.11"` -> (12, 11): CUDA versions compare numerically, not as decimals."""
    return tuple(int(part) for part in version.split("."))


def availability_level(free_gpus: int, count: int) -> str:
    """NONE/LOW/MEDIUM/HIGH from how many pods of `count` GPUs still fit."""
    units = free_gpus // max(count, 1)
    if units <= 0:
        return "NONE"
    if units < 4:
        return "LOW"
    if units < 16:
        return "MEDIUM"
    return "HIGH"


_LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")


def matching_cuda(
    versions: Iterable[str], allowed: Iterable[str] | None, minimum: str | None
) -> list[str]:
    """The versions that satisfy an exact allow-list and/or a numeric floor."""
    allowed_set = set(allowed or ())
    out = []
    for version in versions:
        if allowed_set and version not in allowed_set:
            continue
        if minimum and cuda_key(version) < cuda_key(minimum):
            continue
        out.append(version)
    return out


class Catalog:
    """GPU types, data centers and mutable per-offering stock."""

    def __init__(
        self,
        *,
        default_stock: int = DEFAULT_STOCK,
        gpus: Iterable[GpuModel] = DEFAULT_GPUS,
        data_centers: Iterable[DataCenterModel] = DEFAULT_DATA_CENTERS,
        offerings: dict[str, dict[str, tuple[str, ...]]] | None = None,
    ) -> None:
        self._gpus = {g.id: g for g in gpus}
        self._dcs = {d.id: d for d in data_centers}
        self._offerings = offerings if offerings is not None else DEFAULT_OFFERINGS
        self.default_stock = default_stock
        self._stock: dict[tuple[str, str, str], int] = {}
        self.reset_stock()

    # --- lookups -------------------------------------------------------------------

    def gpu(self, gpu_id: str) -> GpuModel | None:
        return self._gpus.get(gpu_id)

    def gpus(self) -> list[GpuModel]:
        return list(self._gpus.values())

    def data_center(self, dc_id: str) -> DataCenterModel | None:
        return self._dcs.get(dc_id)

    def data_centers(self) -> list[DataCenterModel]:
        return list(self._dcs.values())

    def offered(self, gpu_id: str, dc_id: str, cloud: str) -> bool:
        """Whether the data center has this GPU in this cloud at all (stock may be 0)."""
        return (gpu_id, dc_id, cloud) in self._stock

    def offerings(self, gpu_id: str, cloud: str) -> list[str]:
        """Data centers offering a GPU type in a cloud, in catalog order."""
        return [dc for dc in self._dcs if (gpu_id, dc, cloud) in self._stock]

    # --- stock ---------------------------------------------------------------------

    def reset_stock(self) -> None:
        """Back to `default_stock` GPUs for every default offering."""
        self._stock.clear()
        for gpu_id, by_cloud in self._offerings.items():
            if gpu_id not in self._gpus:
                continue
            for cloud, dcs in by_cloud.items():
                for dc in dcs:
                    if dc in self._dcs:
                        self._stock[(gpu_id, dc, cloud)] = self.default_stock

    def free(self, gpu_id: str, dc_id: str, cloud: str) -> int:
        return self._stock.get((gpu_id, dc_id, cloud), 0)

    def set_stock(
        self,
        count: int,
        *,
        gpu_id: str | None = None,
        data_center: str | None = None,
        cloud: str | None = None,
    ) -> int:
        """Set free GPUs for every offering matching the filters; returns how many matched.

        Naming a GPU, data center AND cloud that is not offered yet adds that offering.
        """
        if gpu_id and data_center and cloud:
            if gpu_id not in self._gpus or data_center not in self._dcs or cloud not in CLOUDS:
                raise KeyError(f"unknown offering {gpu_id!r} / {data_center!r} / {cloud!r}")
            self._stock[(gpu_id, data_center, cloud)] = max(0, count)
            return 1
        matched = 0
        for key in self._stock:
            g, d, c = key
            if (gpu_id in (None, g)) and (data_center in (None, d)) and (cloud in (None, c)):
                self._stock[key] = max(0, count)
                matched += 1
        return matched

    def allocate(self, gpu_id: str, dc_id: str, cloud: str, count: int) -> None:
        self._stock[(gpu_id, dc_id, cloud)] = self.free(gpu_id, dc_id, cloud) - count

    def release(self, gpu_id: str, dc_id: str, cloud: str, count: int) -> None:
        if (gpu_id, dc_id, cloud) in self._stock:
            self._stock[(gpu_id, dc_id, cloud)] += count

    def stock_json(self) -> list[dict[str, Any]]:
        """Every offering and its free GPUs (admin view)."""
        return [
            {"gpuId": g, "dataCenterId": d, "cloud": c, "free": n}
            for (g, d, c), n in sorted(self._stock.items())
        ]

    # --- JSON in the spec's shapes ----------------------------------------------------

    def gpu_json(
        self,
        gpu: GpuModel,
        *,
        include_availability: bool = False,
        count: int = 1,
        cloud: str = "SECURE",
        countries: set[str] | None = None,
        cuda_versions: list[str] | None = None,
        min_cuda: str | None = None,
        blocked: BlockedFn | None = None,
    ) -> dict[str, Any]:
        """A `GpuType`; with `include_availability`, plus availability/dataCenters/cudaVersions."""
        price: dict[str, Any] = {"secure": gpu.price_secure, "community": gpu.price_community}
        if gpu.price_serverless is not None:
            price["serverless"] = gpu.price_serverless
        body: dict[str, Any] = {
            "id": gpu.id,
            "name": gpu.name,
            "pool": gpu.pool,
            "manufacturer": gpu.manufacturer,
            "memory": gpu.memory,
            "secure": bool(self.offerings(gpu.id, "SECURE")),
            "community": bool(self.offerings(gpu.id, "COMMUNITY")),
            "price": price,
            "maxCount": {"secure": gpu.max_secure, "community": gpu.max_community},
        }
        if not include_availability:
            return body
        versions = matching_cuda(gpu.cuda_versions, cuda_versions, min_cuda)
        fits = bool(versions) and count <= gpu.max_count(cloud)
        dcs = []
        for dc_id in self.offerings(gpu.id, cloud):
            dc = self._dcs[dc_id]
            if countries and dc.country not in countries:
                continue
            free = self.free(gpu.id, dc_id, cloud)
            if blocked is not None and blocked(gpu.id, dc_id, cloud):
                free = 0
            level = availability_level(free, count) if fits else "NONE"
            dcs.append({"id": dc.id, "name": dc.name, "availability": level})
        overall = max((d["availability"] for d in dcs), key=_LEVELS.index, default="NONE")
        body["availability"] = overall
        if overall != "NONE":
            # Omitted entirely when the configuration is unavailable everywhere [S GpuType].
            body["dataCenters"] = dcs
        body["cudaVersions"] = [{"version": v, "available": overall != "NONE"} for v in versions]
        return body

    def data_center_json(
        self, dc: DataCenterModel, *, gpu_availability: bool, blocked: BlockedFn | None = None
    ) -> dict[str, Any]:
        """A `DataCenter`; with `gpu_availability`, plus `gpuAvailability` (best cloud)."""
        body: dict[str, Any] = {
            "id": dc.id,
            "name": dc.name,
            "region": dc.region,
            "globalNetwork": dc.global_network,
            "networkVolumeTypes": list(dc.volume_types),
            "compliance": list(dc.compliance),
        }
        if gpu_availability:
            items = []
            for gpu in self._gpus.values():
                levels = []
                for cloud in CLOUDS:
                    if not self.offered(gpu.id, dc.id, cloud):
                        continue
                    free = self.free(gpu.id, dc.id, cloud)
                    if blocked is not None and blocked(gpu.id, dc.id, cloud):
                        free = 0
                    levels.append(availability_level(free, 1))
                if levels:
                    level = max(levels, key=_LEVELS.index)
                    items.append({"id": gpu.id, "name": gpu.name, "availability": level})
            if items:
                body["gpuAvailability"] = items
        return body
