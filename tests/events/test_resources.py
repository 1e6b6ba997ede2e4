"""What a stream holds in the API process: released the moment its client goes away, and
a client that stops reading neither slows the others nor keeps anything past its close."""

from __future__ import annotations

import contextlib
import socket

from tests.support.events import append, make_cluster, open_stream, read_events
from tests.support.stack import eventually, hub_of


async def test_disconnected_clients_are_released_at_once(db, teams, served) -> None:
    app = served.server.config.app
    # No heartbeat for a minute: nothing is written, so only noticing the disconnect
    # itself can release a stream.
    app.state.settings = app.state.settings.model_copy(update={"sse_heartbeat_s": 60.0})
    hub = hub_of(served)
    alpha = teams["alpha"]
    one, two = await make_cluster(db, alpha.id), await make_cluster(db, alpha.id)
    readers = []  # held: a dropped reader closes its response
    async with contextlib.AsyncExitStack() as streams:
        for i in range(60):
            _, events = await streams.enter_async_context(
                open_stream(alpha.client, one if i % 6 else two))
            await read_events(events, count=1)  # the replay: registered and caught up
            readers.append(events)
        assert hub.subscribers == 60 and hub.feeds == 2
        feeds = [hub.feed_of(one), hub.feed_of(two)]
    # Every connection is closed now.
    await eventually(lambda: hub.subscribers == 0 and hub.feeds == 0, timeout=2)
    await eventually(lambda: all(f.task.done() for f in feeds), timeout=2)


def _client_that_never_reads(url: str, path: str, token: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    return sock


async def test_a_client_that_never_reads_slows_no_one(db, teams, served, dispatcher) -> None:
    hub = hub_of(served)
    alpha = teams["alpha"]
    cid = await make_cluster(db, alpha.id)
    token = alpha.client.headers["Authorization"].removeprefix("Bearer ")
    stuck = _client_that_never_reads(served.url, f"/clusters/{cid}/events", token)
    try:
        await eventually(lambda: hub.subscribers == 1)
        async with open_stream(alpha.client, cid) as (_, events):
            await read_events(events, count=1)
            # ~8 MB of events: far more than the socket buffers between the server and
            # the stuck client can take, so its stream has to stop and wait.
            n = 2000
            await append(db, cid, n, dispatcher, per_tx=100, blob="x" * 4000)
            got = await read_events(events, count=n, timeout=30)
            assert [e.id for e in got] == list(range(2, n + 2))
            # The stuck client's stream stopped where its socket filled up: it waits there
            # (holding its position, not the events it has not taken).
            stuck_at, live_at = hub.positions(cid)
            assert live_at == n + 1 and stuck_at < n + 1
            stuck.close()
            await eventually(lambda: hub.subscribers == 1, timeout=2)
    finally:
        stuck.close()
    await eventually(lambda: hub.subscribers == 0 and hub.feeds == 0, timeout=2)
