"""`hangar usage` and `hangar team`: what the team spends and may spend, over HTTP through
`hangar_client` (the same fast path and rules as `hangar clusters …`: results on standard
output, errors on standard error, exit 0 / 1 / 2, nothing of the server loaded)."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from app.cli.common import connect, explained, out, print_json
from app.cli.text import columns, money, printable

if TYPE_CHECKING:
    from hangar_client import Team, Usage

USAGE_HELP = ("Your team's cost and GPU-hours over a window (UTC; default this month), per "
              "day, cluster or GPU type.")
TEAM_HELP = ("Your team: its limits and where each comes from, what runs now, hourly "
             "spend, month-to-date cost and budget left.")
GROUPS = ("day", "cluster", "gpu_type")
KEY_HEADERS = {"day": ("DAY",), "cluster": ("CLUSTER", "NAME"), "gpu_type": ("GPU TYPE",)}


def window_edge(value: str) -> str:
    """`--from` / `--to`: an ISO 8601 date or date-time (no zone: UTC), sent the way the
    API reads it; anything else is a usage error (exit 2) before any request."""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date or time (2026-11-01, 2026-11-01T12:00Z)"
        ) from None


# --- usage ---------------------------------------------------------------------------------


@explained
def usage(args: argparse.Namespace) -> int:
    with connect() as hangar:
        if args.csv:
            sys.stdout.write(hangar.usage_csv(args.start, args.end, args.group_by))
            sys.stdout.flush()
            return 0
        report = hangar.get_usage(args.start, args.end, args.group_by)
    if args.json:
        print_json(report.raw)
    else:
        out(usage_table(report))
    return 0


def moment(when: datetime | None) -> str:
    if when is None:
        return "?"
    if (when.hour, when.minute, when.second, when.microsecond) == (0, 0, 0, 0):
        return when.strftime("%Y-%m-%d")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def hours(value: float) -> str:
    return f"{value:,.2f}"


def usage_table(report: Usage) -> str:
    """The report as a person reads it: the window, a row per group, the total last."""
    keys = KEY_HEADERS.get(report.group_by, (report.group_by.upper(),))
    figures = ("COST", "GPU-HOURS", "NODE-HOURS")
    rows: list[list[Any]] = []
    for item in report.items:
        key = [item.key, item.cluster_name or "-"] if len(keys) == 2 else [item.key]
        rows.append([*key, money(item.cost), hours(item.gpu_hours), hours(item.node_hours)])
    total = report.total
    rows.append(["TOTAL", *([""] * (len(keys) - 1)), money(total.cost),
                 hours(total.gpu_hours), hours(total.node_hours)])
    per = {"day": "per day", "cluster": "per cluster", "gpu_type": "per GPU type"}.get(
        report.group_by, f"per {report.group_by}")
    title = (f"usage from {moment(report.start)} to {moment(report.end)} (UTC, the end "
             f"excluded), {per}")
    right = range(len(keys), len(keys) + len(figures))
    return title + "\n" + columns((*keys, *figures), rows, right=tuple(right))


# --- team ----------------------------------------------------------------------------------


@explained
def team(args: argparse.Namespace) -> int:
    with connect() as hangar:
        mine = hangar.get_team()
    if args.json:
        print_json(mine.raw)
    else:
        out(team_text(mine))
    return 0


def limit_value(name: str, value: float | None) -> str:
    if value is None:
        return "none"
    if "spend" in name:
        return money(value, "/h")
    if "budget" in name or "cost" in name:
        return money(value)
    return f"{value:g}"


def team_text(t: Team) -> str:
    live = (f"{t.live_clusters if t.live_clusters is not None else '?'} clusters, "
            f"{t.live_nodes if t.live_nodes is not None else '?'} nodes, "
            f"{money(t.hourly_spend, '/h')}")
    budget = ("none" if t.monthly_budget is None
              else f"{money(t.monthly_budget)}, {money(t.budget_left)} left")
    facts = [("live now", live), ("month to date", money(t.month_to_date_cost)),
             ("monthly budget", budget)]
    width = max(len(label) for label, _ in facts)
    return "\n".join([
        printable(f"team {t.name}" + (f", {t.month} (UTC)" if t.month else "")),
        *(f"{label.ljust(width)}  {printable(value)}" for label, value in facts),
        "",
        columns(("LIMIT", "VALUE", "SOURCE"), [
            [name, limit_value(name, lim.value), lim.source or "-"]
            for name, lim in t.limits.items()
        ]),
    ])


# --- arguments -----------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """`usage` and `team` on the top-level parser of the client commands."""
    p = commands.add_parser("usage", help=USAGE_HELP, description=USAGE_HELP)
    p.set_defaults(run=usage)
    p.add_argument("--from", dest="start", type=window_edge, metavar="DATE",
                   help="Start of the window: 2026-11-01 or 2026-11-01T12:00Z (default: the "
                   "start of this month).")
    p.add_argument("--to", dest="end", type=window_edge, metavar="DATE",
                   help="End of the window, excluded (default: the end of --from's month).")
    p.add_argument("--group-by", choices=GROUPS, default="day",
                   help="One row per day (UTC), cluster or GPU type (day).")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="Print the API's CSV.")
    fmt.add_argument("--json", action="store_true",
                     help="Print the API's JSON (grouped by cluster: every page's items in "
                     "one document).")

    p = commands.add_parser("team", help=TEAM_HELP, description=TEAM_HELP)
    p.set_defaults(run=team)
    p.add_argument("--json", action="store_true", help="Print the API's JSON.")
