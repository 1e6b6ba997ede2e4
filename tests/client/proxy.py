"""A TCP proxy in front of the API that cuts one event stream in the middle of an event,
as a dropped connection or a restarting load balancer would."""

from __future__ import annotations

import asyncio
import contextlib
import re

EVENT_START = re.compile(rb"(?:^|\n)id: ")
LAST_EVENT_ID = re.compile(rb"(?i)\r\nlast-event-id: *(\d+)\r\n")


class CuttingProxy:
    """Forwards everything; the first connection that carries an event stream is closed
    halfway through its `cut_in_event`-th event (counted from 1). `resumed_from` lists the
    Last-Event-ID of every request that carried one."""

    def __init__(self, upstream_port: int, cut_in_event: int = 3) -> None:
        self.upstream_port = upstream_port
        self.cut_in_event = cut_in_event
        self.cuts = 0
        self.resumed_from: list[int] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _connection(self, client_r: asyncio.StreamReader,
                          client_w: asyncio.StreamWriter) -> None:
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        streaming = asyncio.Event()

        async def requests() -> None:
            while data := await client_r.read(65536):
                if b"/events " in data and b"text/event-stream" in data:
                    streaming.set()
                self.resumed_from += [int(m) for m in LAST_EVENT_ID.findall(data)]
                upstream_w.write(data)
                await upstream_w.drain()

        async def responses() -> None:
            seen = b""
            while data := await upstream_r.read(65536):
                if streaming.is_set() and self.cuts == 0:
                    before = len(seen)
                    seen += data
                    starts = [m.end() for m in EVENT_START.finditer(seen)]
                    if len(starts) >= self.cut_in_event:
                        # Up to the middle of that event's `id:` line, then hang up.
                        cut = starts[self.cut_in_event - 1] - before
                        self.cuts += 1
                        client_w.write(data[:max(cut, 0)])
                        await client_w.drain()
                        return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(requests()), asyncio.create_task(responses())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_w, upstream_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
