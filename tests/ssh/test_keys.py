import re

import asyncssh
import pytest

from app.ssh.bootstrap import AuthRejected, BootstrapSession, pin_host_key
from app.ssh.keys import generate_keypair


def test_generate_keypair_formats_and_round_trip():
    private, public = generate_keypair("node-7")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert private.rstrip().endswith("-----END OPENSSH PRIVATE KEY-----")
    assert re.fullmatch(r"ssh-ed25519 AAAA[A-Za-z0-9+/=]+ node-7", public)
    derived = asyncssh.import_private_key(private).export_public_key().decode().strip()
    assert derived == public
    assert generate_keypair()[1].endswith(" hangar")
    assert generate_keypair()[0] != private


async def test_public_key_authenticates(pod, keypair):
    host_key = await pin_host_key("127.0.0.1", pod.port, keypair[0])
    async with BootstrapSession.connect("127.0.0.1", pod.port, keypair[0], host_key=host_key) as s:
        assert await s.run("echo hi; echo oops >&2; exit 4") == (4, "hi\noops\n")


async def test_other_key_is_rejected(pod):
    other_private, _ = generate_keypair()
    with pytest.raises(AuthRejected):
        await pin_host_key("127.0.0.1", pod.port, other_private)
    with pytest.raises(AuthRejected):
        async with BootstrapSession.connect(
            "127.0.0.1", pod.port, other_private, host_key=pod.host_key_line
        ):
            pass
    assert pod.commands == []
