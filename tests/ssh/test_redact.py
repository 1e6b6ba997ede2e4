"""Secret values out of bootstrap output lines: whole values, the lines of a multi-line
value, a value cut by the line limit, and a value split across two reads."""

from __future__ import annotations

from app.ssh.output import TRUNCATED_MARKER, OutputLines
from app.ssh.redact import SecretRedactor

TOKEN = "hf_Zk3s9QpL0mXv7Rt2"


def test_values_are_replaced_wherever_they_appear() -> None:
    r = SecretRedactor([TOKEN, "p@ss", ""])
    assert r.lines([f"token={TOKEN}!", f"{TOKEN}{TOKEN}", "login p@ss ok", "plain"]) == [
        "token=[redacted]!", "[redacted][redacted]", "login [redacted] ok", "plain"]
    assert not SecretRedactor([""]) and SecretRedactor(["x"])


def test_one_pass_longest_first() -> None:
    # A value inside another goes with the longer one; the marker is never rewritten.
    r = SecretRedactor(["abc", "xxabcxx", "e", "d"])
    assert r.line("xxabcxx abc e") == "[redacted] [redacted] [redacted]"


def test_the_lines_of_a_multi_line_value() -> None:
    pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\r\nQ0FBQUFB\n}\n-----END KEY-----"
    r = SecretRedactor([pem])
    out = r.lines(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "  QQ0FBQUFB  ", "}", "done"])
    assert out == ["[redacted]", "  Q[redacted]  ", "}", "done"]


def test_a_value_cut_by_the_line_limit() -> None:
    lines = OutputLines(max_chars=20)
    r = SecretRedactor([TOKEN])
    out = r.lines(lines.feed(f"0123456789abcd{TOKEN}\n".encode()))
    assert out == ["0123456789abcd[redacted]" + TRUNCATED_MARKER]
    assert TOKEN[:6] not in out[0]


def test_a_value_split_across_two_reads() -> None:
    lines, r = OutputLines(), SecretRedactor([TOKEN])
    first = r.lines(lines.feed(f"start {TOKEN[:7]}".encode()))
    second = r.lines(lines.feed(f"{TOKEN[7:]} end\n".encode()))
    assert first == [] and second == ["start [redacted] end"]
