"""SSH key pairs for pods."""

from __future__ import annotations

import asyncssh


def generate_keypair(comment: str = "hangar") -> tuple[str, str]:
    """Generate a new ed25519 key pair.

    Returns ``(private_key, public_key)``: the private key in OpenSSH PEM format
    (``-----BEGIN OPENSSH PRIVATE KEY-----``, unencrypted: encrypt it at rest yourself)
    and the public key as one OpenSSH ``authorized_keys`` line without a trailing newline,
    ``ssh-ed25519 AAAA... <comment>``.
    """
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    private = key.export_private_key("openssh").decode()
    public = key.export_public_key("openssh").decode().strip()
    return private, public
