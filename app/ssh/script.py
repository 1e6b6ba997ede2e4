"""The script a node runs at bootstrap: the cluster's environment, then its setup."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render_script(setup: str, env: Mapping[str, str]) -> str:
    """The bash script run on the pod: ``export`` every variable of ``env`` (sshd drops
    variables sent by the client, so the script sets them itself; values are quoted with
    :func:`shlex.quote`), ``cd "$HOME"``, then ``setup`` verbatim. Its exit status is the one
    of the last command (no ``set -e`` is added). Raises ValueError for a name that is not a
    shell identifier or a value containing a NUL byte."""
    lines = ["#!/usr/bin/env bash", "# Written by Hangar: environment, then the setup script."]
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
        if "\0" in value:
            raise ValueError(f"environment variable {name} contains a NUL byte")
        lines.append(f"export {name}={shlex.quote(value)}")
    lines.append('cd "$HOME"')
    lines.append(setup)
    text = "\n".join(lines)
    return text if text.endswith("\n") else text + "\n"
