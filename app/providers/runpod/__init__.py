"""RunPod GPU pods through RunPod's REST v2 API.

provider = RunPodProvider(RunPodConfig(api_key=..., api_url="https://api.runpod.io/v2"))
pod = await provider.create_pod(PodSpec(name=..., image=..., gpu_type_id=..., ...))
"""

from .client import OnRequest, RunPodProvider
from .config import RunPodConfig
from .errors import Conflict, ConnectFailed, UnexpectedResponse

__all__ = [
    "Conflict",
    "ConnectFailed",
    "OnRequest",
    "RunPodConfig",
    "RunPodProvider",
    "UnexpectedResponse",
]
