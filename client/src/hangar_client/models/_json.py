"""Reading a JSON answer leniently: a field of the wrong type is None (or empty), never an
error, so that the models outlive the server they were written against."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hangar_client.models.enums import _OpenEnum


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _enum(cls: type[_OpenEnum], value: Any, default: str | None = None) -> Any:
    if isinstance(value, str) and value:
        return cls(value)
    return cls(default) if default else None


def _dict(value: Any) -> dict:
    return dict(value) if isinstance(value, dict) else {}


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
