"""Simulated network volumes: seeded through the admin API, read through `/v2/network-volumes`.

Hangar never creates or deletes volumes (it only mounts existing ones), so the simulator
serves the read side of the spec (`listNetworkVolumes`, `getNetworkVolume`) and lets tests
seed volumes with `Simulator.add_network_volume()` or `POST /_sim/network-volumes`.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from app.simulator.catalog import Catalog
from app.simulator.problems import ApiError

_ID_ALPHABET = string.ascii_lowercase + string.digits
VOLUME_TYPES = ("STANDARD", "HIGH_PERFORMANCE")
MIN_SIZE_GB, MAX_SIZE_GB = 10, 4096  # NetworkVolume.size bounds in the spec


@dataclass(frozen=True)
class SimVolume:
    id: str
    name: str
    size: int  # GB
    data_center_id: str
    type: str

    def to_json(self) -> dict[str, Any]:
        """The spec's `NetworkVolume` (note: `dataCenter`, not `dataCenterId`)."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "dataCenter": self.data_center_id,
            "type": self.type,
        }


class NetworkVolumes:
    """The account's network volumes, by id."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._volumes: dict[str, SimVolume] = {}

    def get(self, volume_id: str) -> SimVolume | None:
        return self._volumes.get(volume_id)

    def all(self) -> list[SimVolume]:
        return list(self._volumes.values())

    def add(
        self,
        name: str,
        size: int,
        data_center_id: str,
        *,
        volume_id: str | None = None,
        type: str | None = None,  # noqa: A002 - the spec's field name
    ) -> SimVolume:
        """Seed a volume. Raises ValueError for what `createNetworkVolume` would refuse."""
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError("size must be an integer (GB)")
        if not MIN_SIZE_GB <= size <= MAX_SIZE_GB:
            raise ValueError(f"size must be between {MIN_SIZE_GB} and {MAX_SIZE_GB} GB")
        dc = self.catalog.data_center(str(data_center_id))
        if dc is None:
            raise ValueError(f"unknown data center {data_center_id!r}")
        if not dc.volume_types:
            raise ValueError(f"data center {dc.id} offers no network volumes")
        # Omitted: the data center's default (primary) tier [S CreateNetworkVolumeRequest.type].
        kind = type or dc.volume_types[0]
        if kind not in VOLUME_TYPES:
            raise ValueError(f"type must be one of {list(VOLUME_TYPES)}")
        if kind not in dc.volume_types:
            raise ValueError(f"data center {dc.id} offers no {kind} volumes")
        vid = volume_id or "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
        if not isinstance(vid, str) or not vid or "/" in vid:
            raise ValueError("id must be a non-empty string without '/'")
        if vid in self._volumes:
            raise ValueError(f"network volume {vid!r} already exists")
        volume = SimVolume(vid, name, size, dc.id, kind)
        self._volumes[vid] = volume
        return volume

    def remove(self, volume_id: str) -> bool:
        return self._volumes.pop(volume_id, None) is not None

    def clear(self) -> None:
        self._volumes.clear()

    def restrict_placement(self, mounts: dict[str, Any], dc_ids: list[str]) -> list[str]:
        """The data centers a create with these mounts may use (after the volume checks).

        A network volume pins its pod (or every cluster member) to the volume's data
        center [S NetworkMount.volumeId: "in the same data center as the pod"].

        UNCONFIRMED how RunPod refuses: the simulator answers an unknown `volumeId` with
        404 (createPod documents 404 for unknown referenced resources) and `dataCenterIds`
        that exclude the volume's data center with 400 (a cross-field rule violation,
        like mounting both kinds at once). RunPod might instead relocate, or answer 422.
        """
        network = mounts.get("network") or []
        if not network:
            return dc_ids
        volume_id = network[0].get("volumeId")
        volume = self.get(volume_id) if isinstance(volume_id, str) else None
        if volume is None:
            raise ApiError(404, f"network volume {volume_id!r} not found")
        if dc_ids and volume.data_center_id not in dc_ids:
            raise ApiError(
                400,
                f"network volume {volume.id} is in data center {volume.data_center_id}, "
                f"which is not among dataCenterIds ({', '.join(dc_ids)})",
            )
        return [volume.data_center_id]
