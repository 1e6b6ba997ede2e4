"""A node's setup output, bounded: how much one read takes and a node may show, the backlog
skipped unread on the pod when a script prints faster than it can be shown, the pause
between reads, and the recording of one read (its `node.output` events, `output_dropped`
and `output_summary` notices, the offset, and the end of the script with its exit code).
The read loop itself is `workers/bootstrap.py`'s."""

from __future__ import annotations

import asyncio
import uuid
from typing import NamedTuple

from app.db.models import Node
from app.domain.status import NodeStatus, Reason
from app.services.state import ClusterTx
from app.ssh.bootstrap import REMOTE_DIR, BootstrapSession, Progress
from app.ssh.output import OutputLines
from workers.context import Work

N = NodeStatus

MAX_LINES_PER_READ = 200
MIN_READ_GAP = 0.25  # with MAX_LINES_PER_READ: at most 800 lines/s per node
MAX_LINES_PER_NODE = 10_000
MAX_LINE_CHARS = 1000
READ_BYTES = 65536  # one read of the remote log
# Output beyond the limits is skipped, not read slowly: when a read finds more waiting than
# it takes and either showed fewer lines than it read (or the node has shown all it may),
# or more than MAX_BACKLOG_BYTES wait, everything but the newest KEEP_BYTES (from a line
# start) is skipped, counted on the pod without being sent. A script printing 50 MB ends
# ready in the time it takes to print, not in 800 reads.
MAX_BACKLOG_BYTES = 1024 * 1024
KEEP_BYTES = 16 * 1024
NOTICE_EVERY_S = 10.0  # `output_dropped` notices: at most one per node this often
# A quiet script is read again after 0.05, 0.1, 0.2, 0.4, 0.8, then every 1 s: a short setup
# finishes without a job sitting out a fixed quarter second, a long one costs a read or two more.
FIRST_READ_INTERVAL = 0.05


# One round trip, run on the pod over the whole backlog (no byte of it is sent): the log's
# size; unless more than max(keep, least) bytes wait after `off`, nothing; else the offset
# just past the first newline in the last `keep` bytes (the newest lines, from a line
# start; the end of the log when there is none), the newlines from `off` to it, and 1 if
# that offset is a line start (the byte before it is a newline), else 0.
_SKIP_COMMAND = r"""f=@LOG@; off=@OFF@; keep=@KEEP@; least=@LEAST@
[ -f "$f" ] || { echo "$off 0"; exit 0; }
size=$(wc -c < "$f")
left=$((size - off))
if [ "$left" -le "$keep" ] || [ "$left" -le "$least" ]; then echo "$off 0"; exit 0; fi
target=$((size - keep))
adv=$(tail -c +$((target + 1)) "$f" | head -c "$keep" | head -n 1 | wc -c)
new=$((target + adv))
echo "$new $(tail -c +$((off + 1)) "$f" | head -c $((new - off)) | wc -l)" \
  "$(tail -c +$new "$f" | head -c 1 | wc -l)"
"""


class Skipped(NamedTuple):
    offset: int  # where reading goes on
    lines: int  # newlines skipped over
    line_start: bool  # `offset` starts a line (else it is inside one, to be read unseen)


async def skip_backlog(session: BootstrapSession, offset: int, *, keep: int,
                       least: int) -> Skipped | None:
    """Skip the log from `offset` to the newest `keep` bytes, if more than `least` bytes
    wait. Returns where reading goes on, or None (nothing skipped)."""
    command = (_SKIP_COMMAND.replace("@LOG@", f'"{REMOTE_DIR}/output.log"')
               .replace("@OFF@", str(offset)).replace("@KEEP@", str(keep))
               .replace("@LEAST@", str(least)))
    status, out = await session.run(command)
    try:
        new, count, line_start = (int(x) for x in out.split())
    except ValueError:
        return None
    if status != 0 or new <= offset:
        return None
    return Skipped(new, count, line_start == 1)


def skip_to(lines: OutputLines, skip: Skipped) -> tuple[OutputLines, tuple[int, int]]:
    """Reading goes on where `skip` landed: the new line splitter and (lines dropped, bytes
    skipped). A line counts as dropped once: one whose start was skipped (the skip lands
    inside it) counts; the newline ending the line `lines` was inside (its start was shown,
    or counted when an earlier skip landed in it) does not."""
    dropped = skip.lines + (0 if skip.line_start else 1) - (1 if lines.mid_line else 0)
    after = OutputLines(offset=skip.offset, max_chars=MAX_LINE_CHARS,
                        mid_line=not skip.line_start)
    return after, (dropped, skip.offset - lines.offset)


async def resume(session: BootstrapSession, offset: int) -> tuple[OutputLines, Progress]:
    """A step's first read, from `offset` and the byte before it, which says whether `offset`
    is inside a line too long to keep (a newline before it: no). Same round trip."""
    if offset == 0:
        return OutputLines(max_chars=MAX_LINE_CHARS), await session.read(0, READ_BYTES)
    p = await session.read(offset - 1, READ_BYTES + 1)
    lines = OutputLines(offset=offset, max_chars=MAX_LINE_CHARS,
                        mid_line=p.data[:1] not in (b"\n", b""))
    return lines, Progress(p.data[1:], p.next_offset, p.exit_code, p.complete)


def record(
    w: Work, node_id: uuid.UUID, offset: int, done: int, texts: list[str],
    skipped: tuple[int, int], progress: Progress, pin: str | None, tx: ClusterTx,
) -> tuple[bool, bool, bool]:
    """Under the cluster lock: one read's lines (`offset` to `done`, `skipped` = lines and
    bytes skipped unread within it), and the end if it came. Returns (stop, go_on, capped):
    stop reading, whether the job goes on with the node, and whether the node has shown all
    the lines it may."""
    node = tx.node(node_id)
    if node is None or node.status != N.BOOTSTRAPPING or node.output_offset != offset:
        return True, node is not None, False  # deleted, failed, or another job got here first
    node.host_key = node.host_key or pin
    _emit(tx, node, texts, *skipped, final=progress.complete)
    node.output_offset = done
    capped = node.output_lines >= MAX_LINES_PER_NODE
    if progress.complete:
        node.exit_code = progress.exit_code
        if progress.exit_code == 0:
            tx.set_node_status(node, N.READY)
            return True, False, capped
        tx.fail_node(node, Reason.BOOTSTRAP_FAILED,
                     f"setup exited with status {progress.exit_code}")
        return True, True, capped  # its teardown, now
    # This job keeps reading: only the reconciler's deadline moves on.
    tx.check_again(node, w.settings.reconcile_grace_s, wake=False)
    return False, False, capped


async def pause(data: bytes, interval: float) -> float:
    """Wait before the next read: back off while the log is quiet; while it is busy, read at
    most every MIN_READ_GAP s, which with MAX_LINES_PER_READ bounds lines per second."""
    if data:
        await asyncio.sleep(MIN_READ_GAP)
        return FIRST_READ_INTERVAL
    await asyncio.sleep(interval)
    return min(interval * 2, 1.0)


def _emit(tx: ClusterTx, node: Node, texts: list[str], skipped_lines: int = 0,
          skipped_bytes: int = 0, *, final: bool = False) -> None:
    """Bounded `node.output` events (per read and per node), counting what is dropped.

    Drops are announced by an `output_dropped` notice (the lines dropped and bytes skipped
    since the previous one) at most once per node every NOTICE_EVERY_S, and, if any output
    was dropped, by an `output_summary` notice with the totals when the script ends."""
    room = max(min(MAX_LINES_PER_READ, MAX_LINES_PER_NODE - node.output_lines), 0)
    for text in texts[:room]:
        tx.event("node.output", {"node": node.index, "line": text})
    shown = min(len(texts), room)
    node.output_lines += shown
    node.output_dropped += len(texts) - shown + skipped_lines
    node.output_skipped_bytes += skipped_bytes
    lines = node.output_dropped - node.output_noticed_lines
    nbytes = node.output_skipped_bytes - node.output_noticed_bytes
    last = node.output_notice_at
    if (lines or nbytes) and (last is None or (tx.now - last).total_seconds() >= NOTICE_EVERY_S):
        unread = f"{nbytes} bytes skipped unread" if nbytes else ""
        # Bytes alone: the rest of a line too long to keep (or a backlog ending in one).
        what = (f"dropped {lines} output lines of node {node.index}"
                + (f", {unread}" if unread else "")) if lines else (
            f"node {node.index}'s output: {unread}, the rest of a line longer than "
            f"{READ_BYTES // 1024} KiB")
        tx.notice(f"{what} (limits: {MAX_LINES_PER_READ} lines per read, "
                  f"{MAX_LINES_PER_NODE} per node, {MAX_LINE_CHARS} characters per line; "
                  f"at most one such notice per {NOTICE_EVERY_S:g} s)",
                  node=node, code="output_dropped", dropped=lines, skipped_bytes=nbytes)
        node.output_notice_at = tx.now
        node.output_noticed_lines, node.output_noticed_bytes = (
            node.output_dropped, node.output_skipped_bytes)
    if final and (node.output_dropped or node.output_skipped_bytes):
        tx.notice(f"node {node.index}'s setup output: {node.output_lines} lines shown, "
                  f"{node.output_dropped} dropped ({node.output_skipped_bytes} bytes skipped "
                  "unread)", node=node, code="output_summary", lines=node.output_lines,
                  dropped=node.output_dropped, skipped_bytes=node.output_skipped_bytes)
