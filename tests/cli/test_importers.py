"""The importer registry and the three built-in importers, on the project's shared data."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TextIO

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.cli import importers
from csmcore.cli.importers import ImportOptions, importer_named, importer_names, write_jsonl
from csmcore.errors import ValidationError
from csmcore.testing import strategies as cst
from csmcore.tickets import Role, Status, Ticket
from csmcore.tickets.importing import ImportedTicket, ImportReport
from tests.sample_data import SNOW, needs_data

UTC = timezone.utc


def _read(
    name: str, text: str, *, timezone: str = "UTC", strict: bool = False
) -> tuple[list[Ticket], ImportReport]:
    report = ImportReport()
    options = ImportOptions(timezone=timezone, strict=strict)
    found = importer_named(name).read(io.StringIO(text), options=options, report=report)
    return [i.ticket for i in found], report


def test_the_three_formats_are_registered_by_name() -> None:
    assert {"helpdesk-log", "servicenow", "csmcore-jsonl"} <= set(importer_names())


def test_an_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown import format 'zendesk'.*servicenow"):
        importer_named("zendesk")


def test_registering_a_second_importer_under_a_taken_name_is_refused() -> None:
    @attrs.frozen
    class Other:
        name: str = "servicenow"
        summary: str = "another"
        header_lines: int = 0

        def read(
            self, stream: TextIO, *, options: ImportOptions, report: ImportReport
        ) -> Iterator[ImportedTicket]:
            return iter(())

    with pytest.raises(ValidationError, match="already registered"):
        importers.register_importer(Other())


def test_a_new_importer_is_found_once_declared() -> None:
    @attrs.frozen
    class Lines:
        name: str = "test-lines"
        summary: str = "one ticket id per line"
        header_lines: int = 0

        def read(
            self, stream: TextIO, *, options: ImportOptions, report: ImportReport
        ) -> Iterator[ImportedTicket]:
            for line in stream:
                t, _ = Ticket.create(
                    at=datetime(2025, 1, 1, tzinfo=UTC),
                    ticket_id=line.strip(),
                    created_by=Role.REQUESTER,
                    channel="web",
                    priority="normal",
                    requester="r",
                )
                yield ImportedTicket(ticket=t, event_rows=(1,))

    lines = importers.register_importer(Lines())
    try:
        tickets, _ = _read("test-lines", "A\nB\n")
        assert [t.id for t in tickets] == ["A", "B"]
    finally:
        assert importers.unregister_importer("test-lines") is lines
    assert "test-lines" not in importer_names()
    with pytest.raises(ValidationError, match="unknown import format 'test-lines'"):
        importer_named("test-lines")
    importers.register_importer(Lines())  # the name is free again
    importers.unregister_importer("test-lines")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("servicenow", "importer 'servicenow' is built in and cannot be unregistered"),
        ("zendesk", "no importer named 'zendesk' is registered; registered: .*servicenow"),
        (5, "no importer named 5 is registered"),
    ],
)
def test_unregistering_a_built_in_or_unknown_importer_is_refused(
    name: object, message: str
) -> None:
    before = importer_names()
    with pytest.raises(ValidationError, match=message):
        importers.unregister_importer(name)  # type: ignore[arg-type]
    assert importer_names() == before


def test_an_object_that_is_not_an_importer_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not an importer"):
        importers.register_importer(object())  # type: ignore[arg-type]


@needs_data
def test_servicenow_sample_imports_every_incident_with_made_sla_kept() -> None:
    text = SNOW.read_text(encoding="utf-8")
    tickets, report = _read("servicenow", text)
    # docs/howto-import.md: 972 rows, 150 incidents, 275 no-op rows on this sample.
    assert (report.rows, report.tickets, report.noop_rows) == (972, 150, 275)
    assert report.balanced
    assert all(isinstance(t.fields.get("made_sla"), bool) for t in tickets)


def test_helpdesk_log_reads_wall_clock_times_in_the_zone_given() -> None:
    text = (
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        "C1,Assign seriousness,2024-05-06 09:00:00+00:00,Value 1\n"
        "C1,Take in charge ticket,2024-05-06 09:40:00+00:00,Value 2\n"
        "C1,Wait,2024-05-06 10:00:00+00:00,Value 2\n"
        "C1,Resolve ticket,2024-05-07 11:00:00+00:00,Value 2\n"
    )
    (ticket,), report = _read("helpdesk-log", text, timezone="Europe/Rome")
    # 09:00 in Rome in May (UTC+2) is 07:00 UTC; the +00:00 of the log is ignored.
    assert ticket.created_at == datetime(2024, 5, 6, 7, tzinfo=UTC)
    assert ticket.status is Status.SOLVED
    assert report.balanced


def test_helpdesk_strict_rejects_what_repair_fixes() -> None:
    text = (
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        "C8,Resolve ticket,2024-05-06 09:00:00,Value 2\n"
        "C8,Closed,2024-05-07 09:00:00,Value 2\n"
        "C8,Take in charge ticket,2024-05-08 09:00:00,Value 3\n"
    )
    strict, report = _read("helpdesk-log", text, strict=True)
    assert strict == []
    assert report.rejected[0].reason.value == "missing_reopen"
    repaired, report = _read("helpdesk-log", text)
    assert len(repaired) == 1
    assert report.repairs["missing_reopen"] == 1


def test_jsonl_reports_malformed_lines_by_number_and_goes_on() -> None:
    t, _ = Ticket.create(
        at=datetime(2025, 1, 1, tzinfo=UTC),
        ticket_id="T1",
        created_by=Role.REQUESTER,
        channel="web",
        priority="normal",
        requester="r",
    )
    out = io.StringIO()
    write_jsonl([t], out)
    good = out.getvalue()
    text = good + "not json\n" + '{"type": "sla_policy", "schema": 1, "data": {}}\n' + good
    tickets, report = _read("csmcore-jsonl", text)
    assert [x.id for x in tickets] == ["T1"]
    assert [r.row for r in report.rejected] == [2, 3, 4]
    assert "not a JSON document" in report.rejected[0].message
    assert "sla_policy" in report.rejected[1].message
    assert "appears twice" in report.rejected[2].message
    assert report.rows == 4
    assert report.balanced


@given(st.lists(cst.tickets(), max_size=4, unique_by=lambda t: t.id))
def test_jsonl_round_trips_any_tickets_exactly(tickets: list[Ticket]) -> None:
    out = io.StringIO()
    assert write_jsonl(tickets, out) == len(tickets)
    back, report = _read("csmcore-jsonl", out.getvalue())
    assert back == tickets
    assert report.rejected == []
    assert report.tickets == len(tickets)


def test_import_options_policy_follows_strict() -> None:
    assert ImportOptions(strict=True).policy.value == "strict"
    assert ImportOptions().policy.value == "repair"
