"""GPU catalog: a TTL cache with one fetch at a time, and name resolution."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from app.providers.base import GpuType, GpuTypeAmbiguous, GpuTypeNotFound

Clock = Callable[[], float]

_VENDOR_PREFIXES = ("nvidia", "geforce")
_SEPARATORS = re.compile(r"[\s\-_/]+")


class CatalogCache:
    """Holds the last catalog for `ttl` seconds; concurrent callers share one fetch."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[GpuType]]],
        *,
        ttl: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._types: list[GpuType] | None = None
        self._fetched_at: float | None = None
        self._fetches_started = 0  # numbers the fetches
        self._data_from = 0  # number of the fetch that produced `_types`

    def peek(self) -> list[GpuType] | None:
        """The cached catalog, fresh or not, without fetching."""
        return list(self._types) if self._types is not None else None

    def _fresh(self) -> bool:
        return (
            self._types is not None
            and self._fetched_at is not None
            and self._clock() - self._fetched_at < self._ttl
        )

    def invalidate(self) -> None:
        self._fetched_at = None

    async def get(self, *, refresh: bool = False) -> list[GpuType]:
        asked_after = self._fetches_started
        if not refresh and self._fresh():
            assert self._types is not None
            return list(self._types)
        async with self._lock:
            # Someone else fetched while we waited: for a refresh, only a fetch that
            # started after we asked counts; otherwise any fresh one does.
            if self._types is not None:
                if (refresh and self._data_from > asked_after) or (not refresh and self._fresh()):
                    return list(self._types)
            self._fetches_started += 1
            number = self._fetches_started
            started = self._clock()
            types = await self._fetch()
            self._types, self._fetched_at, self._data_from = types, started, number
            return list(types)


# --- resolution -----------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case, separators to single spaces, leading 'NVIDIA'/'GeForce' dropped."""
    words = [w for w in _SEPARATORS.split(text.strip().lower()) if w]
    while words and words[0] in _VENDOR_PREFIXES:
        words.pop(0)
    return " ".join(words)


def _label(t: GpuType) -> str:
    return f"{t.id} ({t.display_name})"


def resolve(query: str, types: Sequence[GpuType]) -> GpuType:
    """Map what a person typed to one catalog entry.

    1. exact id, then exact display name (both normalised);
    2. else the entries whose id + name hold every query word (whole words);
    3. else, for run-together input like 'rtx4090', the same with spaces ignored.
    One match wins; several raise `GpuTypeAmbiguous`; none raise `GpuTypeNotFound`.
    """
    q = normalise(query)
    if not q:
        raise GpuTypeNotFound(
            "GPU type must not be empty. Known RunPod GPU types: " + _known(types),
            candidates=sorted(t.id for t in types),
        )
    for t in types:
        if t.id == query.strip():
            return t
    for key in (lambda t: normalise(t.id), lambda t: normalise(t.display_name)):
        hits = _unique([t for t in types if key(t) == q])
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise _ambiguous(query, hits)

    tokens = q.split()
    hits = _unique([t for t in types if _has_words(t, tokens)])
    if not hits:
        hits = _unique([t for t in types if _has_compact(t, tokens)])
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise _ambiguous(query, hits)
    raise GpuTypeNotFound(
        f"GPU type {query!r} matches no RunPod GPU type. Known RunPod GPU types: " + _known(types),
        candidates=sorted(t.id for t in types),
    )


def _unique(types: list[GpuType]) -> list[GpuType]:
    seen: dict[str, GpuType] = {}
    for t in types:
        seen.setdefault(t.id, t)
    return list(seen.values())


def _has_words(t: GpuType, tokens: list[str]) -> bool:
    words = set(normalise(t.id).split()) | set(normalise(t.display_name).split())
    return all(tok in words for tok in tokens)


def _has_compact(t: GpuType, tokens: list[str]) -> bool:
    hay = normalise(t.id).replace(" ", "") + "|" + normalise(t.display_name).replace(" ", "")
    return all(tok in hay for tok in tokens)


def _ambiguous(query: str, hits: list[GpuType]) -> GpuTypeAmbiguous:
    """`candidates` are catalog ids, each of which resolves when sent back verbatim; the
    message shows them with their display names."""
    hits = sorted(hits, key=lambda t: t.id)
    return GpuTypeAmbiguous(
        f"GPU type {query!r} is ambiguous: it matches {len(hits)} RunPod GPU types: "
        + "; ".join(_label(t) for t in hits)
        + ". Give the exact id, or add words to narrow it down.",
        candidates=[t.id for t in hits],
    )


def _known(types: Sequence[GpuType]) -> str:
    ids = sorted(t.id for t in types)
    return ", ".join(ids) if ids else "(the catalog is empty)"
