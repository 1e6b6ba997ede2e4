"""What a person types into the client commands' options, checked before any request:
durations and amounts, `NAME=VALUE` pairs (a bare NAME from the environment), SSH public
keys (a line or a file of them); and the `--json` flag every command offers."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from app.cli.common import fail


def key_values(pairs: Sequence[str], option: str) -> dict[str, str]:
    """`NAME=VALUE` pairs; a bare `NAME` takes the value of the environment variable NAME
    (so a secret need not appear on a command line or in shell history)."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name:
            raise fail(f"{option} {pair!r}: expected NAME=VALUE or NAME", 2)
        if not sep:
            if name not in os.environ:
                raise fail(f"{option} {name}: no value given, and no environment variable "
                           f"{name} to take it from", 2)
            value = os.environ[name]
        values[name] = value
    return values


def public_keys(values: Sequence[str]) -> list[str]:
    """`--ssh-key` values: a public key line, or a file of them (`~/.ssh/id_ed25519.pub`)."""
    keys: list[str] = []
    for value in values:
        if value.startswith(("ssh-", "ecdsa-", "sk-")):
            keys.append(value.strip())
            continue
        try:
            text = Path(value).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"--ssh-key {value!r} is neither a public key line nor a file of them "
                       f"({exc})", 2) from None
        if "PRIVATE KEY" in text:
            raise fail(f"--ssh-key {value}: that is a private key; pass the public one "
                       f"({value}.pub)", 2)
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise fail(f"--ssh-key {value}: the file holds no key", 2)
        keys += lines
    return keys


def duration(value: str) -> int | None:
    """`SECONDS`, or with a unit (`90m`, `2h`, `1d`); `none` for no TTL."""
    text = value.strip().lower()
    if text == "none":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    scale = units.get(text[-1:], 0)
    number = text[:-1] if scale else text
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of seconds (3600, or 90m, 2h, 1d) or 'none'")
    return int(number) * (scale or 1)


def positive_seconds(value: str) -> int:
    seconds = duration(value)
    if seconds is None:
        raise argparse.ArgumentTypeError("a TTL at create is a number of seconds (3600, 2h)")
    return seconds


def positive_money(value: str) -> float:
    try:
        amount = float(value)
    except ValueError:
        amount = float("nan")
    if not 0 < amount < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive amount of USD per hour")
    return amount


def as_json(p: argparse.ArgumentParser, what: str = "Print the API's JSON.") -> None:
    p.add_argument("--json", action="store_true", help=what)
