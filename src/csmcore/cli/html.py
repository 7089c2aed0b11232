"""The HTML form of a report: one self-contained page with plotly charts (extra ``[report]``).

The page embeds plotly's JavaScript once (no network, no external assets) and draws one chart per
declared chart function; a section declares its charts with :func:`chart`, next to the code that
computes it, and a section absent from a report draws nothing. Tables repeat the text report's
figures so the page reads without JavaScript too.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.io import to_html

__all__ = ["chart", "render_html"]

ChartMaker = Callable[[Mapping[str, Any]], Iterator[tuple[str, go.Figure]]]
_CHARTS: dict[str, ChartMaker] = {}


def chart(section: str) -> Callable[[ChartMaker], ChartMaker]:
    """Declare the charts of ``section``: the function yields ``(chart id, figure)`` pairs."""

    def declare(make: ChartMaker) -> ChartMaker:
        _CHARTS[section] = make
        return make

    return declare


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { border-bottom: 1px solid #ddd; padding: .25rem .75rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.chart { width: 100%; height: 420px; }
.note { color: #555; font-size: .9rem; }
"""


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        template="plotly_white",
    )
    return fig


@chart("volume")
def _volume(s: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure]]:
    weeks = s["by_week"]
    fig = go.Figure(go.Bar(x=list(weeks), y=list(weeks.values()), name="tickets"))
    yield "weekly-volume", _layout(fig, "Tickets created per week", "week starting", "tickets")


@chart("kpi")
def _kpi(s: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure]]:
    hist = s["first_reply_business_hours_histogram"]
    fig = go.Figure(go.Bar(x=list(hist), y=list(hist.values()), name="tickets"))
    yield (
        "first-reply-distribution",
        _layout(fig, "First reply time (business hours)", "first reply within", "tickets"),
    )


@chart("sla")
def _sla(s: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure]]:
    fig = go.Figure()
    for target, row in s["targets"].items():
        weeks = row["by_week"]
        fig.add_trace(
            go.Scatter(
                x=list(weeks),
                y=[100 * w["achievement_rate"] for w in weeks.values()],
                mode="lines+markers",
                name=target,
            )
        )
    fig.update_yaxes(range=[0, 100])
    yield (
        "sla-achievement",
        _layout(
            fig,
            "SLA achievement per week (cycles started that week)",
            "week starting",
            "achieved %",
        ),
    )


@chart("backlog")
def _backlog(s: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure]]:
    points = s["over_time"]
    fig = go.Figure(go.Scatter(x=list(points), y=list(points.values()), mode="lines", name="open"))
    yield "backlog", _layout(fig, "Open tickets (backlog) over time", "instant", "open tickets")


@chart("escalations")
def _escalations(s: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure]]:
    if not s["available"]:
        return
    weeks = list(s["by_week"])
    fig = go.Figure()
    for rule in s["by_rule"]:
        fig.add_trace(go.Bar(x=weeks, y=[s["by_week"][w].get(rule, 0) for w in weeks], name=rule))
    fig.update_layout(barmode="stack")
    yield "escalations", _layout(fig, "Escalations fired per week", "week starting", "firings")


@chart("loyalty")
def _loyalty(s: Mapping[str, Any]) -> Iterator[tuple[str, go.Figure]]:
    if not s["available"]:
        return
    weeks = s["points_by_week"]
    fig = go.Figure(go.Bar(x=list(weeks), y=list(weeks.values()), name="points"))
    yield (
        "points-granted",
        _layout(fig, "Loyalty points granted for SLA breaches per week", "week starting", "points"),
    )


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sla_table(s: Mapping[str, Any]) -> str:
    def rate(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f} %"

    rows = [
        [
            t,
            f"{r['achieved']:,}",
            f"{r['breached']:,}",
            f"{r['active'] + r['paused']:,}",
            rate(r["achievement_rate"]),
        ]
        for t, r in s["targets"].items()
    ]
    rows.append(
        ["all targets", f"{s['achieved']:,}", f"{s['breached']:,}", "", rate(s["achievement_rate"])]
    )
    return _table(rows, ["target", "achieved", "breached", "running", "achievement"])


def render_html(report: Mapping[str, Any]) -> str:
    """The report mapping (:func:`csmcore.cli.report.build_report`) as one HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>csmcore report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>csmcore report</h1>",
        f'<p class="note">{report["tickets"]:,} tickets from '
        f"{html.escape(str(report.get('source') or 'memory'))}, judged at "
        f"{html.escape(report['at'])}; dates in {html.escape(report['timezone'])}.</p>",
    ]
    sections = report["sections"]
    if "sla" in sections:
        parts.append("<h2>SLA achievement</h2>")
        parts.append(_sla_table(sections["sla"]))
    first = True
    for name, section in sections.items():
        make = _CHARTS.get(name)
        if make is None:
            continue
        for chart_id, fig in make(section):
            parts.append(
                to_html(
                    fig,
                    include_plotlyjs=bool(first),
                    full_html=False,
                    div_id=chart_id,
                    default_width="100%",
                    default_height="420px",
                    config={"responsive": True, "displaylogo": False},
                )
            )
            first = False
    parts.append("</body></html>")
    return "\n".join(parts)
