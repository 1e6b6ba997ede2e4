"""Counting what a skip of the pod's output backlog drops: every line once, whether the skip
starts or lands inside a line too long to keep (workers/bootstrap_output.py: skip_to)."""

from __future__ import annotations

import pytest

from app.ssh.output import OutputLines
from workers.bootstrap_output import Skipped, skip_to

# A log of whole lines: "a\n" (0-1), "b\n" (2-3), a long line (4-103, newline at 103),
# "c\n" (104-105). Skips start at 2 (line start) or 50 (inside the long line, its start
# shown) and land at 104 (line start) or 70 (inside the long line).
CASES = [
    # start, mid_line, landing, newlines in between, line start, dropped
    (2, False, 104, 2, True, 2),  # "b", the long line
    (2, False, 70, 1, False, 2),  # "b", the long line (its start skipped)
    (50, True, 104, 1, True, 0),  # the long line's end: its start was shown
    (50, True, 70, 0, False, 0),  # further inside the same line
]


@pytest.mark.parametrize(("start", "mid", "landing", "newlines", "line_start", "dropped"), CASES)
def test_each_line_is_dropped_once(start, mid, landing, newlines, line_start, dropped) -> None:
    before = OutputLines(offset=start, mid_line=mid)
    after, (lines, nbytes) = skip_to(before, Skipped(landing, newlines, line_start))
    assert (lines, nbytes) == (dropped, landing - start)
    assert after.offset == after.read_offset == landing
    assert after.mid_line is not line_start
