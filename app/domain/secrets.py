"""A cluster's secrets at rest: one JSON object of name -> value, encrypted with the
keyring (HANGAR_SECRET_KEY); NULL when there are none or once the cluster has ended."""

from __future__ import annotations

import json
from collections.abc import Mapping

from app.domain.crypto import Keyring


def encrypt_secrets(keys: Keyring, values: Mapping[str, str]) -> bytes | None:
    if not values:
        return None
    return keys.encrypt(json.dumps(dict(values), separators=(",", ":")))


def decrypt_secrets(keys: Keyring, blob: bytes | None) -> dict[str, str]:
    """The values (KeyUnavailable, a ValueError, when no key of `keys` decrypts them)."""
    if blob is None:
        return {}
    values = json.loads(keys.decrypt(blob))
    if not isinstance(values, dict):
        raise ValueError("stored secrets are not an object")
    return {str(k): str(v) for k, v in values.items()}
