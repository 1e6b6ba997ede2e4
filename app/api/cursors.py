"""Opaque page cursors: a position as text, carried in a URL (`next` links)."""

from __future__ import annotations

import base64

from app.api.errors import ApiError

PATTERN = r"^[A-Za-z0-9_-]+$"  # what `encode` gives: a query parameter's pattern


def encode(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode(cursor: str) -> str:
    """The position a cursor of `encode` holds; a 422 for anything else."""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid() from exc


def invalid() -> ApiError:
    return ApiError(422, "invalid_cursor",
                    "cursor is not one this API returned; start again without it")
