"""Last line of defence for secrets in text that leaves the process (log lines, error
details): API tokens are cut to their display prefix, private key blocks and registered
secrets (the RunPod key, HANGAR_SECRET_KEY) are replaced. Code should not put secrets in
text in the first place; this catches what slips through, e.g. a caller pasting a token
into a field that an error message quotes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from app.domain.crypto import TOKEN_PREFIX, token_display_prefix
from app.domain.stream_tokens import PREFIX as STREAM_TOKEN_PREFIX

_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{12,}")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
# Stream tokens travel in URLs (`?access_token=`): a URL quoted in a log line loses them.
_STREAM_TOKEN = re.compile(re.escape(STREAM_TOKEN_PREFIX) + r"[A-Za-z0-9_-]{8,}")
REDACTED = "[redacted]"
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Secrets known to this process (8+ characters, so short values cannot blank out
    ordinary words)."""
    _secrets.update(v for v in values if v and len(v) >= 8)


def redact(text: str) -> str:
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _PRIVATE_KEY.sub(REDACTED, text)
    if TOKEN_PREFIX in text:
        text = _TOKEN.sub(lambda m: token_display_prefix(m.group(0)) + "…", text)
    if STREAM_TOKEN_PREFIX in text:
        text = _STREAM_TOKEN.sub(STREAM_TOKEN_PREFIX + "…", text)
    return text


def redact_value(value: Any) -> Any:
    """`redact` applied to the strings inside lists, tuples and dicts."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value


def structlog_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every value of the event (after exceptions are
    formatted, before rendering)."""
    return {key: redact_value(value) for key, value in event_dict.items()}
