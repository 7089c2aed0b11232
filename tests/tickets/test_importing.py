"""csmcore.tickets.importing on small inline exports: each rule, each repair, each reject."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.errors import ErrorCode, UnknownTimezoneError, ValidationError
from csmcore.tickets import (
    Assigned,
    Commented,
    FieldsChanged,
    Priority,
    PriorityChanged,
    PriorityMap,
    Reopened,
    RequesterChanged,
    Status,
    StatusChanged,
    StatusMap,
)
from csmcore.tickets.importing import (
    Activity,
    ActivityFormat,
    FaultPolicy,
    ImportedTicket,
    ImportReport,
    Reason,
    SnapshotFormat,
    Timestamps,
    import_activities,
    import_snapshots,
    read_csv,
)

UTC = timezone.utc

FMT = SnapshotFormat(
    case="id",
    at="updated",
    order="mod",
    state="state",
    statuses=StatusMap(
        custom={
            "New": Status.NEW,
            "Active": Status.OPEN,
            "Waiting": Status.PENDING,
            "Done": Status.SOLVED,
            "Closed": Status.CLOSED,
        }
    ),
    priority="prio",
    priorities={"1": Priority.URGENT, "2": Priority.HIGH, "3": Priority.NORMAL},
    group="group",
    assignee="agent",
    requester="caller",
    actor="by",
    ignore={"mod", "updated", "by"},
)
HEADER = ["id", "state", "prio", "group", "agent", "caller", "plan", "mod", "updated", "by"]
TIMES = Timestamps(zone="UTC", day_first=True)


def snap(
    text: str, policy: str = "repair", fmt: SnapshotFormat = FMT
) -> tuple[list[ImportedTicket], ImportReport]:
    rows = [line.split(",") for line in text.strip().splitlines()]
    report = ImportReport()
    tickets = list(
        import_snapshots(
            rows, header=HEADER, format=fmt, timestamps=TIMES, policy=policy, report=report
        )
    )
    assert report.balanced
    return tickets, report


BASIC = """
T1,New,3,?,?,ann,gold,0,1/3/2025 09:00,sys
T1,New,3,?,?,ann,gold,1,1/3/2025 09:05,sys
T1,Active,2,L1,bob,ann,gold,2,1/3/2025 09:30,bob
T1,Active,2,L1,bob,ann,silver,3,1/3/2025 10:00,bob
T1,Done,2,L1,bob,ann,silver,4,2/3/2025 10:00,bob
T1,Closed,2,L1,bob,ann,silver,5,5/3/2025 10:00,sys
T2,Active,1,L2,cy,dee,?,0,3/3/2025 08:00,cy
"""


def test_snapshots_diff_consecutive_rows_into_events() -> None:
    tickets, report = snap(BASIC)
    one, two = (t.ticket for t in tickets)
    assert [type(e).__name__ for e in one.events] == [
        "TicketCreated",
        "StatusChanged",
        "PriorityChanged",
        "Assigned",
        "FieldsChanged",
        "StatusChanged",
        "StatusChanged",
    ]
    assert tickets[0].event_rows == (1, 3, 3, 3, 4, 5, 6)
    assert tickets[0].noop_rows == (2,)
    assert one.created_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert (one.status, one.status_name, one.priority) == (Status.CLOSED, "Closed", "high")
    assert (one.group, one.assignee, one.requester) == ("L1", "bob", "ann")
    assert dict(one.fields) == {"plan": "silver"}
    assert one.events[3] == Assigned(at=one.events[3].at, actor="bob", assignee="bob", group="L1")
    assert (two.status, two.priority, dict(two.fields)) == (Status.OPEN, Priority.URGENT, {})
    assert report.noops == {"no_change": 1}
    assert (report.rows, report.event_rows, report.noop_rows, report.tickets) == (7, 6, 1, 2)


def test_a_changed_requester_becomes_a_requester_changed_event() -> None:
    tickets, report = snap(
        """
T1,New,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,New,3,?,?,eve,?,1,1/3/2025 09:05,sys
T1,New,3,?,?,?,?,2,1/3/2025 09:10,sys
"""
    )
    ticket = tickets[0].ticket
    assert ticket.created.requester == "ann"
    assert ticket.events[1:] == (
        RequesterChanged(at=datetime(2025, 3, 1, 9, 5, tzinfo=UTC), actor="sys", requester="eve"),
        # A missing requester reads as the format's default, as at creation.
        RequesterChanged(
            at=datetime(2025, 3, 1, 9, 10, tzinfo=UTC), actor="sys", requester="unknown"
        ),
    )
    assert ticket.requester == "unknown"
    assert dict(ticket.fields) == {}
    assert tickets[0].event_rows == (1, 2, 3)
    assert report.balanced


def test_priorities_keep_the_export_s_name_and_map_to_a_category() -> None:
    tickets, _ = snap(
        """
T1,New,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,New,1,?,?,ann,?,1,1/3/2025 09:05,sys
T1,New,urgent,?,?,ann,?,2,1/3/2025 09:10,sys
"""
    )
    ticket = tickets[0].ticket
    created = ticket.created
    assert (created.priority, created.priority_name) == (Priority.NORMAL, "3")
    assert ticket.events[1:] == (
        PriorityChanged(
            at=datetime(2025, 3, 1, 9, 5, tzinfo=UTC),
            actor="sys",
            priority=Priority.URGENT,
            priority_name="1",
        ),
        # A category's own name is accepted too, and has no custom name.
        PriorityChanged(
            at=datetime(2025, 3, 1, 9, 10, tzinfo=UTC), actor="sys", priority=Priority.URGENT
        ),
    )
    assert isinstance(FMT.priorities, PriorityMap)
    assert FMT.priorities.category("2") is Priority.HIGH


def test_a_rejection_carries_the_model_s_structured_details() -> None:
    def read(column: str, text: str) -> str | float | Decimal:
        if text == "nan":
            return float("nan")
        if text.startswith("eur "):
            return Decimal(text[4:])
        return text

    fmt = attrs.evolve(FMT, field_reader=read)
    tickets, report = snap(
        """
T1,New,3,?,?,ann,eur 1.50,0,1/3/2025 09:00,sys
T2,New,3,?,?,ann,gold,0,1/3/2025 09:00,sys
T2,New,3,?,?,ann,nan,1,1/3/2025 09:05,sys
""",
        fmt=fmt,
    )
    assert tickets[0].ticket.fields["plan"] == Decimal("1.50")
    (rejection,) = report.rejected
    assert (rejection.ticket_id, rejection.reason, rejection.row) == ("T2", "invalid_value", 3)
    assert rejection.code == ErrorCode.INVALID_FIELD_VALUE
    assert rejection.field == "plan"
    assert rejection.error_value != rejection.error_value  # the NaN itself
    assert rejection.event_index is None  # refused when the event was built, not folded
    # A rejection the importer decides itself has no model details.
    _, report = snap("T1,Limbo,3,?,?,ann,?,0,1/3/2025 09:00,sys", "strict")
    assert report.rejected[0].code is None
    assert report.rejected[0].field is None


OUT_OF_ORDER = """
T1,New,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,Done,3,?,?,ann,?,2,1/3/2025 11:00,sys
T1,Active,3,?,?,ann,?,1,1/3/2025 10:00,sys
"""


def test_rows_out_of_order_are_rejected_or_sorted() -> None:
    tickets, report = snap(OUT_OF_ORDER, "strict")
    assert not tickets
    (rejection,) = report.rejected
    assert (rejection.reason, rejection.row, rejection.rows) == (Reason.OUT_OF_ORDER, 3, (1, 2, 3))
    assert rejection.ticket_id == "T1"
    assert "row 3 is earlier than row 2" in rejection.message
    assert report.rejects == {"out_of_order": 1}
    assert report.rejected_rows == 3
    tickets, report = snap(OUT_OF_ORDER, "repair")
    assert [e.status for e in tickets[0].ticket.events[1:]] == [  # type: ignore[union-attr]
        Status.OPEN,
        Status.SOLVED,
    ]
    assert tickets[0].event_rows == (1, 3, 2)
    assert report.repairs == {"out_of_order": 1}


CLOSED_THEN_ACTIVE = """
T1,Active,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,Closed,3,?,?,ann,?,1,1/3/2025 10:00,sys
T1,Waiting,3,?,?,ann,?,2,1/3/2025 11:00,sys
T1,Done,3,?,?,ann,?,3,1/3/2025 12:00,sys
"""


def test_leaving_closed_needs_a_reopen_that_repair_inserts() -> None:
    _, report = snap(CLOSED_THEN_ACTIVE, "strict")
    assert report.rejects == {"missing_reopen": 1}
    assert report.rejected[0].row == 3
    assert report.rejected[0].value == "Waiting"
    tickets, report = snap(CLOSED_THEN_ACTIVE, "repair")
    events = tickets[0].ticket.events
    assert events[2] == Reopened(at=events[2].at, actor="sys", status=Status.PENDING)
    assert events[3] == StatusChanged(
        at=events[2].at, actor="sys", status=Status.PENDING, status_name="Waiting"
    )
    assert tickets[0].event_rows == (1, 2, 3, 3, 4)
    assert tickets[0].ticket.reopens == 1
    assert report.repairs == {"missing_reopen": 1}


def test_back_to_new_is_rejected_or_read_as_open() -> None:
    text = """
T1,Active,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,New,3,?,?,ann,?,1,1/3/2025 10:00,sys
"""
    assert snap(text, "strict")[1].rejects == {"back_to_new": 1}
    tickets, report = snap(text, "repair")
    assert report.repairs == {"back_to_new": 1}
    ticket = tickets[0].ticket
    assert (ticket.status, ticket.status_name) == (Status.OPEN, "open")
    assert tickets[0].event_rows == (1, 2)


UNKNOWN = """
T1,Active,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,Awaiting Vendor,9,?,?,ann,?,1,1/3/2025 10:00,sys
T1,Active,3,?,?,ann,?,2,1/3/2025 11:00,sys
"""


def test_unknown_states_and_priorities_are_rejected_or_folded_into_fields() -> None:
    _, report = snap(UNKNOWN, "strict")
    assert report.rejects == {"unknown_state": 1}
    assert report.rejected[0].value == "Awaiting Vendor"
    assert "accepted: ['new', 'open'" in report.rejected[0].message
    tickets, report = snap(UNKNOWN, "repair")
    ticket = tickets[0].ticket
    folded = ticket.as_of(datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
    assert folded.status is Status.OPEN
    assert dict(folded.fields) == {"import.state": "Awaiting Vendor", "import.priority": "9"}
    assert ticket.status is Status.OPEN
    assert dict(ticket.fields) == {}
    assert ticket.priority is Priority.NORMAL
    assert report.repairs == {"unknown_state": 1, "unknown_priority": 1}


def test_unknown_values_in_the_first_row() -> None:
    text = "T1,Limbo,7,?,?,ann,?,0,1/3/2025 09:00,sys"
    assert snap(text, "strict")[1].rejects == {"unknown_state": 1}
    tickets, report = snap(text, "repair")
    ticket = tickets[0].ticket
    assert (ticket.status, ticket.priority) == (Status.NEW, Priority.NORMAL)
    assert dict(ticket.fields) == {"import.state": "Limbo", "import.priority": "7"}
    assert report.repairs == {"unknown_state": 1, "unknown_priority": 1}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("T1,New,3,?,?,ann,?,0,?,sys", Reason.BAD_TIMESTAMP),
        ("T1,New,3,?,?,ann,?,0,31/2/2025 09:00,sys", Reason.BAD_TIMESTAMP),
        ("T1,New,3", Reason.SHORT_ROW),
        ("?,New,3,?,?,ann,?,0,1/3/2025 09:00,sys", Reason.MISSING_CASE),
        ("T1,New,3,?,?,a\x00n,?,0,1/3/2025 09:00,sys", Reason.INVALID_VALUE),
    ],
)
def test_bad_rows_reject_their_ticket_in_both_policies(text: str, reason: Reason) -> None:
    for policy in FaultPolicy:
        tickets, report = snap(text + "\nT2,New,3,?,?,ann,?,0,1/3/2025 09:00,sys", policy)
        assert [t.ticket.id for t in tickets] == ["T2"]
        assert report.rejects == {reason: 1}
        assert report.rejected[0].rows == (1,)


def test_the_order_column_decides_between_rows_at_the_same_instant() -> None:
    text = """
T1,Done,3,?,?,ann,?,2,1/3/2025 09:00,sys
T1,Active,3,?,?,ann,?,1,1/3/2025 09:00,sys
"""
    assert snap(text, "strict")[1].rejects == {"out_of_order": 1}
    tickets, _ = snap(text, "repair")
    assert tickets[0].event_rows == (2, 1)
    # Read only when it is needed; a cell that is not an integer then rejects the ticket.
    tickets, report = snap(text.replace(",2,", ",x,"), "repair")
    assert report.rejects == {"out_of_order": 1}
    assert report.rejected[0].value == "x"
    tickets, report = snap(text.replace(",2,1/3/2025 09:00", ",x,1/3/2025 08:00"), "strict")
    assert tickets[0].event_rows == (1, 2)


def test_a_case_that_comes_back_after_another_is_rejected() -> None:
    tickets, report = snap(
        """
T1,New,3,?,?,ann,?,0,1/3/2025 09:00,sys
T2,New,3,?,?,ann,?,0,1/3/2025 09:00,sys
T1,Active,3,?,?,ann,?,1,1/3/2025 10:00,sys
"""
    )
    assert [t.ticket.id for t in tickets] == ["T1", "T2"]
    assert report.rejects == {"case_not_contiguous": 1}
    assert report.rejected[0].rows == (3,)


def test_a_format_naming_a_missing_column_fails_at_once() -> None:
    with pytest.raises(ValidationError, match="state='status' is not a column"):
        import_snapshots(
            [],
            header=HEADER,
            format=SnapshotFormat(case="id", at="updated", state="status", statuses=StatusMap()),
            timestamps=TIMES,
        )
    with pytest.raises(
        ValidationError,
        match="policy='sometimes' is not a FaultPolicy; accepted: 'strict', 'repair'",
    ):
        import_snapshots([], header=HEADER, format=FMT, timestamps=TIMES, policy="sometimes")


def test_a_field_reader_decides_what_custom_fields_hold() -> None:
    def read(column: str, text: str) -> int | str | None:
        if column == "plan":
            return {"gold": 3, "silver": 2}.get(text)
        return text

    import attrs

    tickets, _ = snap(BASIC, fmt=attrs.evolve(FMT, field_reader=read))
    assert dict(tickets[0].ticket.fields) == {"plan": 2}
    assert tickets[0].ticket.as_of(datetime(2025, 3, 1, 9, 0, tzinfo=UTC)).fields["plan"] == 3


# -- timestamps ---------------------------------------------------------------------------------


def test_timestamps_read_naive_times_in_the_named_zone() -> None:
    rome = Timestamps(zone="Europe/Rome", day_first=True)
    assert rome.parse("29/2/2016 01:16") == datetime(2016, 2, 29, 0, 16, tzinfo=UTC)
    assert rome.parse("1/7/2016 9:05:30") == datetime(2016, 7, 1, 7, 5, 30, tzinfo=UTC)
    assert rome.parse("2016-07-01 09:05") == datetime(2016, 7, 1, 7, 5, tzinfo=UTC)
    us = Timestamps(zone="America/New_York")
    assert us.parse("2/3/2025 09:00") == datetime(2025, 2, 3, 14, 0, tzinfo=UTC)
    # An offset is kept unless the export's offsets are an artefact.
    assert rome.parse("2010-01-13 08:40:25+00:00") == datetime(2010, 1, 13, 8, 40, 25, tzinfo=UTC)
    artefact = Timestamps(zone="Europe/Rome", ignore_offset=True)
    assert artefact.parse("2010-01-13 08:40:25+00:00") == datetime(
        2010, 1, 13, 7, 40, 25, tzinfo=UTC
    )
    # Clock changes: a repeated time reads as the first, a skipped one moves forward.
    assert rome.parse("30/10/2016 02:30") == datetime(2016, 10, 30, 0, 30, tzinfo=UTC)
    assert rome.parse("27/3/2016 02:30") == datetime(2016, 3, 27, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "?", "13/13/2020 10:00", "yesterday", "1/2/20"])
def test_bad_timestamps_raise_naming_the_text_and_the_formats(text: str) -> None:
    with pytest.raises(ValidationError, match=r"is not a date and time; accepted: d/m/yyyy"):
        TIMES.parse(text)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(UnknownTimezoneError):
        Timestamps(zone="Mars/Olympus")


def test_timestamps_remember_a_bounded_number_of_texts() -> None:
    stamps = Timestamps(zone="UTC")
    for second in range(5000):
        stamps.parse(f"2025-01-01 {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}")
    assert 0 < len(stamps.memo) <= 4096


# -- activity logs ------------------------------------------------------------------------------

ACT_HEADER = ["case", "activity", "at", "who"]
ACT = ActivityFormat(
    case="case",
    activity="activity",
    at="at",
    actor="who",
    activities={
        "Take": Activity.AGENT_REPLY,
        "Wait": Activity.PENDING,
        "Resolve": Activity.SOLVED,
        "Close": Activity.CLOSED,
        "Call": Activity.REQUESTER_COMMENT,
        "Memo": Activity.NOTE,
        "Ping": Activity.IGNORE,
        "Hold": Activity.ON_HOLD,
        "Open": Activity.OPEN,
    },
)


def act(
    text: str, policy: str = "repair", fmt: ActivityFormat = ACT
) -> tuple[list[ImportedTicket], ImportReport]:
    rows = [line.split(",") for line in text.strip().splitlines()]
    report = ImportReport()
    tickets = list(
        import_activities(
            rows,
            header=ACT_HEADER,
            format=fmt,
            timestamps=Timestamps(zone="UTC"),
            policy=policy,
            report=report,
        )
    )
    assert report.balanced
    return tickets, report


def test_activities_map_to_events() -> None:
    tickets, report = act(
        """
C1,Assign,2025-03-03 09:00,ann
C1,Take,2025-03-03 09:10,bob
C1,Wait,2025-03-03 09:20,bob
C1,Call,2025-03-03 10:00,bob
C1,Memo,2025-03-03 10:05,bob
C1,Ping,2025-03-03 10:06,bob
C1,Take,2025-03-03 10:10,bob
C1,Hold,2025-03-03 10:20,bob
C1,Open,2025-03-03 10:30,bob
C1,Resolve,2025-03-03 11:00,bob
C1,Resolve,2025-03-03 11:01,bob
C1,Close,2025-03-04 11:00,sys
"""
    )
    imported = tickets[0]
    events = imported.ticket.events
    kinds = [
        (type(e).__name__, getattr(e, "status", None) or getattr(e, "author_role", None))
        for e in events
    ]
    assert kinds == [
        ("TicketCreated", Status.NEW),
        ("FieldsChanged", None),
        ("StatusChanged", Status.OPEN),
        ("Commented", "agent"),
        ("StatusChanged", Status.PENDING),
        ("Commented", "requester"),
        ("Commented", "agent"),
        ("StatusChanged", Status.OPEN),
        ("Commented", "agent"),
        ("StatusChanged", Status.ON_HOLD),
        ("StatusChanged", Status.OPEN),
        ("StatusChanged", Status.SOLVED),
        ("StatusChanged", Status.CLOSED),
    ]
    assert events[1] == FieldsChanged(at=events[0].at, actor="ann", changes={"activity": "Assign"})
    note = events[6]
    assert isinstance(note, Commented)
    assert (note.public, note.author) == (False, "bob")
    reply = events[3]
    assert isinstance(reply, Commented)
    assert reply.is_agent_reply
    assert imported.noop_rows == (6, 11)
    assert report.noops == {"ignored_activity": 1, "repeated_status": 1}
    assert imported.event_rows == (1, 1, 2, 2, 3, 4, 5, 7, 7, 8, 9, 10, 12)


def test_an_activity_after_closing_needs_a_reopen() -> None:
    text = """
C1,Take,2025-03-03 09:10,bob
C1,Close,2025-03-03 10:00,bob
C1,Take,2025-03-03 11:00,bob
C1,Close,2025-03-03 12:00,bob
C1,Close,2025-03-03 12:30,bob
"""
    _, report = act(text, "strict")
    assert report.rejects == {"missing_reopen": 1}
    assert report.rejected[0].row == 3
    tickets, report = act(text, "repair")
    events = tickets[0].ticket.events
    assert [type(e).__name__ for e in events[-4:]] == [
        "StatusChanged",
        "Reopened",
        "Commented",
        "StatusChanged",
    ]
    assert report.repairs == {"missing_reopen": 1}
    assert report.noops == {"repeated_status": 1}
    # The ticket model accepts a repeated close as a no-op: so do both policies.
    for policy in ("strict", "repair"):
        tickets, report = act(
            "C1,Close,2025-03-03 10:00,bob\nC1,Close,2025-03-03 11:00,bob", policy
        )
        assert not report.rejected
        assert report.noops == {"repeated_status": 1}
        assert tickets[0].noop_rows == (2,)
        assert report.balanced


def test_bad_values_in_activity_rows_reject_naming_the_row() -> None:
    _, report = act("C1,Take,2025-03-03 09:10,bob\nC1,Take,2025-03-03 09:20,b\x00b")
    assert report.rejects == {"invalid_value": 1}
    assert report.rejected[0].row == 2
    _, report = act("C" + "1" * 300 + ",Take,2025-03-03 09:10,bob")
    assert report.rejects == {"invalid_value": 1}
    assert "is not a ticket id" in report.rejected[0].message


def test_reported_and_default_activities() -> None:
    fmt = ActivityFormat(case="case", activity="activity", at="at", default="ignore")
    tickets, report = act("C1,Anything,2025-03-03 09:10,bob\nC1,Else,2025-03-03 09:20,bob", fmt=fmt)
    assert tickets[0].ticket.version == 1
    assert tickets[0].event_rows == (1,)  # the first row created the ticket
    assert report.noops == {"ignored_activity": 1}
    with pytest.raises(ValueError, match="'sometimes' is not a valid Activity"):
        ActivityFormat(case="c", activity="a", at="t", activities={"x": "sometimes"})


def test_read_csv_gives_the_header_and_lazy_rows() -> None:
    stream = io.StringIO('case,activity,at,who\nC1,"Take, again",2025-03-03 09:10,bob\n')
    header, rows = read_csv(stream)
    assert header == ACT_HEADER
    assert list(rows) == [["C1", "Take, again", "2025-03-03 09:10", "bob"]]
    with pytest.raises(ValidationError, match="empty"):
        read_csv(io.StringIO(""))


# -- properties ---------------------------------------------------------------------------------

_ACTIVITY_NAMES = ["Take", "Wait", "Resolve", "Close", "Call", "Memo", "Ping", "Assign"]


@st.composite
def activity_logs(draw: st.DrawFn) -> list[list[str]]:
    rows = []
    for case in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 8))):
            minute = draw(st.integers(0, 30))
            name = draw(st.sampled_from(_ACTIVITY_NAMES))
            who = draw(st.sampled_from(["ann", "bob", "?"]))
            rows.append([f"C{case}", name, f"2025-03-03 09:{minute:02d}", who])
    return rows


@given(activity_logs(), st.randoms(use_true_random=False))
def test_shuffling_rows_within_a_case_gives_the_same_tickets_in_repair_mode(
    rows: list[list[str]], rng: object
) -> None:
    import random

    assert isinstance(rng, random.Random)
    shuffled: list[list[str]] = []
    cases: dict[str, list[list[str]]] = {}
    for row in rows:
        cases.setdefault(row[0], []).append(row)
    for case_rows in cases.values():
        case_rows = list(case_rows)
        rng.shuffle(case_rows)
        shuffled.extend(case_rows)
    results = []
    for given_rows in (rows, shuffled):
        report = ImportReport()
        tickets = list(
            import_activities(
                given_rows,
                header=ACT_HEADER,
                format=ACT,
                timestamps=Timestamps(zone="UTC"),
                report=report,
            )
        )
        assert report.balanced
        assert not report.rejected
        results.append([t.ticket for t in tickets])
    assert results[0] == results[1]


@given(activity_logs())
def test_every_row_is_accounted_for_once_in_both_policies(rows: list[list[str]]) -> None:
    for policy in FaultPolicy:
        report = ImportReport()
        tickets = list(
            import_activities(
                rows,
                header=ACT_HEADER,
                format=ACT,
                timestamps=Timestamps(zone="UTC"),
                policy=policy,
                report=report,
            )
        )
        seen: list[int] = []
        for imported in tickets:
            seen.extend(set(imported.event_rows))
            seen.extend(imported.noop_rows)
            assert len(imported.event_rows) == imported.ticket.version
        for rejection in report.rejected:
            seen.extend(rejection.rows)
        assert sorted(seen) == list(range(1, len(rows) + 1))
        assert report.balanced


def _export_activities(tickets: list[ImportedTicket]) -> list[list[str]]:
    """Activity rows that say what each imported ticket's events did (an inverse of ACT)."""
    rows = []
    for imported in tickets:
        events = imported.ticket.events
        for i, event in enumerate(events):
            at = event.at.strftime("%Y-%m-%d %H:%M")
            who = event.actor or "?"
            if isinstance(event, StatusChanged):
                following = events[i + 1] if i + 1 < len(events) else None
                if event.status is Status.OPEN and isinstance(following, Commented):
                    continue  # part of the agent reply that follows
                name = {"pending": "Wait", "solved": "Resolve", "closed": "Close"}[event.status]
            elif isinstance(event, Commented):
                name = {"agent": "Take" if event.public else "Memo", "requester": "Call"}[
                    event.author_role
                ]
            elif isinstance(event, FieldsChanged):
                name = str(event.changes["activity"])
            elif isinstance(event, Reopened | PriorityChanged | Assigned):
                continue
            else:  # TicketCreated: an ignored activity when its row gave nothing else
                if imported.event_rows[1:2] != imported.event_rows[:1]:
                    rows.append([imported.ticket.id, "Ping", at, who])
                continue
            rows.append([imported.ticket.id, name, at, who])
    return rows


@given(activity_logs())
def test_importing_exporting_and_importing_again_gives_the_same_tickets(
    rows: list[list[str]],
) -> None:
    def run(given_rows: list[list[str]]) -> list[ImportedTicket]:
        return list(
            import_activities(
                given_rows,
                header=ACT_HEADER,
                format=ACT,
                timestamps=Timestamps(zone="UTC"),
                policy="strict",
            )
        )

    first = run(rows)
    again = run(_export_activities(first))
    assert [t.ticket for t in again] == [t.ticket for t in first]


def test_csv_module_round_trip_of_a_small_export() -> None:
    out = io.StringIO()
    csv.writer(out).writerows([ACT_HEADER, ["C1", "Take", "2025-03-03 09:10", "bob"]])
    out.seek(0)
    header, rows = read_csv(out)
    (imported,) = import_activities(
        rows, header=header, format=ACT, timestamps=Timestamps(zone="UTC")
    )
    assert imported.ticket.created_at == datetime(2025, 3, 3, 9, 10, tzinfo=UTC)
