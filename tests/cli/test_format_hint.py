"""A CSV given the wrong ``--format``: the message names the format used, the file's first
columns, and the registered format whose declared columns the header has."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs
import pytest
from click.testing import CliRunner

from csmcore.cli import _app, importers
from csmcore.cli.importers import (
    ImportOptions,
    formats_matching,
    importer_named,
    register_importer,
    required_columns,
    unregister_importer,
)
from csmcore.errors import ValidationError
from csmcore.tickets.importing import ImportedTicket, ImportReport
from tests.sample_data import HELP, SNOW, needs_data


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app.cli, list(args), prog_name="csmcore")
    return result.exit_code, result.stdout, result.stderr


@needs_data
def test_the_helpdesk_log_given_as_servicenow_suggests_helpdesk_log() -> None:
    code, out, err = run("report", str(HELP), "--format", "servicenow", "--quiet")
    assert code == _app.EXIT_BAD_INPUT, err
    assert out == ""
    assert "--format servicenow" in err
    assert "'number'" in err  # the column the format needs and the file lacks
    assert "'concept:name', 'lifecycle:transition'" in err  # the file's first columns...
    assert "(11 in all)" in err
    assert "'case:creator'" not in err  # ...abbreviated
    assert "try --format helpdesk-log" in err


@needs_data
def test_the_servicenow_sample_given_as_helpdesk_log_suggests_servicenow() -> None:
    code, _, err = run("report", str(SNOW), "--format", "helpdesk-log", "--quiet")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "--format helpdesk-log" in err
    assert "'case:concept:name'" in err
    assert "'number', 'incident_state'" in err
    assert "(36 in all)" in err
    assert "'closed_at'" not in err
    assert "try --format servicenow" in err
    assert len(err) < 600  # not the 36 column names


@needs_data
def test_a_csv_given_as_jsonl_keeps_its_message_and_suggests_the_csv_format() -> None:
    code, _, err = run("report", str(SNOW), "--format", "csmcore-jsonl", "--quiet")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "this is not csmcore-jsonl" in err
    assert "try --format servicenow" in err


def test_a_header_no_format_has_names_the_columns_and_the_known_formats(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.csv"
    long = "a column name far too long to be shown whole in a one-line message"
    path.write_text(f"id,when,what,who,{long},six,seven\n1,2,3,4,5,6,7\n", encoding="utf-8")
    code, _, err = run("report", str(path), "--format", "servicenow", "--quiet")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "--format servicenow" in err
    assert "'id', 'when', 'what', 'who'" in err
    assert long not in err  # abbreviated
    assert "(7 in all)" in err
    assert "try --format" not in err
    assert "csmcore-jsonl, helpdesk-log, servicenow" in err


def test_a_byte_order_mark_is_no_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    header = "case:concept:name,concept:name,time:timestamp,org:resource"
    path.write_text("\ufeff" + header + "\nC1,Closed,2024-05-06 09:00:00,V\n", encoding="utf-8")
    code, _, err = run("report", str(path), "--format", "servicenow", "--quiet")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "try --format helpdesk-log" in err


def test_no_hint_when_the_header_fits_the_format_and_the_fault_is_elsewhere(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.csv"
    header = "case:concept:name,concept:name,time:timestamp,org:resource"
    path.write_text(f'{header}\nC1,"{"x" * 200_000}",2024-05-06 09:00:00,V\n', encoding="utf-8")
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "--quiet")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "cannot be read past here" in err
    assert "try --format" not in err
    assert "in all" not in err


@attrs.frozen
class _Declared:
    """A third-party importer that declares its columns."""

    name: str = "test-declared"
    summary: str = "a test format with the columns ticket and opened"
    header_lines: int = 1
    required_columns: tuple[str, ...] = ("ticket", "opened")

    def read(
        self, stream: TextIO, *, options: ImportOptions, report: ImportReport
    ) -> Iterator[ImportedTicket]:
        return iter(())


@attrs.frozen
class _Undeclared:
    """A third-party importer written before the attribute existed."""

    name: str = "test-undeclared"
    summary: str = "declares no columns"
    header_lines: int = 0

    def read(
        self, stream: TextIO, *, options: ImportOptions, report: ImportReport
    ) -> Iterator[ImportedTicket]:
        return iter(())


def test_the_suggestion_comes_from_the_registered_importers(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("opened,ticket,note\n2024-05-06,T1,n\n", encoding="utf-8")
    assert formats_matching(["opened", "ticket", "note"]) == []
    register_importer(_Declared())
    try:
        assert formats_matching(["opened", "ticket", "note"]) == ["test-declared"]
        code, _, err = run("report", str(path), "--format", "servicenow", "--quiet")
        assert code == _app.EXIT_BAD_INPUT, err
        assert "try --format test-declared" in err
    finally:
        unregister_importer("test-declared")
    code, _, err = run("report", str(path), "--format", "servicenow", "--quiet")
    assert "try --format" not in err


def test_an_importer_without_declared_columns_still_registers_and_declares_none() -> None:
    undeclared = register_importer(_Undeclared())
    try:
        assert required_columns(undeclared) == ()
        assert "test-undeclared" not in formats_matching(["anything"])
        assert formats_matching([]) == []
    finally:
        unregister_importer("test-undeclared")
    assert required_columns(importer_named("csmcore-jsonl")) == ()


@pytest.mark.parametrize("bad", ["ticket", ("ticket", 3), ("",), 7])
def test_badly_declared_columns_are_refused(bad: Any) -> None:
    importer = attrs.evolve(_Declared(), required_columns=bad)
    with pytest.raises(ValidationError, match="required_columns"):
        register_importer(importer)
    assert "test-declared" not in importers.importer_names()


@pytest.mark.parametrize("name", ["helpdesk-log", "servicenow"])
def test_the_built_in_csv_importers_declare_exactly_the_columns_they_need(name: str) -> None:
    importer = importer_named(name)
    columns = required_columns(importer)
    assert columns

    def read(header: list[str]) -> None:
        stream = io.StringIO(",".join(header) + "\n")
        list(importer.read(stream, options=ImportOptions(), report=ImportReport()))

    read(list(columns))  # all of them: the header is accepted
    for left_out in columns:
        with pytest.raises(ValidationError, match="is not a column"):
            read([c for c in columns if c != left_out])
