"""An incremental Server-Sent Events parser (the WHATWG event-stream grammar), fed bytes as
they arrive in chunks of any size."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """A dispatched event. `id` is the stream's last event id at dispatch (None if none was
    ever sent)."""

    event: str
    data: str
    id: str | None


@dataclass(frozen=True)
class Comment:
    """A `:` line: the server's heartbeat or greeting."""

    text: str


class SSEDecoder:
    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._pending_cr = False  # a chunk ended on CR: a following LF belongs to it
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Message | Comment]:
        text = self._text.decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = False
        self._buffer += text
        out: list[Message | Comment] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, width = cut
            line = self._buffer[:end]
            if self._buffer[end] == "\r" and end + 1 == len(self._buffer):
                self._pending_cr = True  # maybe the CR of a CRLF split across chunks
            self._buffer = self._buffer[end + width:]
            item = self._line(line)
            if item is not None:
                out.append(item)
        return out

    def _line(self, line: str) -> Message | Comment | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].lstrip(" "))
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\x00" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isdigit():
                self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Message | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return Message(event=event or "message", data="\n".join(data), id=self._last_id)


def _line_end(buffer: str) -> tuple[int, int] | None:
    """Where the first complete line ends and how wide its terminator is (CRLF, LF or CR)."""
    lf, cr = buffer.find("\n"), buffer.find("\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, 1
    if cr + 1 < len(buffer) and buffer[cr + 1] == "\n":
        return cr, 2
    return cr, 1
