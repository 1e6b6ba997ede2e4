"""A cluster's secret values out of its bootstrap output, before lines become events.

Applied to complete lines (app/ssh/output.py assembles them across reads, so a value split
between two reads is whole again here). A value is replaced wherever it appears; a value
with several lines (a PEM key, a JSON credential) never appears whole in one output line,
so each of its lines of at least MIN_PIECE characters is replaced as well. A line cut at
its length limit may end in the first characters of a value: that partial value goes too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.redaction import REDACTED
from app.ssh.output import TRUNCATED_MARKER

# Shorter lines of a multi-line value are left alone (`{`, `}`, `-----END ...` would
# blank out ordinary output); the value as a whole is always replaced.
MIN_PIECE = 6


class SecretRedactor:
    """`redactor.lines(texts)`: the lines with every secret value replaced by `[redacted]`."""

    def __init__(self, values: Iterable[str]) -> None:
        needles: set[str] = set()
        for value in values:
            if not value:
                continue
            needles.add(value)
            pieces = [p.strip() for p in re.split(r"[\r\n]+", value)]
            if len(pieces) > 1:
                needles.update(p for p in pieces if len(p) >= MIN_PIECE)
        # Longest first, one pass: a value inside another is covered by the longer one,
        # and the marker itself is never rewritten.
        self._needles = sorted(needles, key=len, reverse=True)
        self._pattern = (re.compile("|".join(map(re.escape, self._needles)))
                         if self._needles else None)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def lines(self, texts: list[str]) -> list[str]:
        if self._pattern is None:
            return texts
        return [self.line(text) for text in texts]

    def line(self, text: str) -> str:
        if self._pattern is None:
            return text
        text = self._pattern.sub(REDACTED, text)
        if text.endswith(TRUNCATED_MARKER):
            body = text[: -len(TRUNCATED_MARKER)]
            cut = self._partial_at_end(body)
            if cut:
                text = body[:-cut] + REDACTED + TRUNCATED_MARKER
        return text

    def _partial_at_end(self, body: str) -> int:
        """Length of the longest start of a value that ends `body` (0: none)."""
        longest = 0
        for needle in self._needles:
            first = needle[0]
            # Candidates start where the needle's first character is, within reach.
            lo = max(len(body) - len(needle) + 1, 0)
            pos = body.rfind(first, lo)
            while pos != -1:
                tail = len(body) - pos
                if tail > longest and needle.startswith(body[pos:]):
                    longest = tail
                pos = body.rfind(first, lo, pos)
        return longest
