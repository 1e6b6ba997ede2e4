"""Secrets, payloads and signatures the Standard Webhooks way (standardwebhooks.com).

A secret is `whsec_` + base64 of random bytes; the HMAC key is those bytes. A delivery
carries `webhook-id`, `webhook-timestamp` (Unix seconds of the attempt) and
`webhook-signature: v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>">`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A new endpoint secret. Shown once; stored encrypted."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the secret's decoded bytes."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Hangar-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
    }


def event_message_id(cluster_id: Any, seq: int) -> str:
    """The delivery's id: the same for every attempt (receivers dedupe on it)."""
    return f"{cluster_id}:{seq}"


def payload(msg_id: str, type_: str, data: dict[str, Any]) -> bytes:
    """`{"id", "type", "timestamp", "data"}`; `timestamp` is the event's time (`data.at`)."""
    return json.dumps(
        {"id": msg_id, "type": type_, "timestamp": data.get("at"), "data": data},
        separators=(",", ":"),
    ).encode()
