"""Plain-text helpers of the client commands (no rich: `ls` and `get` print without it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """Text from the API made safe for a terminal: control characters (escape sequences,
    carriage returns) replaced, so a setup script's output cannot move the cursor or
    retitle the window."""
    return CONTROL.sub("\N{REPLACEMENT CHARACTER}", "" if text is None else str(text))


def elapsed(since: datetime | None) -> str:
    if since is None:
        return "-"
    seconds = max(int((datetime.now(UTC) - since).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    if hours >= 48:
        return f"{hours // 24}d"
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def money(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"${value:,.2f}{unit}"


def columns(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart, like `ps` or `kubectl get`."""
    cells = [[printable(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


NODE_HEADERS = ("NODE", "STATUS", "ADDRESS", "DATA CENTER", "$/H", "NOTE")


def node_rows(cluster) -> list[list[str]]:
    rows = []
    for n in cluster.nodes:
        address = f"{n.public_ip}:{n.ssh_port}" if n.public_ip and n.ssh_port else "-"
        note = f"{n.reason}: {n.message}" if n.reason else ""
        rows.append([str(n.index), str(n.status), address, n.data_center_id or "-",
                     money(n.hourly_rate), note])
    return rows


def summary(cluster) -> str:
    """A cluster as `get` prints it."""
    lines = [
        f"{cluster.name}  {cluster.id}  {cluster.status}  "
        f"{cluster.node_count or len(cluster.nodes)} × {cluster.gpu_count} {cluster.gpu_type}  "
        f"{money(cluster.hourly_rate, '/h')}  accrued {money(cluster.accrued_cost)}"
    ]
    if cluster.reason:
        lines.append(f"reason: {cluster.reason}: {cluster.message}")
    if cluster.nodes:
        lines.append(columns(NODE_HEADERS, node_rows(cluster)))
    lines += [f"node {n.index}: {n.ssh_command}" for n in cluster.nodes if n.ssh_command]
    return "\n".join(printable(line) if "\n" not in line else line for line in lines)
