"""Secrets at rest: SSH private keys encrypted with Fernet, API tokens hashed."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

TOKEN_PREFIX = "hgr_"


def fernet_for(secret_key: str) -> Fernet:
    """A Fernet key as given, or one derived from any passphrase."""
    try:
        return Fernet(secret_key.encode())
    except (ValueError, TypeError):
        digest = hashlib.sha256(secret_key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret_key: str, plaintext: str) -> bytes:
    return fernet_for(secret_key).encrypt(plaintext.encode())


def decrypt(secret_key: str, ciphertext: bytes) -> str:
    try:
        return fernet_for(secret_key).decrypt(ciphertext).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: HANGAR_SECRET_KEY differs from the one used") from exc


def new_token() -> str:
    """A new API token. Shown once; only its hash is stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    return token[: len(TOKEN_PREFIX) + 6]
