"""The figures of ``csmcore report``: one JSON-safe mapping, built by registered sections.

A report is computed from the imported tickets, the SLA book, the instant it is taken at and the
time zone its dates are shown in (a :class:`ReportInput`). Each section is a function declared
once with :func:`report_section`; :func:`build_report` runs them in their declared order and
returns::

    {"schema": "csmcore.report/1", "at": "...", "timezone": "...", "tickets": n,
     "sections": {"<name>": {...}, ...}}

The keys of each section are documented in ``docs/report.md`` (the JSON schema of ``--json``);
the text and HTML outputs render the same mapping, so the three never disagree.

>>> from datetime import datetime, timezone
>>> from csmcore.tickets import Ticket
>>> from csmcore.cli.policy_file import default_book, default_calendar
>>> t, _ = Ticket.create(at=datetime(2025, 1, 6, 9, tzinfo=timezone.utc), ticket_id="T1",
...                      created_by="requester", channel="email", priority="high",
...                      requester="ann")
>>> book = default_book(default_calendar("UTC"))
>>> report = build_report(ReportInput(tickets=[t], book=book,
...                                   at=datetime(2025, 1, 7, 9, tzinfo=timezone.utc)))
>>> report["sections"]["sla"]["targets"]["first_reply"]["breached"]
1
"""

from __future__ import annotations

import operator
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any

import attrs

from csmcore._time import resolve_zone
from csmcore.errors import ValidationError
from csmcore.escalation import Firing
from csmcore.kpi import (
    DURATION_METRICS,
    DurationSummary,
    KpiAggregator,
    TicketMetrics,
    ticket_metrics,
)
from csmcore.loyalty import LedgerEntry
from csmcore.sla import SlaBook, SlaResults, SlaState
from csmcore.tickets import Merged, Status, Ticket
from csmcore.tickets.importing import ImportReport

__all__ = [
    "SCHEMA",
    "ReportInput",
    "build_report",
    "distribution",
    "file_line",
    "percentile",
    "report_section",
    "report_sections",
    "seconds",
    "week_start",
]

SCHEMA = "csmcore.report/1"
"""The schema name of the report mapping (and of ``--json``); a change of meaning bumps it."""


@attrs.frozen(kw_only=True)
class ReportInput:
    """What a report is computed from.

    ``tickets`` are the imported tickets; ``book`` judges their SLAs; ``at`` is the instant the
    report is taken at (targets still running are judged as they stand then); ``timezone``
    (an IANA name) is the zone of the dates shown and of weekly buckets; ``import_report`` the
    importer's accounting when the tickets came from an export, whose rows are numbered from 1
    after ``header_lines`` lines: the file line of row ``r`` is ``row_lines[r - 1]`` when the
    importer recorded it (see :class:`~csmcore.cli.importers.ImportOptions`), else
    ``r + header_lines``. ``firings`` (escalation
    firings) and ``grants`` (loyalty ledger entries of service recovery) are shown when given;
    ``policy_source`` names where the book came from (a file name; None: the built-in default).
    """

    tickets: Sequence[Ticket]
    book: SlaBook
    at: datetime
    timezone: str = "UTC"
    import_report: ImportReport | None = None
    source: str | None = None
    format: str | None = None
    header_lines: int = 1
    row_lines: Sequence[int] = ()
    firings: Sequence[Firing] | None = None
    grants: Sequence[LedgerEntry] | None = None
    policy_source: str | None = None
    _results: list[SlaResults] = attrs.field(init=False, eq=False, repr=False, factory=list)
    _metrics: list[TicketMetrics] = attrs.field(init=False, eq=False, repr=False, factory=list)

    @property
    def zone(self) -> tzinfo:
        """The zone of :attr:`timezone` (an IANA name or a fixed offset such as ``"+05:30"``)."""
        return resolve_zone(self.timezone)

    def results(self) -> list[SlaResults]:
        """Each ticket's SLA results at :attr:`at`, computed once and shared by the sections."""
        if len(self._results) != len(self.tickets):
            self._results.clear()
            self._results.extend(self.book.evaluate(t, self.at) for t in self.tickets)
        return self._results

    def metrics(self) -> list[TicketMetrics]:
        """Each ticket's :class:`~csmcore.kpi.TicketMetrics` at :attr:`at` (business-time twins
        in the book's default calendar), computed once and shared by the sections."""
        if len(self._metrics) != len(self.tickets):
            self._metrics.clear()
            calendar = self.book.calendar
            self._metrics.extend(
                ticket_metrics(t, max(self.at, t.created_at), calendar=calendar)
                for t in self.tickets
            )
        return self._metrics


Section = Callable[[ReportInput], Mapping[str, Any]]


@attrs.frozen
class _Declared:
    name: str
    order: int
    compute: Section


_SECTIONS: dict[str, _Declared] = {}


def report_section(name: str, *, order: int) -> Callable[[Section], Section]:
    """Declare a report section computed by the decorated function, shown in ``order``.

    Raises :class:`~csmcore.errors.ValidationError` for a name already declared.
    """

    def declare(compute: Section) -> Section:
        if name in _SECTIONS and _SECTIONS[name].compute is not compute:
            raise ValidationError(f"a report section named {name!r} is already declared")
        _SECTIONS[name] = _Declared(name, order, compute)
        return compute

    return declare


def report_sections() -> list[str]:
    """The declared section names, in report order."""
    return [d.name for d in sorted(_SECTIONS.values(), key=lambda d: (d.order, d.name))]


def build_report(data: ReportInput) -> dict[str, Any]:
    """The report mapping of ``data`` (see the module documentation).

    Tickets created after ``data.at`` did not exist at the instant judged: they are left out of
    every section, and the others are taken as they stood then (:meth:`Ticket.as_of`: their
    priority, fields such as ``made_sla``); the ``import`` section still accounts for every row
    read.
    """
    read = data
    existing = [t.as_of(data.at) for t in data.tickets if t.created_at <= data.at]
    unchanged = len(existing) == len(data.tickets) and all(
        map(operator.is_, existing, data.tickets)
    )
    if not unchanged:
        data = attrs.evolve(data, tickets=existing)
    sections = {
        name: dict(_SECTIONS[name].compute(read if name == "import" else data))
        for name in report_sections()
    }
    return {
        "schema": SCHEMA,
        "at": data.at.astimezone(data.zone).isoformat(),
        "timezone": data.timezone,
        "source": data.source,
        "format": data.format,
        "tickets": len(data.tickets),
        "sections": sections,
    }


# -- helpers -------------------------------------------------------------------------------------


def seconds(value: timedelta) -> float:
    """A duration as seconds (the unit of every duration in the report)."""
    return value.total_seconds()


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of sorted ``values``, linear between closest ranks
    (numpy's default, method 7 of Hyndman & Fan 1996); None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    position = (len(values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def file_line(row: int | None, row_lines: Sequence[int], header_lines: int) -> int | None:
    """The file line of data row ``row`` (1-based): ``row_lines[row - 1]`` when recorded, else
    ``row + header_lines``; None for None."""
    if row is None:
        return None
    if 0 < row <= len(row_lines):
        return row_lines[row - 1]
    return row + header_lines


def week_start(at: datetime, zone: tzinfo) -> str:
    """The ISO date of the Monday starting the week of ``at`` in ``zone``."""
    local = at.astimezone(zone).date()
    return (local - timedelta(days=local.weekday())).isoformat()


def distribution(values: list[float]) -> dict[str, Any]:
    """count, mean, median and p90 of ``values`` (sorted in place); None figures when empty."""
    values.sort()
    return {
        "count": len(values),
        "mean": statistics.fmean(values) if values else None,
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
    }


# -- the built-in sections ----------------------------------------------------------------------


_UNMAPPED_FIELDS = ("activity", "import.state", "import.priority")
"""The fields the importers keep what they could not map in: activity names the format does not
list (``activity``), unknown states and priorities (``import.state``, ``import.priority``)."""


def _unmapped(tickets: Sequence[Ticket]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {name: Counter() for name in _UNMAPPED_FIELDS}
    for ticket in tickets:
        for event in ticket.events:
            changes = getattr(event, "changes", None) or getattr(event, "fields", None)
            if not isinstance(changes, Mapping):
                continue
            for name in _UNMAPPED_FIELDS:
                value = changes.get(name)
                if isinstance(value, str):
                    counts[name][value] += 1
    return {name: dict(c.most_common()) for name, c in counts.items() if c}


@report_section("import", order=0)
def _import(data: ReportInput) -> Mapping[str, Any]:
    report = data.import_report
    if report is None:
        return {"available": False}
    return {
        "unmapped": _unmapped(data.tickets),
        "available": True,
        "rows": report.rows,
        "tickets": report.tickets,
        "events": report.events,
        "event_rows": report.event_rows,
        "noop_rows": report.noop_rows,
        "rejected_rows": report.rejected_rows,
        "repairs": dict(report.repairs),
        "noops": dict(report.noops),
        "rejects": dict(report.rejects),
        "rejected": [
            {
                "ticket": r.ticket_id,
                "reason": r.reason.value,
                "line": file_line(r.row, data.row_lines, data.header_lines),
                "message": r.message,
            }
            for r in report.rejected[:50]
        ],
    }


@report_section("volume", order=10)
def _volume(data: ReportInput) -> Mapping[str, Any]:
    zone = data.zone
    weekly: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    priorities: Counter[str] = Counter()
    for t in data.tickets:
        weekly[week_start(t.created_at, zone)] += 1
        channels[str(t.channel)] += 1
        priorities[str(t.priority)] += 1
    return {
        "tickets": len(data.tickets),
        "by_week": dict(sorted(weekly.items())),
        "by_channel": dict(channels.most_common()),
        "by_priority": dict(priorities.most_common()),
    }


def _summary(d: DurationSummary) -> dict[str, Any]:
    def sec(v: timedelta | None) -> float | None:
        return None if v is None else seconds(v)

    return {
        "count": d.count,
        "excluded": d.excluded,
        "mean_seconds": sec(d.mean),
        "median_seconds": sec(d.median),
        "p90_seconds": sec(d.percentiles.get(90.0)),
    }


_FRT_BINS = (0.25, 0.5, 1, 2, 4, 8, 24, 48)  # hours: the edges of the first-reply histogram


@report_section("kpi", order=20)
def _kpi(data: ReportInput) -> Mapping[str, Any]:
    """Ticket metrics and KPIs (csmcore.kpi, conventions in docs/kpi-reference.md)."""
    metrics = data.metrics()
    figures = ("csat", "ces", "touch", "reopens")
    wall = KpiAggregator(figures=figures, percentiles=(90,)).update(metrics).total()
    business = KpiAggregator(figures=(), business=True, percentiles=(90,)).update(metrics).total()
    hist = [0] * (len(_FRT_BINS) + 1)
    for m in metrics:
        if m.first_reply_business is not None:
            hours = seconds(m.first_reply_business) / 3600
            hist[sum(1 for edge in _FRT_BINS if hours >= edge)] += 1
    labels = (
        [f"< {_FRT_BINS[0]:g} h"]
        + [f"{a:g}-{b:g} h" for a, b in pairwise(_FRT_BINS)]
        + [f">= {_FRT_BINS[-1]:g} h"]
    )
    return {
        "calendar": {name: _summary(wall.durations[name]) for name in DURATION_METRICS},
        "business": {name: _summary(business.durations[name]) for name in DURATION_METRICS},
        "csat": wall.csat,
        "csat_responses": wall.csat_responses,
        "ces": wall.ces,
        "ces_responses": wall.ces_responses,
        "solved": wall.solved,
        "one_touch_rate": wall.one_touch_rate,
        "two_touch_rate": wall.two_touch_rate,
        "reopen_rate": wall.reopen_rate,
        "first_reply_business_hours_histogram": dict(zip(labels, hist, strict=True)),
    }


@report_section("sla", order=30)
def _sla(data: ReportInput) -> Mapping[str, Any]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    weekly: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    breaches: list[tuple[timedelta, str, str, datetime]] = []
    zone = data.zone
    for ticket, results in zip(data.tickets, data.results(), strict=True):
        for status in results:
            counts[status.target][status.state.value] += 1
            if status.state in (SlaState.ACHIEVED, SlaState.BREACHED):
                week = week_start(status.started_at, zone)
                weekly[status.target][week][status.state.value] += 1
            if status.state is SlaState.BREACHED and status.breached_at is not None:
                breaches.append((-status.remaining, ticket.id, status.target, status.breached_at))
    targets: dict[str, Any] = {}
    achieved_all = breached_all = 0
    for target, c in counts.items():
        achieved, breached = c["achieved"], c["breached"]
        achieved_all += achieved
        breached_all += breached
        judged = achieved + breached
        targets[target] = {
            "achieved": achieved,
            "breached": breached,
            "active": c["active"],
            "paused": c["paused"],
            "achievement_rate": achieved / judged if judged else None,
            "by_week": {
                week: {
                    "achieved": w["achieved"],
                    "breached": w["breached"],
                    "achievement_rate": w["achieved"] / (w["achieved"] + w["breached"]),
                }
                for week, w in sorted(weekly[target].items())
            },
        }
    breaches.sort(key=lambda b: (-b[0], b[1], b[2]))
    judged_all = achieved_all + breached_all
    return {
        "targets": targets,
        "achieved": achieved_all,
        "breached": breached_all,
        "achievement_rate": achieved_all / judged_all if judged_all else None,
        "top_breaches": [
            {
                "ticket": ticket_id,
                "target": target,
                "breached_at": at.astimezone(zone).isoformat(),
                "overdue_seconds": seconds(over),
            }
            for over, ticket_id, target, at in breaches[:10]
        ],
    }


_OPEN = frozenset({Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD})


def _open_spans(ticket: Ticket) -> Iterator[tuple[datetime, datetime | None]]:
    """The spans during which ``ticket`` was open (new, open, pending or on hold)."""
    since: datetime | None = None
    for event in ticket.events:
        new = Status.CLOSED if isinstance(event, Merged) else getattr(event, "status", None)
        if not isinstance(new, Status):
            continue
        if new in _OPEN and since is None:
            since = event.at
        elif new not in _OPEN and since is not None:
            yield since, event.at
            since = None
    if since is not None:
        yield since, None


def _days(data: ReportInput) -> list[datetime]:
    """The midnights (in the report's zone) after the first ticket up to ``at``, and ``at``."""
    if not data.tickets:
        return []
    zone = data.zone
    day = min(t.created_at for t in data.tickets).astimezone(zone).date() + timedelta(days=1)
    out: list[datetime] = []
    while (instant := datetime.combine(day, datetime.min.time(), tzinfo=zone)) < data.at:
        out.append(instant)
        day += timedelta(days=1)
    out.append(data.at.astimezone(zone))
    return out


@report_section("backlog", order=40)
def _backlog(data: ReportInput) -> Mapping[str, Any]:
    at = data.at
    ages: list[float] = []
    changes: list[tuple[datetime, int]] = []
    for ticket in data.tickets:
        for start, end in _open_spans(ticket):
            changes.append((start, 1))
            if end is not None:
                changes.append((end, -1))
            if start <= at and (end is None or end > at):
                ages.append(seconds(at - ticket.created_at))
    ages.sort()
    buckets = Counter(
        "under 1 day"
        if a < 86400
        else "1-3 days"
        if a < 3 * 86400
        else "3-7 days"
        if a < 7 * 86400
        else "over 7 days"
        for a in ages
    )
    changes.sort(key=lambda c: c[0])
    over_time: dict[str, int] = {}
    level = i = 0
    for instant in _days(data):
        while i < len(changes) and changes[i][0] <= instant:
            level += changes[i][1]
            i += 1
        over_time[instant.isoformat()] = level
    return {
        "open": len(ages),
        "age_p50_seconds": percentile(ages, 50),
        "age_p90_seconds": percentile(ages, 90),
        "age_buckets": {
            k: buckets[k] for k in ("under 1 day", "1-3 days", "3-7 days", "over 7 days")
        },
        "over_time": over_time,
    }


@report_section("escalations", order=60)
def _escalations(data: ReportInput) -> Mapping[str, Any]:
    if data.firings is None:
        return {"available": False}
    zone = data.zone
    by_rule: Counter[str] = Counter()
    weekly: dict[str, Counter[str]] = defaultdict(Counter)
    for f in data.firings:
        name = f"{f.rule} (level {f.level + 1})"
        by_rule[name] += 1
        weekly[week_start(f.at, zone)][name] += 1
    return {
        "available": True,
        "fired": len(data.firings),
        "by_rule": dict(by_rule.most_common()),
        "by_week": {week: dict(c) for week, c in sorted(weekly.items())},
    }


@report_section("loyalty", order=70)
def _loyalty(data: ReportInput) -> Mapping[str, Any]:
    if data.grants is None:
        return {"available": False}
    zone = data.zone
    weekly: Counter[str] = Counter()
    by_target: Counter[str] = Counter()
    for entry in data.grants:
        weekly[week_start(entry.at, zone)] += entry.points
        parts = entry.key.split(":")
        by_target[parts[2] if len(parts) == 4 else "other"] += entry.points
    return {
        "available": True,
        "grants": len(data.grants),
        "points": sum(e.points for e in data.grants),
        "members": len({e.member_id for e in data.grants}),
        "points_by_target": dict(by_target.most_common()),
        "points_by_week": dict(sorted(weekly.items())),
    }


@report_section("made_sla", order=50)
def _made_sla(data: ReportInput) -> Mapping[str, Any]:
    """The help desk's own verdict (ServiceNow's ``made_sla``) against csmcore's: a ticket made
    its SLA under csmcore when none of its target cycles is breached."""
    agree = disagree = 0
    table: Counter[str] = Counter()
    for ticket, results in zip(data.tickets, data.results(), strict=True):
        theirs = ticket.fields.get("made_sla")
        if not isinstance(theirs, bool):
            continue
        ours = not any(s.state is SlaState.BREACHED for s in results)
        table[f"theirs={str(theirs).lower()} ours={str(ours).lower()}"] += 1
        if theirs == ours:
            agree += 1
        else:
            disagree += 1
    compared = agree + disagree
    return {
        "compared": compared,
        "agree": agree,
        "disagree": disagree,
        "agreement_rate": agree / compared if compared else None,
        "table": dict(sorted(table.items())),
    }


@report_section("conventions", order=100)
def _conventions(data: ReportInput) -> Mapping[str, Any]:
    """The conventions the figures follow, so a reader can tell exactly what was counted."""
    calendar = data.book.calendar
    targets = sorted(
        {
            f"{t.key} ({'business' if t.business_hours else 'calendar'} time)"
            for p in data.book.policies
            for t in p.targets
        }
    )
    return {
        "judged_at": data.at.astimezone(data.zone).isoformat(),
        "judged_at_rule": "every ticket is judged as of this instant: the export's last event "
        "unless --at was given; a target still running is judged as it stands then (breached "
        "once past its due time, active before); tickets created after it are left out",
        "timezone": data.timezone,
        "calendar": repr(calendar),
        "policy": data.policy_source or "built-in default (csmcore.cli.policy_file.default_book)",
        "targets": targets,
        "notes": [
            "SLA achievement = achieved / (achieved + breached); running cycles are excluded, "
            "and a breach is final",
            "first reply = the first public agent comment (the second one on agent-created "
            "tickets); notes, bot replies and comments logged for the requester do not count",
            "a first_reply target ends at the first public agent reply or at the solve, "
            "whichever comes first (an export without replies meets it by solving); a ticket "
            "created by an agent or created solved has none",
            "a metric whose events have not happened is counted as 'not yet', never as zero",
            "business times count only the open hours of the calendar above; calendar times "
            "count wall-clock time",
            "medians and percentiles: linear interpolation between closest ranks "
            "(Hyndman & Fan type 7)",
            "backlog = tickets new, open, pending or on hold at the instant judged",
            "all KPI definitions and their sources: docs/kpi-reference.md",
        ],
    }
