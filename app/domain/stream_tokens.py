"""Stream tokens: short-lived, read-only grants to one cluster's event stream, for browsers
(`EventSource` cannot send an Authorization header, and a team token must never be put
in a URL). See docs/browser.md.

A token is stateless: the cluster id, the team id and the expiry, signed with HMAC-SHA256
under a key derived from `HANGAR_SECRET_KEY`. Checking one is a hash, no query and no
shared state, so every API process accepts every token and a reconnect storm costs no
database work; nothing is stored, so there is nothing to clean up. The price: a token
cannot be revoked before it expires (`HANGAR_STREAM_TOKEN_TTL`, 300 s by default), which
is why it is short-lived and grants nothing but reading one cluster's events.

    hgs_<base64url(version | cluster id | team id | expiry | tag)>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from functools import lru_cache

PREFIX = "hgs_"
VERSION = 1
_BODY = struct.Struct(">B16s16sQ")  # version, cluster id, team id, expiry (Unix seconds)
TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits
_LENGTH = _BODY.size + TAG_BYTES
_LABEL = b"hangar stream token v1"


class InvalidStreamToken(Exception):
    """Not a stream token, not signed with this key, or expired; the message says which."""


@dataclass(frozen=True, slots=True)
class StreamGrant:
    cluster_id: uuid.UUID
    team_id: uuid.UUID
    expires: int  # Unix seconds


@lru_cache(maxsize=8)
def derive_key(secret_key: str) -> bytes:
    """The signing key: HMAC of a fixed label under HANGAR_SECRET_KEY, so the stored-secret
    encryption key itself never signs anything that leaves the process."""
    return hmac.new(secret_key.encode(), _LABEL, hashlib.sha256).digest()


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:TAG_BYTES]


def issue(key: bytes, cluster_id: uuid.UUID, team_id: uuid.UUID, expires: int) -> str:
    body = _BODY.pack(VERSION, cluster_id.bytes, team_id.bytes, expires)
    raw = body + _tag(key, body)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def verify(key: bytes, token: str, now: float) -> StreamGrant:
    """The grant a token carries, if it is one of ours and has not expired at `now`."""
    if not token.startswith(PREFIX) or len(token) > 200:
        raise InvalidStreamToken("not a stream token")
    text = token[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidStreamToken("not a stream token") from None
    if len(raw) != _LENGTH:
        raise InvalidStreamToken("not a stream token")
    body, tag = raw[:_BODY.size], raw[_BODY.size:]
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise InvalidStreamToken("not a stream token issued by this Hangar")
    version, cluster, team, expires = _BODY.unpack(body)
    if version != VERSION:
        raise InvalidStreamToken("not a stream token")
    if now >= expires:
        raise InvalidStreamToken("the stream token has expired")
    return StreamGrant(uuid.UUID(bytes=cluster), uuid.UUID(bytes=team), expires)
