"""A node's bootstrap output, a stranger's bytes, as bounded text lines."""

from __future__ import annotations

import re

TRUNCATED_MARKER = "… [truncated]"
REPLACEMENT = "\ufffd"
# Terminal escape sequences (colours, cursor moves, window titles): dropped whole, so
# `\x1b[32mok\x1b[0m` reads `ok`. CSI, OSC (ended by BEL or ST), and the short escapes
# (ESC, intermediate bytes, a final byte: `\x1b(B`, `\x1b7`).
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]")
# Every other control character but tab: C0 (NUL included), DEL and C1.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class OutputLines:
    """Turns chunks of the remote log into complete text lines.

    A partial last line stays buffered until its newline arrives (or ``final``). Each line is
    decoded as UTF-8 (invalid bytes become U+FFFD), loses a trailing ``\\r`` (CRLF), keeps only
    the text after the last ``\\r`` when a progress bar redraws itself with carriage returns,
    loses terminal escape sequences (colours), has every other control character but tab
    (NUL, DEL, C0 and C1) replaced by U+FFFD, and is cut to ``max_chars`` characters plus
    :data:`TRUNCATED_MARKER`. So whatever the bytes, a line is text that JSON, Postgres
    (which refuses NUL) and a terminal take as it is. A line longer than
    ``max_line_bytes`` bytes is returned once, as its first ``max_line_bytes`` bytes cut to
    ``max_chars`` plus the marker, as soon as those bytes are in; the rest of it, up to its
    newline, is consumed without being returned (so the buffer stays bounded, and a 50 MB
    line is one line whatever the chunking). ``mid_line=True`` starts inside such a line:
    what comes before the next newline is consumed unseen (:attr:`mid_line` says whether an
    instance is there now; the byte before :attr:`offset` not being a newline says so too).

    Offsets, and resuming after a restart:

    - :attr:`offset` is the byte offset in the log just past the last line returned by
      :meth:`feed`; it always sits on a line boundary. Persist this one (together with the
      lines you emitted).
    - :attr:`read_offset` (``offset`` + buffered bytes) is where to read next.

    After a restart, build ``OutputLines(offset=persisted)`` and read from its ``read_offset``
    (equal to the persisted offset): the partial line that was buffered is read again, and no
    line is emitted twice or lost::

        lines = OutputLines(offset=node.log_offset)
        while True:
            p = await session.read(lines.read_offset)
            for text in lines.feed(p.data, final=p.complete):
                emit_event(text)
            node.log_offset = lines.offset  # persist with the events
            if p.complete:
                break  # p.exit_code is the script's status
            if not p.data:
                await asyncio.sleep(poll_interval)
    """

    def __init__(
        self, offset: int = 0, *, max_chars: int = 1000, max_line_bytes: int = 65536,
        mid_line: bool = False,
    ) -> None:
        if offset < 0 or max_chars < 1 or max_line_bytes < 1:
            raise ValueError("offset must be >= 0, max_chars and max_line_bytes >= 1")
        self._start = offset
        self._offset = offset
        self._pending = bytearray()
        self._mid_line = mid_line
        self.max_chars = max_chars
        self.max_line_bytes = max_line_bytes

    @property
    def mid_line(self) -> bool:
        """Inside a line too long to keep: the rest of it, to its newline, is not returned."""
        return self._mid_line

    @property
    def offset(self) -> int:
        """Log offset just past the last complete line returned (a line boundary): persist it."""
        return self._offset

    @property
    def read_offset(self) -> int:
        """Log offset where the next chunk starts (``offset`` + buffered partial line)."""
        return self._offset + len(self._pending)

    @property
    def consumed(self) -> int:
        """Bytes turned into complete lines by this instance (``offset`` - starting offset)."""
        return self._offset - self._start

    def feed(self, data: bytes, final: bool = False) -> list[str]:
        """Add the next chunk; return the lines it completes. With ``final`` (the log is
        complete), a last line without a newline is returned too."""
        buf = self._pending
        buf += data
        lines: list[str] = []
        pos = 0
        limit = self.max_line_bytes
        while pos < len(buf):
            if self._mid_line:
                newline = buf.find(b"\n", pos)
                pos = len(buf) if newline == -1 else newline + 1
                self._mid_line = newline == -1
                continue
            newline = buf.find(b"\n", pos, pos + limit + 1)
            if newline != -1:
                lines.append(self._text(buf[pos:newline]))
                pos = newline + 1
            elif len(buf) - pos > limit:
                lines.append(self._text(buf[pos : pos + limit], cut=True))
                pos += limit
                self._mid_line = True
            elif final:
                lines.append(self._text(buf[pos:]))
                pos = len(buf)
            else:
                break
        del buf[:pos]
        self._offset += pos
        return lines

    def _text(self, raw: bytes | bytearray, *, cut: bool = False) -> str:
        text = bytes(raw).decode("utf-8", errors="replace")
        if text.endswith("\r"):
            text = text[:-1]
        if "\r" in text:
            redraws = [part for part in text.split("\r") if part]
            text = redraws[-1] if redraws else ""
        if "\x1b" in text:
            text = _ESCAPE.sub("", text)
        text = _CONTROL.sub(REPLACEMENT, text)
        if cut or len(text) > self.max_chars:
            text = text[: self.max_chars] + TRUNCATED_MARKER
        return text
