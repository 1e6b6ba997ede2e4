"""Which URLs a webhook may have, and which addresses a delivery may connect to (SSRF).

- `https` always; plain `http` only with `HANGAR_WEBHOOK_ALLOW_PRIVATE` (a development
  setting: its receivers are on loopback or a private network).
- Refused always: link-local addresses (169.254.0.0/16, fe80::/10), cloud metadata
  endpoints (by address and by name), unspecified, multicast, broadcast and reserved
  addresses. Loopback, private, unique-local, shared (CGNAT) and other non-global
  addresses are refused unless `HANGAR_WEBHOOK_ALLOW_PRIVATE` is on.
- A name is refused when *any* of its addresses is: an attacker cannot mix a public
  address with a private one and hope for the second.

`check_url` runs at create (with DNS); `transport.GuardedBackend` runs `refusal` again on
the addresses it resolves at each connection and connects to exactly those.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
DNS_TIMEOUT_S = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata and similar instance services: never a webhook receiver.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, ...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS IPv6
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure wire server
    "192.0.0.192",  # Oracle Cloud (legacy)
))
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.com",
    "instance-data", "instance-data.ec2.internal",
})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED = ipaddress.ip_network("100.64.0.0/10")


class RefusedUrl(ValueError):
    """A URL or address the policy refuses; the message says why (safe to show)."""


@dataclass(frozen=True)
class ParsedUrl:
    url: str
    scheme: str
    host: str  # lower case, no brackets
    port: int


def parse(url: str, allow_private: bool) -> ParsedUrl:
    """Check the URL's shape (no DNS): scheme, host, no credentials, no fragment."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in url):
        raise RefusedUrl("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"the URL cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise RefusedUrl("the URL must start with https://")
    if scheme == "http" and not allow_private:
        raise RefusedUrl("plain http is refused: use https:// (http is allowed only when "
                         "HANGAR_WEBHOOK_ALLOW_PRIVATE is on)")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("credentials in the URL are refused: the signature authenticates "
                         "deliveries (webhook-signature)")
    if parts.fragment:
        raise RefusedUrl("the URL must not have a #fragment")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise RefusedUrl("the URL has no host")
    if host in METADATA_NAMES:
        raise RefusedUrl(f"{host} is a cloud metadata service")
    return ParsedUrl(url, scheme, host, port or (443 if scheme == "https" else 80))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return None


def refusal(ip: IPAddress, allow_private: bool) -> str | None:
    """Why a delivery may not connect to `ip`, or None if it may."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        why = refusal(inner, allow_private)
        return None if why is None else f"{ip} embeds {inner}: {why}"
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_unspecified or ip.is_multicast or (
        isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255")
    ):
        return f"{ip} is not a unicast address"
    if ip.is_loopback:  # before `is_reserved`, which ::1 is too
        return None if allow_private else f"{ip} is a loopback address"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if allow_private:
        return None
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED):
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int, timeout: float = DNS_TIMEOUT_S) -> list[IPAddress]:
    """The host's addresses (the literal itself for an IP). Raises RefusedUrl when the name
    does not resolve."""
    ip = literal(host)
    if ip is not None:
        return [ip]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise RefusedUrl(f"{host} does not resolve ({type(exc).__name__})") from None
    out: list[IPAddress] = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise RefusedUrl(f"{host} has no IPv4 or IPv6 address")
    return out


async def allowed_addresses(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """Resolve and check: every address of the host, or RefusedUrl naming the first refused."""
    addresses = await resolve(host, port)
    for ip in addresses:
        why = refusal(ip, allow_private)
        if why is not None:
            raise RefusedUrl(why if literal(host) else f"{host} resolves to {why}")
    return addresses


async def check_url(url: str, allow_private: bool) -> ParsedUrl:
    """The whole check at create: the URL's shape, then its host's addresses."""
    parsed = parse(url, allow_private)
    await allowed_addresses(parsed.host, parsed.port, allow_private)
    return parsed
