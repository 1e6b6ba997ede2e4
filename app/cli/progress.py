"""Live progress of a cluster on standard error, fed with its events.

On a terminal: a panel redrawn in place (cluster status, GPU, hourly price, elapsed time,
a row per node) with bootstrap output scrolling above it. Elsewhere (a log, a pipe): a
line per status change and per output line.

Everything shown that came from the API is printed as plain text with control characters
replaced: a setup script's output cannot move the cursor, retitle the terminal or inject
rich markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from hangar_client import (
    Cluster,
    ClusterNotice,
    ClusterStatusChanged,
    Event,
    NodeOutput,
    NodeStatusChanged,
)
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from app.cli.text import NODE_HEADERS, elapsed, money, node_rows, printable

REFRESH_EVERY_S = 1.0  # at most one GET per second for prices and addresses

STYLES = {
    "ready": "bold green", "failed": "bold red", "terminating": "yellow",
    "terminated": "dim", "bootstrapping": "cyan", "starting": "cyan", "creating": "blue",
    "provisioning": "blue", "pending": "dim",
}


def status_text(status: object) -> Text:
    value = printable(str(status))
    return Text(value, style=STYLES.get(value, ""))


class Progress:
    """`with Progress(cluster, refresh) as p:` then `p.event(e)` for each event and
    `p.show(cluster)` for a newer state; `refresh()` fetches the cluster (prices and
    addresses are not in the events), called at most once a second."""

    def __init__(self, cluster: Cluster, refresh: Callable[[], Cluster] | None = None,
                 console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.cluster = cluster
        self.refresh = refresh
        self.refreshed_at = 0.0
        self.live: Live | None = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self.live = Live(self.render(), console=self.console, refresh_per_second=4,
                             get_renderable=self.render)
            self.live.start()
        else:
            self.line(Text.assemble("cluster ", self.cluster.name, " ", self.cluster.id, " ",
                                    status_text(self.cluster.status)))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()  # the last drawing stays on the screen

    def line(self, text: Text) -> None:
        self.console.print(text, soft_wrap=True)

    def show(self, cluster: Cluster) -> None:
        self.cluster = cluster
        if self.live is not None:
            self.live.refresh()

    def event(self, event: Event) -> None:
        if isinstance(event, NodeOutput):
            self.line(Text.assemble((f"node {event.node} │ ", "dim"), printable(event.line)))
            return
        if isinstance(event, ClusterNotice):
            where = "" if event.node is None else f"node {event.node}: "
            self.line(Text.assemble(("notice ", "yellow"), where, printable(event.message)))
        elif isinstance(event, NodeStatusChanged | ClusterStatusChanged):
            who = "cluster" if isinstance(event, ClusterStatusChanged) else f"node {event.node}"
            why = f" ({printable(event.reason)}: {printable(event.message)})" if event.reason else ""
            if self.live is None or event.reason:
                self.line(Text.assemble(who, " ", status_text(event.status), why))
            self.show(applied(self.cluster, event))
            self._refresh()

    def _refresh(self) -> None:
        if self.refresh is None or time.monotonic() - self.refreshed_at < REFRESH_EVERY_S:
            return
        self.refreshed_at = time.monotonic()
        try:
            self.show(self.refresh())
        except Exception:  # progress is a nicety: a failed refresh must not end the wait
            pass

    # --- drawing -------------------------------------------------------------------------

    def render(self) -> Group:
        c = self.cluster
        gpu = f"{len(c.nodes) or c.node_count or 0} × {c.gpu_count or 1} {c.gpu_type or '?'}"
        header = Text.assemble(
            ("cluster ", "bold"), (printable(c.name), "bold"), "  ", status_text(c.status),
            f"  {printable(gpu)}  {money(c.hourly_rate, '/h')}  ",
            (f"elapsed {elapsed(c.created_at)}", "dim"),
        )
        return Group(header, node_table(c))


def applied(cluster: Cluster, event: NodeStatusChanged | ClusterStatusChanged) -> Cluster:
    """The cluster as the event leaves it (until a refresh brings prices and addresses)."""
    change = {"status": event.status}
    if event.reason:
        change.update(reason=event.reason, message=event.message)
    if isinstance(event, ClusterStatusChanged):
        return replace(cluster, **change)
    nodes = [replace(n, **change) if n.index == event.node else n for n in cluster.nodes]
    return replace(cluster, nodes=nodes)


def node_table(cluster: Cluster) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in NODE_HEADERS:
        table.add_column(column)
    for row in node_rows(cluster):
        table.add_row(*(status_text(c) if i == 1 else Text(printable(c))
                        for i, c in enumerate(row)))
    return table
