"""Secrets at rest: SSH private keys and cluster secrets encrypted with Fernet under
HANGAR_SECRET_KEY (older keys kept for decryption only), API tokens hashed.

Keys. A proper Fernet key (urlsafe base64 of 32 bytes) is used as it is. Anything else is a
passphrase, stretched with scrypt (n=2^15, r=8, p=1) and a random 16-byte salt that is
stored with the ciphertext: ``scrypt1.<salt>.<Fernet token>``. One salt per process and
passphrase (drawn at first use), so a process derives its key once, and decrypting rows of
other processes costs one derivation per salt (cached).

Rotation. ``Keyring(current, old)``: new writes use ``current``; decryption tries
``current`` then each of ``old`` (MultiFernet-style). ``hangar keys rotate-secrets``
re-encrypts stored rows with the current key, after which the old keys can go.

Rows written before the salted KDF (a passphrase hashed with one SHA-256, a plain Fernet
token) still decrypt under the same passphrase (current or old); re-encrypting them
(`rotate`) moves them to the salted form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

TOKEN_PREFIX = "hgr_"

SCRYPT_PREFIX = b"scrypt1."
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES = 16
_FINGERPRINT_SALT = b"hangar fingerprint v1"
_DERIVED_CACHE = 256  # (passphrase, salt) pairs kept per process


class KeyUnavailable(ValueError):
    """No key of the keyring decrypts this ciphertext (HANGAR_SECRET_KEY differs from the
    one it was written with, and HANGAR_SECRET_KEY_OLD does not list that one)."""


def is_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError, binascii.Error):
        return False
    return True


def _scrypt(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase.encode())


class _Derived:
    """scrypt results by (passphrase, salt), bounded, shared by every keyring of the process."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, bytes], Fernet] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, passphrase: str, salt: bytes) -> Fernet:
        key = (passphrase, salt)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        fernet = Fernet(base64.urlsafe_b64encode(_scrypt(passphrase, salt)))
        with self._lock:
            self._items[key] = fernet
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return fernet


_derived = _Derived(_DERIVED_CACHE)


class _Key:
    """One key of a keyring: a Fernet key as it is, or a passphrase."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an empty secret key")
        self.secret = secret
        self.fernet = Fernet(secret.encode()) if is_fernet_key(secret) else None
        self._salt: bytes | None = None
        self._lock = threading.Lock()

    @property
    def is_passphrase(self) -> bool:
        return self.fernet is None

    def writer(self) -> tuple[bytes, Fernet]:
        """(prefix, Fernet) to encrypt with: the salt of this process for a passphrase."""
        if self.fernet is not None:
            return b"", self.fernet
        with self._lock:
            if self._salt is None:
                self._salt = os.urandom(SALT_BYTES)
        salt = self._salt
        encoded = base64.urlsafe_b64encode(salt).rstrip(b"=")
        return SCRYPT_PREFIX + encoded + b".", _derived.get(self.secret, salt)

    def legacy(self) -> Fernet:
        """How rows were encrypted before the salted KDF: one SHA-256 of the passphrase."""
        digest = hashlib.sha256(self.secret.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


class Keyring:
    """The current key (encrypts) and the old ones (decrypt only)."""

    def __init__(self, current: str, old: Sequence[str] = ()) -> None:
        self._current = _Key(current)
        self._keys = [self._current, *(_Key(k) for k in old if k and k != current)]
        self._fingerprint_key: bytes | None = None

    def warm(self) -> None:
        """Derive the current key now (start-up), not in the first request that needs it."""
        self._current.writer()

    def encrypt(self, plaintext: str | bytes) -> bytes:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        prefix, fernet = self._current.writer()
        return prefix + fernet.encrypt(data)

    def decrypt_bytes(self, ciphertext: bytes) -> bytes:
        token, fernets = self._candidates(bytes(ciphertext))
        for fernet in fernets:
            try:
                return fernet.decrypt(token)
            except InvalidToken:
                continue
        raise KeyUnavailable(
            "cannot decrypt: HANGAR_SECRET_KEY is not the key this was encrypted with, and "
            "HANGAR_SECRET_KEY_OLD does not list it")

    def decrypt(self, ciphertext: bytes) -> str:
        return self.decrypt_bytes(ciphertext).decode()

    def rotate(self, ciphertext: bytes) -> bytes:
        """The same plaintext, encrypted with the current key."""
        return self.encrypt(self.decrypt_bytes(ciphertext))

    def fingerprint(self, data: bytes) -> str:
        """A keyed hash of `data` (HMAC-SHA256 under a key derived from the current key):
        equal inputs match, and a stored fingerprint cannot be checked against guesses
        without the key. Changes when the current key changes."""
        if self._fingerprint_key is None:
            cur = self._current
            if cur.fernet is not None:
                raw = base64.urlsafe_b64decode(cur.secret.encode())
                self._fingerprint_key = hashlib.sha256(_FINGERPRINT_SALT + raw).digest()
            else:
                self._fingerprint_key = _scrypt(cur.secret, _FINGERPRINT_SALT)
        return hmac.new(self._fingerprint_key, data, hashlib.sha256).hexdigest()

    def _candidates(self, blob: bytes) -> tuple[bytes, Iterable[Fernet]]:
        if blob.startswith(SCRYPT_PREFIX):
            salt_part, sep, token = blob[len(SCRYPT_PREFIX):].partition(b".")
            try:
                salt = base64.urlsafe_b64decode(salt_part + b"=" * (-len(salt_part) % 4))
            except (ValueError, binascii.Error):
                salt = b""
            if not sep or len(salt) != SALT_BYTES:
                return blob, ()
            return token, (_derived.get(k.secret, salt) for k in self._keys if k.is_passphrase)
        return blob, (k.fernet or k.legacy() for k in self._keys)


@lru_cache(maxsize=16)
def keyring(current: str, old: tuple[str, ...] = ()) -> Keyring:
    """The process's keyring for these keys (one per configuration, so derived keys and
    the per-process salt are shared)."""
    return Keyring(current, old)


def parse_old_keys(value: str | None) -> tuple[str, ...]:
    """HANGAR_SECRET_KEY_OLD: comma-separated keys (surrounding spaces ignored)."""
    return tuple(k.strip() for k in (value or "").split(",") if k.strip())


def _ring(key: str | Keyring) -> Keyring:
    return key if isinstance(key, Keyring) else keyring(key)


def encrypt(key: str | Keyring, plaintext: str) -> bytes:
    return _ring(key).encrypt(plaintext)


def decrypt(key: str | Keyring, ciphertext: bytes) -> str:
    return _ring(key).decrypt(ciphertext)


def new_token() -> str:
    """A new API token. Shown once; only its hash is stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    return token[: len(TOKEN_PREFIX) + 6]
