"""The text form of a report, drawn with rich tables from the report mapping."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["duration_text", "not_utf8", "render_text", "text_renderer"]

Renderer = Callable[[Console, Mapping[str, Any]], None]
_RENDERERS: dict[str, Renderer] = {}


def text_renderer(section: str) -> Callable[[Renderer], Renderer]:
    """Declare how the section ``section`` is printed (sections without one are skipped)."""

    def declare(render: Renderer) -> Renderer:
        _RENDERERS[section] = render
        return render

    return declare


def duration_text(value: float | None, *, days: bool = True) -> str:
    """Seconds as ``2d 3h``, ``4h 05m``, ``12m 30s``; ``-`` for None. ``days=False`` for
    business time, where a day of 24 hours means nothing: ``51h 00m``.

    >>> duration_text(183600), duration_text(183600, days=False), duration_text(750)
    ('2d 3h', '51h 00m', '12m 30s')
    """
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    total = round(abs(value))
    days_, rest = divmod(total, 86400) if days else (0, total)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days_:
        return f"{sign}{days_}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _counts(console: Console, counts: Mapping[str, int], unit: str = "") -> None:
    """A line ``  name: 1,234`` (then ``unit``) for each of ``counts``, printed as it is."""
    for name, n in counts.items():
        console.print(f"  {name}: {n:,}{unit}", markup=False)


def render_text(report: Mapping[str, Any], console: Console) -> None:
    """Print ``report`` (see :func:`csmcore.cli.report.build_report`) to ``console``."""
    console.print(
        f"[bold]csmcore report[/bold]  {report['tickets']:,} tickets, judged at {report['at']} "
        f"(dates in {report['timezone']})"
    )
    for name, section in report["sections"].items():
        render = _RENDERERS.get(name)
        if render is not None:
            render(console, section)


@text_renderer("import")
def _import(console: Console, s: Mapping[str, Any]) -> None:
    if not s["available"]:
        return
    console.print(
        f"\n[bold]Import[/bold]: {_count(s['rows'], 'row')}, {_count(s['tickets'], 'ticket')}, "
        f"{_count(s['events'], 'event')}; {_count(s['noop_rows'], 'no-op row')}, "
        f"{_count(s['rejected_rows'], 'row')} in rejected tickets"
    )
    for title in ("repairs", "noops", "rejects"):
        if s[title]:
            text = ", ".join(f"{k} {n:,}" for k, n in s[title].items())
            console.print(f"  {title}: {text}")
    for field, values in s["unmapped"].items():
        text = ", ".join(f"{v!r} {n:,}" for v, n in list(values.items())[:8])
        more = f" and {len(values) - 8} more" if len(values) > 8 else ""
        console.print(f"  not mapped, kept in the field {field!r}: {text}{more}", markup=False)
    for r in s["rejected"][:10]:
        where = "" if r["line"] is None else f"line {r['line']}: "
        ticket = r["ticket"] or "(no ticket id)"  # a row cut off before its id column
        console.print(f"  rejected {ticket}: {where}{r['message']}", markup=False)


@text_renderer("volume")
def _volume(console: Console, s: Mapping[str, Any]) -> None:
    table = Table(title="Volume", title_justify="left")
    table.add_column("channel")
    table.add_column("tickets", justify="right")
    for channel, n in s["by_channel"].items():
        table.add_row(escape(channel), f"{n:,}")
    console.print(table)
    weeks = s["by_week"]
    if weeks:
        busiest = max(weeks.items(), key=lambda kv: kv[1])
        console.print(
            f"  {_count(len(weeks), 'week')} with tickets, busiest starting {busiest[0]} "
            f"({_count(busiest[1], 'ticket')})"
        )


_TIMES = (
    ("first_reply", "first reply"),
    ("full_resolution", "resolution"),
    ("requester_wait", "requester wait"),
    ("agent_wait", "agent wait"),
)


@text_renderer("kpi")
def _kpi(console: Console, s: Mapping[str, Any]) -> None:
    table = Table(title="Times", title_justify="left")
    for column in ("metric", "clock", "tickets", "median", "mean", "p90", "not yet"):
        table.add_column(column, justify="left" if column in ("metric", "clock") else "right")
    for key, label in _TIMES:
        for clock in ("calendar", "business"):
            row = s[clock][key]
            wall = clock == "calendar"  # business seconds are not shown as 24-hour days
            table.add_row(
                label if clock == "calendar" else "",
                clock,
                f"{row['count']:,}",
                duration_text(row["median_seconds"], days=wall),
                duration_text(row["mean_seconds"], days=wall),
                duration_text(row["p90_seconds"], days=wall),
                f"{row['excluded']:,}",
            )
    console.print(table)
    parts = [f"one-touch {_rate(s['one_touch_rate'])}", f"reopened {_rate(s['reopen_rate'])}"]
    if s["csat_responses"]:
        parts.append(f"CSAT {_rate(s['csat'])} of {s['csat_responses']:,} ratings")
    console.print("  " + ", ".join(parts) + f" (of {s['solved']:,} solved tickets)")


@text_renderer("sla")
def _sla(console: Console, s: Mapping[str, Any]) -> None:
    table = Table(title="SLA achievement", title_justify="left")
    for column in ("target", "achieved", "breached", "active", "paused", "rate"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for target, row in s["targets"].items():
        table.add_row(
            escape(target),
            f"{row['achieved']:,}",
            f"{row['breached']:,}",
            f"{row['active']:,}",
            f"{row['paused']:,}",
            _rate(row["achievement_rate"]),
        )
    table.add_row(
        "all targets",
        f"{s['achieved']:,}",
        f"{s['breached']:,}",
        "",
        "",
        _rate(s["achievement_rate"]),
    )
    console.print(table)
    if s["top_breaches"]:
        top = Table(title="Top breaches (most overdue)", title_justify="left")
        for column in ("ticket", "target", "breached at", "overdue (target's clock)"):
            # the instant whole, offset included: the other columns wrap first
            top.add_column(column, no_wrap=column == "breached at")
        for b in s["top_breaches"]:
            top.add_row(
                escape(b["ticket"]),
                escape(b["target"]),
                b["breached_at"],
                # the target's own clock: business seconds for a business-time target
                duration_text(b["overdue_seconds"], days=False),
            )
        console.print(top)


@text_renderer("backlog")
def _backlog(console: Console, s: Mapping[str, Any]) -> None:
    buckets = ", ".join(f"{k}: {n:,}" for k, n in s["age_buckets"].items())
    console.print(
        f"\n[bold]Backlog[/bold]: {s['open']:,} open; age p50 "
        f"{duration_text(s['age_p50_seconds'])}, p90 {duration_text(s['age_p90_seconds'])} "
        f"({buckets})"
    )


@text_renderer("made_sla")
def _made_sla(console: Console, s: Mapping[str, Any]) -> None:
    if not s["compared"]:
        return
    console.print(
        f"\n[bold]Help desk verdict vs csmcore[/bold]: {s['compared']:,} tickets carry the "
        f"export's made_sla; csmcore agrees on {s['agree']:,} ({_rate(s['agreement_rate'])})"
    )
    _counts(console, s["table"])


@text_renderer("escalations")
def _escalations(console: Console, s: Mapping[str, Any]) -> None:
    if not s["available"]:
        return
    console.print(f"\n[bold]Escalations[/bold]: {s['fired']:,} fired")
    _counts(console, s["by_rule"])


@text_renderer("loyalty")
def _loyalty(console: Console, s: Mapping[str, Any]) -> None:
    if not s["available"]:
        return
    console.print(
        f"\n[bold]Service recovery[/bold]: {s['points']:,} points granted to "
        f"{s['members']:,} customers in {s['grants']:,} grants"
    )
    _counts(console, s["points_by_target"], " points")


@text_renderer("conventions")
def _conventions(console: Console, s: Mapping[str, Any]) -> None:
    console.print("\n[bold]Conventions[/bold]")
    console.print(f"  judged at {s['judged_at']}: {s['judged_at_rule']}", markup=False)
    console.print(f"  policy: {s['policy']}; targets: {', '.join(s['targets'])}", markup=False)
    console.print(f"  calendar: {s['calendar']}", markup=False)
    for note in s["notes"]:
        console.print(f"  - {note}", markup=False)


def not_utf8(path: Path, err: UnicodeDecodeError) -> str:
    """The one-line error for a file that is not UTF-8: ``<path>: line <n>: is not UTF-8 text
    (byte 0xe9: invalid continuation byte)``. ``err`` comes from a decoder that read the file
    in chunks, so its position is not the file's: the file is read again, as bytes, to find
    the line (only when it failed)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with path.open("rb") as raw:
            for chunk in iter(lambda: raw.read(1 << 16), b""):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as bad:  # bad.object: the decoder's pending bytes + chunk
                    line += bad.object.count(b"\n", 0, bad.start)
                    byte = bad.object[bad.start]
                    return (
                        f"{path}: line {line}: is not UTF-8 text (byte 0x{byte:02x}: {bad.reason})"
                    )
                line += chunk.count(b"\n")
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as bad:  # the file ends inside a character (cut short)
                byte = bad.object[bad.start]
                return f"{path}: line {line}: is not UTF-8 text (byte 0x{byte:02x}: {bad.reason})"
    except (OSError, UnicodeDecodeError):
        pass
    return f"{path}: is not UTF-8 text ({err.reason})"
