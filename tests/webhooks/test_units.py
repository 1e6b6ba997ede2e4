"""The pieces on their own: the address policy, filters, signatures (checked against the
`standardwebhooks` library)."""

from __future__ import annotations

import ipaddress
import time

import pytest
from standardwebhooks import Webhook

from app.webhooks import filters, signing, urls


@pytest.mark.parametrize(("address", "private_ok", "refused_always"), [
    ("8.8.8.8", True, False),
    ("2606:4700:4700::1111", True, False),
    ("127.0.0.1", False, False),
    ("::1", False, False),
    ("10.0.0.1", False, False),
    ("172.16.5.4", False, False),
    ("192.168.1.1", False, False),
    ("fd00::1", False, False),
    ("100.64.0.1", False, False),
    ("169.254.169.254", False, True),
    ("169.254.1.1", False, True),
    ("fe80::1", False, True),
    ("fd00:ec2::254", False, True),
    ("100.100.100.200", False, True),
    ("0.0.0.0", False, True),
    ("224.0.0.1", False, True),
    ("255.255.255.255", False, True),
    ("::ffff:169.254.169.254", False, True),
    ("::ffff:10.0.0.1", False, False),
    ("64:ff9b::a9fe:a9fe", False, True),  # NAT64 of 169.254.169.254
    ("2002:a9fe:a9fe::1", False, True),  # 6to4 of 169.254.169.254
])
def test_address_policy(address: str, private_ok: bool, refused_always: bool) -> None:
    ip = ipaddress.ip_address(address)
    public = private_ok
    assert (urls.refusal(ip, allow_private=False) is None) == public
    assert (urls.refusal(ip, allow_private=True) is None) == (not refused_always)


def test_filters() -> None:
    assert filters.normalize(None) == ["*"] and filters.normalize([]) == ["*"]
    assert filters.normalize(["node.ready", "cluster.*", "node.ready"]) == ["node.ready",
                                                                           "cluster.*"]
    with pytest.raises(filters.InvalidFilter):
        filters.normalize(["cluster.readyy"])
    pats = ["cluster.*", "node.ready"]
    assert filters.matches(pats, "cluster.failed") and filters.matches(pats, "cluster.notice")
    assert filters.matches(pats, "node.ready")
    assert not filters.matches(pats, "node.output") and not filters.matches(pats, "node.terminated")
    assert filters.matches(["*"], "node.output")
    assert not filters.matches(["node.*"], "nodes.ready")


def test_signature_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    body = signing.payload("c:1", "cluster.ready", {"at": "2026-12-03T10:00:00+00:00"})
    headers = signing.headers(signing.secret_key(secret), "c:1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["id"] == "c:1"
    # The library's own signature equals ours.
    ts = int(time.time())
    theirs = Webhook(secret).sign("c:1", _dt(ts), body.decode())
    assert theirs == signing.signature(signing.secret_key(secret), "c:1", ts, body)
    with pytest.raises(Exception, match="signature"):
        Webhook(signing.new_secret()).verify(body, headers)


def _dt(ts: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)
