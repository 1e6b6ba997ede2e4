"""The garbage-collector tuning every long-running process applies after start-up."""

from __future__ import annotations

import subprocess
import sys

from app.gctune import GEN0_THRESHOLD

PROBE = """
import gc
from app.gctune import tune_gc
before = gc.get_threshold()
tune_gc()
after, frozen = gc.get_threshold(), gc.get_freeze_count()
tune_gc()  # once per process: a second call changes nothing
print(before[0], after[0], after[1:] == before[1:], frozen > 1000, gc.get_freeze_count() == frozen)
"""


def test_tune_gc_freezes_start_up_and_raises_gen0_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["700", str(GEN0_THRESHOLD), "True", "True", "True"]
