"""The OpenSSH public keys a caller may install on its nodes (`ssh_public_keys`)."""

from __future__ import annotations

import asyncssh

MAX_KEYS = 20
MAX_KEY_CHARS = 16 * 1024
MIN_RSA_BITS = 2048
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def check_public_key(line: str) -> str:
    """One authorized_keys line `<type> <base64> [comment]`, without options, as it is
    installed: surrounding spaces dropped, one space between type, key and comment.
    ValueError says what is wrong (never quoting the line)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in line.strip()):
        raise ValueError("one key per entry, on one line (no newlines or control characters)")
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key: expected '<type> <base64 key> [comment]'"
                         ", e.g. the contents of ~/.ssh/id_ed25519.pub")
    kind, blob = parts[0], parts[1]
    if kind not in KEY_TYPES:
        if kind.endswith("-cert-v01@openssh.com"):
            raise ValueError("certificates are not accepted; send the plain public key")
        raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)} (options before "
                         "the key type are not accepted)")
    try:
        key = asyncssh.import_public_key(f"{kind} {blob}")
    except (asyncssh.KeyImportError, ValueError):
        raise ValueError(f"not a valid {kind} public key (the base64 part does not decode to "
                         "one)") from None
    if key.algorithm.decode() != kind:
        raise ValueError(f"the key is a {key.algorithm.decode()} key, not {kind}")
    if kind == "ssh-rsa":
        bits = key.pyca_key.key_size
        if bits < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits; this one has "
                             f"{bits}")
    return " ".join(parts)
