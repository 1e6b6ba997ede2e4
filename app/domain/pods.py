"""What a pod gets when a cluster request does not say: the one place for these defaults
(the request model and the provider's `PodSpec` both take them from here; the image's
default is a setting, HANGAR_DEFAULT_IMAGE)."""

from __future__ import annotations

CLOUD_TYPE = "secure"
CONTAINER_DISK_GB = 50
VOLUME_GB = 20  # 0: no volume
VOLUME_MOUNT_PATH = "/workspace"
SSH_PORT = "22/tcp"  # always exposed: Hangar bootstraps nodes over SSH
PORTS = (SSH_PORT,)
