"""The report mapping: a hand-worked desk, and properties that tie its figures together."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from csmcore.cli._text import render_text
from csmcore.cli.policy_file import default_book, default_calendar
from csmcore.cli.report import (
    SCHEMA,
    ReportInput,
    build_report,
    percentile,
    report_section,
    report_sections,
)
from csmcore.errors import ValidationError
from csmcore.sla import SlaState
from csmcore.testing import strategies as cst
from csmcore.tickets import Role, Status, Ticket
from csmcore.tickets.importing import ImportReport

UTC = timezone.utc
BOOK = default_book(default_calendar("UTC"))


def _ticket(ticket_id: str, created: datetime, priority: str = "normal") -> Ticket:
    t, _ = Ticket.create(
        at=created,
        ticket_id=ticket_id,
        created_by=Role.REQUESTER,
        channel="email",
        priority=priority,
        requester="ann",
    )
    return t


def test_a_hand_worked_desk() -> None:
    # Monday 6 Jan 2025, UTC, desk open Mon-Fri 09:00-17:00 (the default calendar).
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    # T1 (high): reply after 2 business hours (within 4h), solved Tuesday 10:00 (9 business
    # hours after creation: within 24h) -> first_reply and total_resolution achieved.
    t1 = _ticket("T1", mon, "high")
    t1, _ = t1.comment(mon + timedelta(hours=2), Role.AGENT)
    t1, _ = t1.set_status(mon + timedelta(hours=2), Status.OPEN)
    t1, _ = t1.set_status(mon + timedelta(days=1, hours=1), Status.SOLVED)
    # T2 (urgent): no reply; first reply due 10:00 Monday (1 business hour) -> breached
    # at 10:00; resolution due Monday 17:00 (8h) -> breached at 17:00.
    t2 = _ticket("T2", mon, "urgent")
    # T3 (normal) created Wednesday 8 Jan 09:00: still running at the report instant.
    t3 = _ticket("T3", mon + timedelta(days=2))
    at = mon + timedelta(days=2, hours=1)  # Wednesday 10:00
    report = build_report(ReportInput(tickets=[t1, t2, t3], book=BOOK, at=at))
    assert report["schema"] == SCHEMA
    assert report["tickets"] == 3
    sla = report["sections"]["sla"]
    assert sla["targets"]["first_reply"] | {"by_week": None} == {
        "achieved": 1,
        "breached": 1,
        "active": 1,
        "paused": 0,
        "achievement_rate": 0.5,
        "by_week": None,
    }
    assert sla["targets"]["total_resolution"]["achieved"] == 1
    assert sla["targets"]["total_resolution"]["breached"] == 1
    assert sla["achievement_rate"] == 0.5
    # T2's first reply: due Monday 10:00, still unanswered Wednesday 10:00 = 16 business
    # hours overdue (Mon 10-17 = 7h, Tue 8h, Wed 9-10 = 1h).
    top = sla["top_breaches"][0]
    assert (top["ticket"], top["target"]) == ("T2", "first_reply")
    assert top["overdue_seconds"] == 16 * 3600
    backlog = report["sections"]["backlog"]
    # T2 (new since Monday 09:00, 49h old) and T3 (new, 1h old) are open; T1 is solved.
    assert backlog["open"] == 2
    assert backlog["age_buckets"] == {
        "under 1 day": 1,
        "1-3 days": 1,
        "3-7 days": 0,
        "over 7 days": 0,
    }
    # Midnights after Monday 09:00 up to Wednesday 10:00: Tue 00:00 (T1, T2 open), Wed 00:00
    # (T1 solved Tue 10:00: T2 only), and the report instant (T2, T3).
    assert list(backlog["over_time"].values()) == [2, 1, 2]
    assert report["sections"]["volume"]["by_priority"] == {"high": 1, "urgent": 1, "normal": 1}
    kpi = report["sections"]["kpi"]
    # Only T1 was answered: 2 hours after creation, inside business hours in both clocks.
    for clock in ("calendar", "business"):
        reply = kpi[clock]["first_reply"]
        assert (reply["count"], reply["excluded"]) == (1, 2)
        assert reply["median_seconds"] == 2 * 3600
    # T1 solved Tuesday 10:00: 25 calendar hours, 9 business hours (Mon 09-17, Tue 09-10).
    assert kpi["calendar"]["full_resolution"]["median_seconds"] == 25 * 3600
    assert kpi["business"]["full_resolution"]["median_seconds"] == 9 * 3600
    assert kpi["one_touch_rate"] == 1.0
    assert kpi["solved"] == 1
    assert kpi["first_reply_business_hours_histogram"]["2-4 h"] == 1
    json.dumps(report)  # JSON-safe throughout


@settings(max_examples=40)
@given(st.lists(cst.tickets(), max_size=6, unique_by=lambda t: t.id), st.data())
def test_figures_agree_with_each_other(tickets: list[Ticket], data: st.DataObject) -> None:
    if tickets:
        last = max(t.updated_at for t in tickets)
        at = data.draw(st.sampled_from([last, last + timedelta(days=3)]))
    else:
        at = datetime(2025, 1, 1, tzinfo=UTC)
    report = build_report(ReportInput(tickets=tickets, book=BOOK, at=at))
    sections = report["sections"]
    assert sum(sections["volume"]["by_channel"].values()) == len(tickets)
    assert sum(sections["volume"]["by_week"].values()) == len(tickets)
    statuses = [s for t in tickets for s in BOOK.evaluate(t, at)]
    sla = sections["sla"]
    for state in SlaState:
        counted = sum(row[state.value] for row in sla["targets"].values())
        assert counted == sum(1 for s in statuses if s.state is state)
    open_now = sum(
        1
        for t in tickets
        if t.created_at <= at
        and t.as_of(at).status in (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)
    )
    assert sections["backlog"]["open"] == open_now
    for clock in ("calendar", "business"):
        for row in sections["kpi"][clock].values():
            assert row["count"] + row["excluded"] == len(tickets)
    histogram = sections["kpi"]["first_reply_business_hours_histogram"]
    assert sum(histogram.values()) == sections["kpi"]["business"]["first_reply"]["count"]
    assert sum(sections["backlog"]["age_buckets"].values()) == open_now
    if tickets:
        assert list(sections["backlog"]["over_time"].values())[-1] == open_now
    json.dumps(report)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30))
def test_the_median_is_the_statistics_median(values: list[float]) -> None:
    import statistics

    ordered = sorted(values)
    assert percentile(ordered, 50) == pytest.approx(statistics.median(values))


def test_a_new_section_is_declared_once_and_reported() -> None:
    @report_section("test-extra", order=999)
    def extra(data: ReportInput) -> dict[str, int]:
        return {"n": len(data.tickets)}

    try:
        assert report_sections()[-1] == "test-extra"
        report = build_report(
            ReportInput(tickets=[], book=BOOK, at=datetime(2025, 1, 1, tzinfo=UTC))
        )
        assert report["sections"]["test-extra"] == {"n": 0}
        with pytest.raises(ValidationError, match="already declared"):
            report_section("test-extra", order=1)(lambda d: {})
    finally:
        from csmcore.cli import report as module

        module._SECTIONS.pop("test-extra")


def test_escalation_and_loyalty_sections_of_a_demo_desk() -> None:
    from csmcore.cli.demo import demo_recovery, run_jobs, simulate
    from csmcore.services import Ledger
    from csmcore.storage import open_store

    desk = simulate(seed=4, weeks=1)
    book = default_book(desk.calendar)
    ledger = Ledger(open_store("memory://"))
    activity = run_jobs(desk, book, ledger)
    report = build_report(
        ReportInput(
            tickets=desk.tickets,
            book=book,
            at=desk.end,
            firings=activity.firings,
            grants=activity.grants,
        )
    )
    esc = report["sections"]["escalations"]
    assert esc["fired"] == len(activity.firings) == sum(esc["by_rule"].values())
    assert sum(sum(week.values()) for week in esc["by_week"].values()) == esc["fired"]
    # Every firing is at or after its ticket's creation and within the simulated period.
    created = {t.id: t.created_at for t in desk.tickets}
    assert all(created[f.ticket_id] < f.at <= desk.end for f in activity.firings)
    loyalty = report["sections"]["loyalty"]
    assert loyalty["points"] == sum(loyalty["points_by_week"].values())
    assert loyalty["points"] == sum(loyalty["points_by_target"].values())
    # Every breached target cycle at the end is compensated once, within the monthly cap.
    policy = demo_recovery()
    keys = [e.key for e in activity.grants]
    assert len(keys) == len(set(keys))
    per_member: dict[str, int] = {}
    for e in activity.grants:
        per_member[e.member_id] = per_member.get(e.member_id, 0) + e.points
    assert policy.cap is not None
    assert max(per_member.values()) <= policy.cap  # one week: one calendar month at most
    # Running the nightly job again grants nothing more (idempotent per ticket and cycle).
    again = run_jobs(desk, book, ledger)
    assert again.grants == ()


def test_sections_without_jobs_say_they_are_not_available() -> None:
    report = build_report(ReportInput(tickets=[], book=BOOK, at=datetime(2025, 1, 1, tzinfo=UTC)))
    assert report["sections"]["escalations"] == {"available": False}
    assert report["sections"]["loyalty"] == {"available": False}


def test_tickets_created_after_the_instant_judged_are_left_out() -> None:
    # Judged on Monday 12:00 (--at), a ticket created on Tuesday did not exist yet: it was
    # counted in "tickets", the volume, the KPIs (as "not yet") and made_sla (as made).
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    early = _ticket("T1", mon)
    late, _ = _ticket("T2", mon + timedelta(days=1)).set_fields(
        mon + timedelta(days=1), {"made_sla": True}
    )
    at = mon + timedelta(hours=3)
    report = build_report(ReportInput(tickets=[early, late], book=BOOK, at=at))
    sections = report["sections"]
    assert report["tickets"] == 1
    assert sections["volume"]["tickets"] == 1
    assert sum(sections["volume"]["by_week"].values()) == 1
    assert sections["kpi"]["calendar"]["first_reply"]["excluded"] == 1
    assert sections["made_sla"]["compared"] == 0
    assert sections["backlog"]["open"] == 1
    assert list(sections["backlog"]["over_time"]) == [at.isoformat()]


def test_the_demo_draws_each_real_hour_once_across_daylight_saving_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The hours were stepped in Berlin wall-clock time: on 30 March 2025 local 02:00 (which
    # does not exist) and 03:00 are the same UTC hour, drawn twice; on 26 October the
    # repeated hour was never drawn. One arrival at the start of each hour shows it.
    import random
    from zoneinfo import ZoneInfo

    from csmcore.cli import demo

    monkeypatch.setattr(demo, "_poisson", lambda rng, mean: 1)
    berlin = ZoneInfo("Europe/Berlin")
    for day, hours in ((30, 23), (26, 25)):
        month = 3 if day == 30 else 10
        start = datetime(2025, month, day, tzinfo=berlin)
        end = datetime(2025, month, day + 1, tzinfo=berlin)

        class Zero(random.Random):
            def randrange(self, *args: int, **kwargs: int) -> int:  # type: ignore[override]
                return 0

        instants = [t.astimezone(UTC) for t in demo._arrivals(Zero(), start, end)]
        assert len(instants) == len(set(instants)) == hours
        assert instants == [start.astimezone(UTC) + timedelta(hours=h) for h in range(hours)]


def test_a_fixed_offset_zone_is_accepted_as_everywhere_else() -> None:
    # "+05:30" is accepted by the calendar and the importers (and suggested by their error
    # message), but the report's zone was ZoneInfo("+05:30"): ZoneInfoNotFoundError, exit 1
    mon = datetime(2025, 1, 6, 20, tzinfo=UTC)  # Tuesday 01:30 at +05:30
    report = build_report(
        ReportInput(tickets=[_ticket("T1", mon)], book=BOOK, at=mon, timezone="+05:30")
    )
    assert report["sections"]["volume"]["by_week"] == {"2025-01-06": 1}
    assert report["timezone"] == "+05:30"


def test_the_instant_judged_is_written_in_the_reports_zone() -> None:
    # docs/report.md: instants are in the report's timezone. The header "judged at ... (dates
    # in Europe/Rome)" printed the instant in UTC (12:20+00:00 for a last event logged at
    # 13:20 in Rome), as did `judged_at` and the last key of the backlog over time.
    mon = datetime(2025, 1, 6, 8, tzinfo=UTC)  # 09:00 in Rome
    at = mon + timedelta(hours=4, minutes=20)  # 13:20 in Rome
    report = build_report(
        ReportInput(tickets=[_ticket("T1", mon)], book=BOOK, at=at, timezone="Europe/Rome")
    )
    assert report["at"] == "2025-01-06T13:20:00+01:00"
    assert report["sections"]["conventions"]["judged_at"] == "2025-01-06T13:20:00+01:00"
    assert list(report["sections"]["backlog"]["over_time"]) == ["2025-01-06T13:20:00+01:00"]


def test_the_import_section_counts_unmapped_values_of_every_ticket_read() -> None:
    # With --at before the export's end, the import section still accounts for every row
    # read (its rows and tickets did), but its unmapped activities counted only the tickets
    # created by --at: 'Assign seriousness' 2,831 of the Helpdesk log's 4,938.
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    tickets = []
    for n, created in enumerate((mon, mon + timedelta(days=1))):
        t, _ = _ticket(f"T{n}", created).set_fields(created, {"activity": "Assign seriousness"})
        tickets.append(t)
    report = build_report(
        ReportInput(
            tickets=tickets, book=BOOK, at=mon + timedelta(hours=1), import_report=ImportReport()
        )
    )
    assert report["tickets"] == 1
    assert report["sections"]["import"]["unmapped"] == {"activity": {"Assign seriousness": 2}}


def test_the_top_breaches_show_the_whole_breach_instant_at_80_columns() -> None:
    # A report piped to a file or a mail is 80 columns wide: the "breached at" cell was cut to
    # "2025-01-06T10:00:00…", dropping the offset the instant is written with.
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    report = build_report(
        ReportInput(
            tickets=[_ticket("INC0000307", mon, "urgent")],
            book=BOOK,
            at=mon + timedelta(days=300),
            timezone="Europe/Rome",
        )
    )
    out = io.StringIO()
    render_text(report, Console(file=out, width=80))
    assert "2025-01-06T11:00:00+01:00" in out.getvalue()


def test_the_conventions_say_what_ends_a_first_reply_target() -> None:
    # The ServiceNow export has no replies: the KPI says "first reply: not yet" for all 150
    # tickets while the first_reply target was achieved on 35 (by the solve) and absent on the
    # 6 created already solved; the only convention printed was the KPI's definition.
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    solved, _ = _ticket("T1", mon).set_status(mon + timedelta(hours=1), Status.SOLVED)
    report = build_report(ReportInput(tickets=[solved], book=BOOK, at=mon + timedelta(hours=2)))
    assert report["sections"]["kpi"]["calendar"]["first_reply"]["count"] == 0
    assert report["sections"]["sla"]["targets"]["first_reply"]["achieved"] == 1
    notes = report["sections"]["conventions"]["notes"]
    assert (
        "a first_reply target ends at the first public agent reply or at the solve, whichever "
        "comes first (an export without replies meets it by solving); a ticket created by an "
        "agent or created solved has none" in notes
    )


def test_a_report_at_an_earlier_instant_sees_the_tickets_as_they_stood_then() -> None:
    # ServiceNow sets made_sla to false on the closing row (INC0000104: true until it was
    # closed on 6 March); judged --at 1 March, the report compared csmcore's verdict of then
    # with the export's last value, and counted the priority the ticket was given later.
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    t = _ticket("T1", mon, "normal")
    t, _ = t.set_fields(mon, {"made_sla": True})
    t, _ = t.set_priority(mon + timedelta(days=2), "urgent")
    t, _ = t.set_fields(mon + timedelta(days=3), {"made_sla": False})
    report = build_report(ReportInput(tickets=[t], book=BOOK, at=mon + timedelta(hours=1)))
    made = report["sections"]["made_sla"]
    assert (made["compared"], made["agree"]) == (1, 1)
    assert made["table"] == {"theirs=true ours=true": 1}
    assert report["sections"]["volume"]["by_priority"] == {"normal": 1}


def test_the_volume_line_counts_the_weeks_that_have_tickets() -> None:
    # "203 weeks" read as the span of the Helpdesk log (208 weeks), but counted the weeks with
    # a ticket; a single week read "1 weeks".
    mon = datetime(2025, 1, 6, 9, tzinfo=UTC)
    tickets = [_ticket("T1", mon), _ticket("T2", mon + timedelta(weeks=2))]
    out = io.StringIO()
    render_text(
        build_report(ReportInput(tickets=tickets[:1], book=BOOK, at=mon)), Console(file=out)
    )
    assert "1 week with tickets, busiest starting 2025-01-06 (1 ticket)" in out.getvalue()
    out = io.StringIO()
    at = mon + timedelta(weeks=2)
    render_text(build_report(ReportInput(tickets=tickets, book=BOOK, at=at)), Console(file=out))
    assert "2 weeks with tickets, busiest starting 2025-01-06 (1 ticket)" in out.getvalue()


def test_the_count_lists_print_one_line_each_as_written() -> None:
    # The help desk verdicts, the escalations by rule and the points by target print a line
    # "  name: count" each; a name is printed as it is, never read as rich markup.
    report = {
        "tickets": 3,
        "at": "2025-01-06T09:00:00+00:00",
        "timezone": "UTC",
        "sections": {
            "made_sla": {
                "compared": 3,
                "agree": 2,
                "agreement_rate": 2 / 3,
                "table": {"both met": 2, "[red]export only[/red]": 1},
            },
            "escalations": {"available": True, "fired": 1234, "by_rule": {"late [p1]": 1234}},
            "loyalty": {
                "available": True,
                "points": 1500,
                "members": 2,
                "grants": 3,
                "points_by_target": {"first_reply": 1000, "[b]next[/b]": 500},
            },
        },
    }
    out = io.StringIO()
    render_text(report, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    for line in (
        "  both met: 2",
        "  [red]export only[/red]: 1",
        "Escalations: 1,234 fired",
        "  late [p1]: 1,234",
        "Service recovery: 1,500 points granted to 2 customers in 3 grants",
        "  first_reply: 1,000 points",
        "  [b]next[/b]: 500 points",
    ):
        assert line in lines


def test_the_import_line_counts_in_words_and_names_a_rejected_row_without_an_id() -> None:
    # An export cut off mid-row (the case column lost) printed "1 rows in rejected tickets"
    # and "rejected : line 812: ...", an empty id before the colon.
    section = {
        "available": True,
        "rows": 1,
        "tickets": 0,
        "events": 0,
        "event_rows": 0,
        "noop_rows": 1,
        "rejected_rows": 1,
        "repairs": {},
        "noops": {},
        "rejects": {"short_row": 1},
        "unmapped": {},
        "rejected": [
            {"ticket": "", "reason": "short_row", "line": 812, "message": "row 811 has 6 cells"}
        ],
    }
    report = {
        "tickets": 0,
        "at": "2025-01-06T09:00:00+00:00",
        "timezone": "UTC",
        "sections": {"import": section},
    }
    out = io.StringIO()
    render_text(report, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert "Import: 1 row, 0 tickets, 0 events; 1 no-op row, 1 row in rejected tickets" in lines
    assert "  rejected (no ticket id): line 812: row 811 has 6 cells" in lines
