"""Content negotiation: how much an `Accept` header wants a media type (RFC 9110 12.5.1)."""

from __future__ import annotations

from dataclasses import dataclass

_SPECIFIC = 2  # type/subtype
_TYPE = 1  # type/*
_ANY = 0  # */*


@dataclass(frozen=True, slots=True)
class Quality:
    q: float  # 0 is "not acceptable"
    explicit: bool  # named as type/subtype, not reached through a wildcard


def quality(accept: str | None, media_type: str) -> Quality:
    """The q of the most specific media range in `accept` that matches `media_type`
    (`type/subtype` beats `type/*` beats `*/*`; the first of equals counts); 0 when none
    matches. No header at all accepts everything (q=1). Ranges that cannot be read are
    skipped, as are media-type parameters other than q."""
    if accept is None or not accept.strip():
        return Quality(1.0, False)
    want_type, _, want_sub = media_type.lower().partition("/")
    best: tuple[int, float] | None = None
    for item in accept.split(","):
        range_, *params = item.split(";")
        type_, slash, sub = range_.strip().lower().partition("/")
        if not slash or not type_ or not sub:
            continue
        if type_ == "*" and sub == "*":
            specificity = _ANY
        elif type_ == want_type and sub == "*":
            specificity = _TYPE
        elif type_ == want_type and sub == want_sub:
            specificity = _SPECIFIC
        else:
            continue
        q = _q(params)
        if q is None:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    if best is None:
        return Quality(0.0, False)
    return Quality(best[1], best[0] == _SPECIFIC)


def _q(params: list[str]) -> float | None:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def best_match(accept: str | None, offered: list[str]) -> str | None:
    """The offered type the client prefers (ties: the first offered), or None when it
    accepts none of them."""
    scored = [(quality(accept, o).q, -i, o) for i, o in enumerate(offered)]
    q, _, choice = max(scored)
    return choice if q > 0 else None
