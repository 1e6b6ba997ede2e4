"""A node's bootstrap output, a stranger's bytes, as bounded text lines."""

from __future__ import annotations

TRUNCATED_MARKER = "… [truncated]"


class OutputLines:
    """Turns chunks of the remote log into complete text lines.

    A partial last line stays buffered until its newline arrives (or ``final``). Each line is
    decoded as UTF-8 (invalid bytes become U+FFFD), loses a trailing ``\\r`` (CRLF), keeps only
    the text after the last ``\\r`` when a progress bar redraws itself with carriage returns,
    and is cut to ``max_chars`` characters plus :data:`TRUNCATED_MARKER`. A line longer than
    ``max_line_bytes`` bytes without a newline is split every ``max_line_bytes`` bytes (so the
    buffer stays bounded; the split points depend only on the stream, not on chunking).

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
        self, offset: int = 0, *, max_chars: int = 1000, max_line_bytes: int = 65536
    ) -> None:
        if offset < 0 or max_chars < 1 or max_line_bytes < 1:
            raise ValueError("offset must be >= 0, max_chars and max_line_bytes >= 1")
        self._start = offset
        self._offset = offset
        self._pending = bytearray()
        self.max_chars = max_chars
        self.max_line_bytes = max_line_bytes

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
            newline = buf.find(b"\n", pos, pos + limit + 1)
            if newline != -1:
                lines.append(self._text(buf[pos:newline]))
                pos = newline + 1
            elif len(buf) - pos > limit:
                lines.append(self._text(buf[pos : pos + limit]))
                pos += limit
            elif final:
                lines.append(self._text(buf[pos:]))
                pos = len(buf)
            else:
                break
        del buf[:pos]
        self._offset += pos
        return lines

    def _text(self, raw: bytes | bytearray) -> str:
        text = bytes(raw).decode("utf-8", errors="replace")
        if text.endswith("\r"):
            text = text[:-1]
        if "\r" in text:
            redraws = [part for part in text.split("\r") if part]
            text = redraws[-1] if redraws else ""
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + TRUNCATED_MARKER
        return text
