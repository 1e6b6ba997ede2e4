"""RunPod provider settings: one frozen object, key hidden from repr/str/logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from app.providers.base import CloudType

DEFAULT_API_URL = "https://api.runpod.io/v2"
SSH_PORT = "22/tcp"


@dataclass(frozen=True)
class RunPodConfig:
    """Everything the RunPod client needs.

    `api_url` is the v2 root; the client appends `/pods`, `/catalog/gpus`, ...
    The pod defaults (cloud, disks, ports, data centers) are the ones the v1 plan
    had; `RunPodProvider.pod_spec()` applies them to a `PodSpec`.
    """

    api_key: SecretStr = field(repr=False)
    api_url: str = DEFAULT_API_URL

    # Pod defaults (v1 plan: secure cloud, 50 GB disk, 20 GB volume at /workspace, 22/tcp)
    cloud_type: CloudType = "secure"
    container_disk_gb: int = 50
    volume_gb: int = 20
    volume_mount_path: str = "/workspace"
    data_center_ids: tuple[str, ...] = ()
    ports: tuple[str, ...] = (SSH_PORT,)
    provision_timeout: float = 300.0
    bootstrap_timeout: float = 600.0

    # HTTP
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    # Retries (reads, deletes, and the create cases that cannot duplicate a pod)
    retry_attempts: int = 5  # total attempts, the first one included
    backoff_base: float = 0.5  # seconds; attempt n waits uniform(0, min(max, base * 2**n))
    backoff_max: float = 20.0
    retry_after_max: float = 60.0  # a Retry-After above this is capped
    retry_budget: float = 90.0  # at most this many seconds of waiting per call, then raise

    # Catalog cache and pod listing
    catalog_ttl: float = 60.0
    list_page_limit: int = 1000  # v2 accepts 1..1000
    list_max_pages: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, SecretStr):
            object.__setattr__(self, "api_key", SecretStr(str(self.api_key)))
        if isinstance(self.data_center_ids, str | list):
            ids = (
                (self.data_center_ids,)
                if isinstance(self.data_center_ids, str)
                else self.data_center_ids
            )
            object.__setattr__(self, "data_center_ids", tuple(ids))
        if isinstance(self.ports, str | list):
            ports = (self.ports,) if isinstance(self.ports, str) else self.ports
            object.__setattr__(self, "ports", tuple(ports))
        if self.cloud_type not in ("secure", "community"):
            raise ValueError(f"cloud_type must be 'secure' or 'community', not {self.cloud_type!r}")
        if not self.api_key.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        if self.retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        if not 1 <= self.list_page_limit <= 1000:
            raise ValueError("list_page_limit must be between 1 and 1000")

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/")

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.read_timeout,
            pool=self.read_timeout,
        )

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> RunPodConfig:
        """Build from `app.settings.Settings` (duck-typed: any object with those attributes)."""
        key = getattr(settings, "runpod_api_key", None)
        if key is None and "api_key" not in overrides:
            raise ValueError("RUNPOD_API_KEY is not set")
        values: dict[str, Any] = {
            "api_key": key,
            "api_url": getattr(settings, "runpod_api_url", DEFAULT_API_URL),
        }
        for ours, theirs in (
            ("provision_timeout", "provision_timeout_s"),
            ("bootstrap_timeout", "bootstrap_timeout_s"),
        ):
            if hasattr(settings, theirs):
                values[ours] = getattr(settings, theirs)
        values.update(overrides)
        return cls(**values)
