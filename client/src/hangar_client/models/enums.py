"""The status and kind enums of the API's answers. Open: a value this client does not know
becomes a member of its own, equal to the string, so a newer server cannot break an older
client."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class _OpenEnum(StrEnum):
    """A string enum that accepts values it does not know: `ClusterStatus("hibernating")` is
    a member named HIBERNATING, equal to the string, so a newer server cannot break an older
    client. Compare with members or plain strings."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper().replace("-", "_").replace(".", "_")
        member._value_ = value
        return member

    @property
    def known(self) -> bool:
        """False for a value this client version has no member for."""
        return self._name_ in type(self).__members__


class ClusterStatus(_OpenEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (ClusterStatus.TERMINATED, ClusterStatus.FAILED)


class NodeStatus(_OpenEnum):
    PENDING = "pending"
    CREATING = "creating"
    STARTING = "starting"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class Network(_OpenEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    CLUSTER = "cluster"


class Availability(_OpenEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    NONE = "NONE"
