"""RunPod provider settings: one frozen object, key hidden from repr/str/logs."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr


@dataclass(frozen=True)
class RunPodConfig:
    """Everything the RunPod client needs; `make_provider` builds it from the settings.

    `api_url` is the v2 root (`RUNPOD_API_URL`); the client appends `/pods`,
    `/catalog/gpus`, ... What a pod looks like (cloud, disks, ports) comes with each
    `PodSpec`, from the cluster request and its defaults (app/schemas/clusters.py).
    """

    api_key: SecretStr = field(repr=False)
    api_url: str

    # HTTP: each attempt's timeouts, never past the call's deadline
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    # Retries of reads, deletes, and the creates that cannot duplicate a pod: at most
    # `retry_attempts` attempts, all within `call_deadline` seconds (app/providers/runpod/
    # retry.py). The deadline keeps a call inside the worker job that makes it.
    retry_attempts: int = 5
    backoff_base: float = 0.5  # seconds; attempt n waits uniform(0, min(max, base * 2**n))
    backoff_max: float = 5.0
    call_deadline: float = 20.0

    # Catalog cache and pod listing
    catalog_ttl: float = 60.0
    list_page_limit: int = 1000  # v2 accepts 1..1000
    list_max_pages: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, SecretStr):
            object.__setattr__(self, "api_key", SecretStr(str(self.api_key)))
        if not self.api_key.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        if self.retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        if self.call_deadline <= 0:
            raise ValueError("call_deadline must be positive")
        if not 1 <= self.list_page_limit <= 1000:
            raise ValueError("list_page_limit must be between 1 and 1000")

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/")

    def timeout(self, left: float | None = None) -> httpx.Timeout:
        """An attempt's timeouts; `left`: seconds until the call's deadline."""
        read = self.read_timeout if left is None else min(self.read_timeout, left)
        return httpx.Timeout(connect=min(self.connect_timeout, read), read=read, write=read,
                             pool=read)
