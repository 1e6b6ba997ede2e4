"""GPU cloud providers. The workers and the API only see `base.Provider`."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.providers.base import Provider
from app.settings import Settings


def make_provider(
    settings: Settings,
    http_client: httpx.AsyncClient | None = None,
    *,
    on_request: Callable[[str, str, float], None] | None = None,
) -> Provider:
    """The provider the settings describe (RunPod v2; the simulator is RunPod at another URL).

    `on_request(endpoint, outcome, seconds)` is called once per HTTP attempt (metrics)."""
    from app.providers.runpod import RunPodConfig, RunPodProvider

    if settings.runpod_api_key is None:
        raise RuntimeError(
            "RUNPOD_API_KEY is not set (`hangar dev` starts the simulator and sets it for you)"
        )
    config = RunPodConfig(
        api_key=settings.runpod_api_key,
        api_url=settings.runpod_api_url,
        read_timeout=settings.runpod_read_timeout_s,
        backoff_base=settings.runpod_backoff_base_s,
        call_deadline=settings.runpod_call_deadline_s,
        catalog_ttl=settings.catalog_ttl_s,
    )
    return RunPodProvider(config, http_client, on_request=on_request)
