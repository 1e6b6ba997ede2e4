"""Content negotiation: which of the types a route offers the client's `Accept` prefers
(RFC 9110 §12.5.1: q-values, `type/*` and `*/*`, `q=0` meaning "not acceptable")."""

from __future__ import annotations


def _parse(accept: str) -> list[tuple[str, float, int]]:
    """(media range, q, specificity) of each element of an Accept header."""
    ranges = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media or "/" not in media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        kind, _, sub = media.partition("/")
        specificity = 0 if kind == "*" else 1 if sub == "*" else 2
        ranges.append((media, q, specificity))
    return ranges


def quality(accept: str | None, offered: str) -> float:
    """The q-value the client gives `offered` (1 without an Accept header; 0: refused)."""
    if not accept:
        return 1.0
    kind = offered.split("/")[0]
    best: tuple[int, float] | None = None
    for media, q, specificity in _parse(accept):
        if media in (offered, f"{kind}/*", "*/*") and (best is None or specificity > best[0]):
            best = (specificity, q)
    return 0.0 if best is None else best[1]


def best_match(accept: str | None, offered: list[str]) -> str | None:
    """The offered type the client prefers (ties: the first offered), or None when it
    accepts none of them."""
    scored = [(quality(accept, o), -i, o) for i, o in enumerate(offered)]
    q, _, choice = max(scored)
    return choice if q > 0 else None
