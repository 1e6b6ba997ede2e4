"""Secrets at rest: a Fernet key used as it is, a passphrase stretched with scrypt and a
salt stored beside the ciphertext, old keys for decryption only, rows from before the
salted KDF still readable."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet

from app.domain.crypto import SCRYPT_PREFIX, Keyring, KeyUnavailable, parse_old_keys
from app.domain.secrets import decrypt_secrets, encrypt_secrets


def test_a_fernet_key_is_used_as_it_is() -> None:
    key = Fernet.generate_key().decode()
    blob = Keyring(key).encrypt("private")
    assert Fernet(key.encode()).decrypt(blob) == b"private"


def test_a_passphrase_is_salted_per_keyring_and_read_back_by_any() -> None:
    a, b = Keyring("correct horse"), Keyring("correct horse")  # two processes, say
    one, two = a.encrypt("private"), b.encrypt("private")
    assert one.startswith(SCRYPT_PREFIX) and two.startswith(SCRYPT_PREFIX)
    salt_one, salt_two = one.split(b".")[1], two.split(b".")[1]
    assert salt_one != salt_two  # a salt of their own, stored with the ciphertext
    assert a.decrypt(two) == b.decrypt(one) == "private"
    # Not one SHA-256 of the passphrase: that key does not open it.
    sha = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"correct horse").digest()))
    with pytest.raises(Exception):  # noqa: B017 - any failure will do
        sha.decrypt(one.split(b".", 2)[2])
    with pytest.raises(KeyUnavailable):
        Keyring("another passphrase").decrypt(one)


def test_old_keys_decrypt_new_writes_use_the_current_one() -> None:
    old_fernet = Fernet.generate_key().decode()
    old_rows = [Keyring("old passphrase").encrypt("a"), Keyring(old_fernet).encrypt("b")]
    ring = Keyring("new passphrase", parse_old_keys(f" old passphrase , {old_fernet}"))
    assert [ring.decrypt(r) for r in old_rows] == ["a", "b"]
    rotated = [ring.rotate(r) for r in old_rows]
    alone = Keyring("new passphrase")
    assert [alone.decrypt(r) for r in rotated] == ["a", "b"]
    with pytest.raises(KeyUnavailable):
        alone.decrypt(old_rows[0])


def test_rows_from_before_the_salted_kdf_still_decrypt() -> None:
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"test-secret").digest()))
    row = legacy.encrypt(b"private")
    assert Keyring("test-secret").decrypt(row) == "private"
    assert Keyring("new", ["test-secret"]).decrypt(row) == "private"
    assert Keyring("test-secret").rotate(row).startswith(SCRYPT_PREFIX)


def test_secrets_round_trip_and_nothing_for_none() -> None:
    ring = Keyring("k")
    assert encrypt_secrets(ring, {}) is None and decrypt_secrets(ring, None) == {}
    blob = encrypt_secrets(ring, {"HF_TOKEN": "hf_abc", "PEM": "a\nb"})
    assert b"hf_abc" not in blob
    assert decrypt_secrets(ring, blob) == {"HF_TOKEN": "hf_abc", "PEM": "a\nb"}


def test_fingerprints_are_keyed() -> None:
    a, b = Keyring("one"), Keyring("two")
    assert a.fingerprint(b"x") == Keyring("one").fingerprint(b"x") != b.fingerprint(b"x")
    assert a.fingerprint(b"x") != hashlib.sha256(b"x").hexdigest()
