"""`hangar clusters ssh`: OpenSSH to a node, trusting only the host key Hangar pinned.

What comes from the API is checked before it reaches ssh's command line or a known_hosts
file: an address, a port, one public-key line (a newline in it would add a host entry).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

KEY_TYPE = re.compile(r"^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)$")
KEY_BLOB = re.compile(r"^[A-Za-z0-9+/]+={0,3}$")


class NotReachable(ValueError):
    """The node cannot be logged into (yet): the message says why."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    key_type: str
    key: str

    @property
    def known_hosts_line(self) -> str:
        """The known_hosts entry: `[host]:port` unless the port is 22."""
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{name} {self.key_type} {self.key}\n"


def target(public_ip: str | None, ssh_port: int | None, host_key: str | None) -> Target:
    """Where to connect and the key to expect, from a node of the API's answer."""
    if not public_ip or not ssh_port:
        raise NotReachable("it has no public address yet")
    if not host_key:
        raise NotReachable("Hangar has not pinned its host key yet (it does so when it first "
                           "connects, at bootstrap)")
    try:
        host = str(ipaddress.ip_address(public_ip))
    except ValueError:
        raise NotReachable(f"its address {public_ip!r} is not an IP address") from None
    if not isinstance(ssh_port, int) or not 1 <= ssh_port <= 65535:
        raise NotReachable(f"its SSH port {ssh_port!r} is not a port")
    fields = host_key.strip().split()
    if len(host_key.strip().splitlines()) != 1 or len(fields) < 2 or not KEY_TYPE.match(fields[0]) or not KEY_BLOB.match(fields[1]):
        raise NotReachable("its pinned host key is not an OpenSSH public key line")
    return Target(host, ssh_port, fields[0], fields[1])


def ssh_argv(
    t: Target,
    known_hosts: Path,
    command: Sequence[str] = (),
    *,
    identity: str | None = None,
    ssh: str = "ssh",
) -> list[str]:
    """The ssh command line: root at the node, its pinned key the only one accepted (strict
    checking, no global or personal known_hosts consulted, nothing written back)."""
    argv = [
        ssh,
        "-o", f'UserKnownHostsFile="{known_hosts}"',
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UpdateHostKeys=no",
        "-p", str(t.port),
    ]
    if identity:
        argv += ["-i", identity, "-o", "IdentitiesOnly=yes"]
    # `--` before the destination: nothing after it is read as an ssh option.
    return [*argv, "--", f"root@{t.host}", *command]
