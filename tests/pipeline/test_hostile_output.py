"""A setup's output is a stranger's bytes: whatever it prints (NUL, invalid UTF-8, control
characters, terminal escapes, binary, 50 MB), the node ends ready, its `node.output` lines
are valid bounded text, drops are counted exactly and announced at most once per node per
10 s, and none of it reaches a log line."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime

from tests.support.stack import events, wait_for

# What a line may not hold once it is an event: control characters other than tab.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


async def create(client, **fields) -> str:
    r = await client.post("/clusters", json={"name": "hostile", "gpu_type": "4090", **fields})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def notices(evs: list[dict], code: str, node: int) -> list[dict]:
    return [e["data"] for e in evs if e["type"] == "cluster.notice"
            and e["data"].get("code") == code and e["data"].get("node") == node]


async def test_nul_binary_and_control_characters_become_text(hangar, worker, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "canary-" + secrets.token_hex(8)
    setup = "\n".join([
        r"printf 'nul\000byte\n'",
        r"printf '\033[32mgreen\033[0m bell\007 del\177 c1\302\205\n'",
        r"printf 'bad utf8 \377\376 cut \342\230\n'",
        "head -c 8192 /dev/urandom",
        "echo",
        f"echo {canary}",
    ])
    cid = await create(hangar, setup=setup)
    body = await wait_for(hangar, cid, {"ready", "failed"})
    assert body["status"] == "ready", body
    lines = [e["data"]["line"] for e in await events(hangar, cid) if e["type"] == "node.output"]
    assert lines[:3] == ["nul\ufffdbyte", "green bell\ufffd del\ufffd c1\ufffd",
                         "bad utf8 \ufffd\ufffd cut \ufffd"]
    assert lines[-1] == canary
    assert all(not CONTROL.search(line) and len(line) <= 1000 + len(" [truncated]") + 1
               for line in lines)
    assert canary not in caplog.text, "output never reaches a log line"
    assert "Traceback" not in caplog.text


async def test_fifty_megabytes_are_skipped_not_read(hangar, worker, sim, caplog) -> None:
    """Node 0 prints 25 million lines at once, then 3,000 a second for 11 s; node 1 prints
    50 MB without a newline. Both end ready within the bootstrap timeout (20 s here)."""
    caplog.set_level(logging.DEBUG)
    canary = "canary-" + secrets.token_hex(8)
    setup = "\n".join([
        'if [ "$HANGAR_NODE_RANK" = 0 ]; then',
        "  yes | head -c 50000000",
        f"  for i in $(seq 1 11); do seq -f '{canary}-%g' 1 3000; sleep 1; done",
        "else",
        "  head -c 50000000 /dev/zero | tr '\\000' x",
        "  echo; echo end",
        "fi",
    ])
    cid = await create(hangar, nodes=2, setup=setup)
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    evs = await events(hangar, cid)
    shown = {n: [e["data"]["line"] for e in evs
                 if e["type"] == "node.output" and e["data"]["node"] == n] for n in (0, 1)}

    # Node 0: every line shown or counted as dropped, exactly.
    [summary] = notices(evs, "output_summary", 0)
    assert summary["lines"] == len(shown[0]) <= 10_000
    assert summary["lines"] + summary["dropped"] == 25_000_000 + 11 * 3000
    dropped = notices(evs, "output_dropped", 0)
    assert len(dropped) >= 2, "drops went on after the first notice"
    times = [datetime.fromisoformat(n["at"]) for n in dropped]
    assert all((b - a).total_seconds() >= 10 for a, b in zip(times, times[1:], strict=False))
    assert sum(n["dropped"] for n in dropped) <= summary["dropped"]

    # Node 1: the 50 MB line was skipped on the pod, not read; what follows it is shown.
    [summary] = notices(evs, "output_summary", 1)
    assert summary["skipped_bytes"] > 45_000_000
    assert shown[1][-1] == "end" and len(shown[1]) <= 5
    assert all(len(line) <= 1000 + len(" [truncated]") + 1 for line in shown[1])

    assert canary not in caplog.text
    assert "Traceback" not in caplog.text


async def test_a_long_line_printed_slowly_is_one_line(hangar, worker) -> None:
    """1.5 MB without a newline, 50 KB every 0.2 s: reads keep pace with it (no backlog to
    skip) and it crosses a step boundary (3 s here), yet it is shown as one cut line."""
    setup = "\n".join([
        "for i in $(seq 1 30); do head -c 50000 /dev/zero | tr '\\000' x; sleep 0.2; done",
        "echo; echo end",
    ])
    cid = await create(hangar, setup=setup)
    body = await wait_for(hangar, cid, {"ready", "failed"}, timeout=40)
    assert body["status"] == "ready", body
    lines = [e["data"]["line"] for e in await events(hangar, cid) if e["type"] == "node.output"]
    # The line's start is shown unless a read fell so far behind that it was skipped.
    assert lines in (["x" * 1000 + "… [truncated]", "end"], ["end"]), lines[:3]
