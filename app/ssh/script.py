"""The script a node runs at bootstrap: the cluster's environment, then its setup."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Beside the script on the pod (root-only), written by the same upload; see
# BootstrapSession.start.
SECRETS_FILE = "secrets.env"
# The script's first act when it has secrets: export them and delete the file, so they are
# on disk only between the upload and the start (``$0`` is the script's absolute path).
_SOURCE_SECRETS = (
    f'if [ -f "${{0%/*}}/{SECRETS_FILE}" ]; then . "${{0%/*}}/{SECRETS_FILE}"; '
    f'rm -f "${{0%/*}}/{SECRETS_FILE}"; fi'
)


def render_script(setup: str, env: Mapping[str, str], *, with_secrets: bool = False) -> str:
    """The bash script run on the pod: ``export`` every variable of ``env`` (sshd drops
    variables sent by the client, so the script sets them itself; values are quoted with
    :func:`shlex.quote`), ``cd "$HOME"``, then ``setup`` verbatim. Its exit status is the one
    of the last command (no ``set -e`` is added). With ``with_secrets`` it first sources and
    removes the secrets file uploaded beside it (:func:`render_secrets`). Raises ValueError
    for a name that is not a shell identifier or a value containing a NUL byte."""
    lines = ["#!/usr/bin/env bash", "# Written by Hangar: environment, then the setup script."]
    if with_secrets:
        lines.append(_SOURCE_SECRETS)
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


def render_secrets(secrets: Mapping[str, str]) -> str:
    """The secrets file the runner sources before the script (`export NAME='value'` lines,
    quoted like the environment); empty without secrets. See BootstrapSession.start."""
    lines = []
    for name, value in secrets.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid secret name: {name!r}")
        if "\0" in value:
            raise ValueError(f"secret {name} contains a NUL byte")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    return "".join(lines)
