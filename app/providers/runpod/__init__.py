"""RunPod GPU pods through RunPod's REST v2 API.

provider = RunPodProvider(RunPodConfig(api_key=...))
pod = await provider.create_pod(provider.pod_spec(name=..., image=..., gpu_type_id=...))
"""

from .allocation import AllocationChoice
from .client import OnRequest, RunPodProvider
from .config import DEFAULT_API_URL, RunPodConfig
from .errors import Conflict, ConnectFailed, UnexpectedResponse

__all__ = [
    "DEFAULT_API_URL",
    "AllocationChoice",
    "Conflict",
    "ConnectFailed",
    "OnRequest",
    "RunPodConfig",
    "RunPodProvider",
    "UnexpectedResponse",
]
