"""The ``csmcore`` command end to end: exit codes, outputs, stores, and the shared data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from csmcore.cli import _app, main
from csmcore.cli.report import SCHEMA
from csmcore.conditions import Always
from csmcore.storage import open_store
from tests.sample_data import HELP, SNOW, needs_data


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app.cli, list(args), prog_name="csmcore")
    code = result.exit_code
    return code, result.stdout, result.stderr


def test_help_explains_every_command_with_an_example() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("demo", "report", "backtest", "export"):
        assert command in out
    for command in ("demo", "report", "backtest", "export"):
        code, out, _ = run(command, "--help")
        assert code == 0
        assert "Example" in out
        assert "csmcore " in out


def test_report_help_lists_every_option() -> None:
    _, out, _ = run("report", "--help")
    for option in (
        "--format",
        "--policy",
        "--calendar",
        "--timezone",
        "--store",
        "--html",
        "--json",
        "--strict",
        "--quiet",
        "--at",
    ):
        assert option in out


@needs_data
def test_report_on_the_servicenow_sample(tmp_path: Path) -> None:
    out_json = tmp_path / "r.json"
    code, out, err = run("report", str(SNOW), "--format", "servicenow", "--json", str(out_json))
    assert code == 0, err
    assert "SLA achievement" in out
    assert "Backlog" in out
    assert "importing" not in err  # no progress bar when stderr is not a terminal
    figures = json.loads(out_json.read_text(encoding="utf-8"))
    assert figures["schema"] == SCHEMA
    assert figures["tickets"] == 150
    assert figures["sections"]["import"]["rows"] == 972
    assert figures["sections"]["made_sla"]["compared"] == 150


@needs_data
def test_report_on_the_helpdesk_log_in_rome_time() -> None:
    code, out, err = run(
        "report", str(HELP), "--format", "helpdesk-log", "--timezone", "Europe/Rome", "--quiet"
    )
    assert code == 0, err
    assert out == ""  # --quiet prints no report


def test_a_usage_error_exits_2() -> None:
    code, _, err = run("report", "x.csv", "--format", "zendesk")
    assert code == _app.EXIT_USAGE
    assert "zendesk" in err


def test_a_missing_input_file_exits_3(tmp_path: Path) -> None:
    code, _, err = run("report", str(tmp_path / "none.csv"), "--format", "servicenow")
    assert code == _app.EXIT_BAD_INPUT
    assert "none.csv: cannot be read" in err


def test_a_bad_policy_file_exits_3_naming_the_path(tmp_path: Path) -> None:
    policy = tmp_path / "bad.toml"
    policy.write_text(
        '[[policies]]\nname = "a"\nposition = 1\ndefault = true\n'
        '[[policies.targets]]\nmetric = "first_reply"\nwithin = "soon"\n'
    )
    data = tmp_path / "in.jsonl"
    data.write_text("")
    code, _, err = run("report", str(data), "--format", "csmcore-jsonl", "--policy", str(policy))
    assert code == _app.EXIT_BAD_INPUT
    assert "bad.toml: policies[0].targets[0].within: 'soon' is not a duration" in err


def test_a_bad_at_exits_3(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("")
    code, _, err = run("report", str(data), "--format", "csmcore-jsonl", "--at", "2025-01-01")
    assert code == _app.EXIT_BAD_INPUT
    assert "no UTC offset" in err


@pytest.mark.parametrize("at", ["0001-01-01T00:00+01:00", "0003-01-01T00:00Z", "9998-12-31T00:00Z"])
@pytest.mark.parametrize("command", ["report", "backtest"])
def test_an_at_outside_the_supported_instants_exits_3_naming_it(
    tmp_path: Path, at: str, command: str
) -> None:
    # the year 1 crashed the report (OverflowError: an internal error) and the year 9998 was
    # named as at=datetime.datetime(9998, 12, 31, ...)
    code, out, err = run(
        command,
        str(_log(tmp_path)),
        "--format",
        "helpdesk-log",
        "--at",
        at,
        *(["--policy", str(_policy(tmp_path))] if command == "backtest" else []),
    )
    assert code == _app.EXIT_BAD_INPUT, out + err
    text = " ".join(err.split())
    assert f"--at {at!r} is outside the supported range of instants; csmcore accepts" in text
    assert "Traceback" not in err


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[policies]]\nname = "p"\nposition = 1\ndefault = true\n'
        '[[policies.targets]]\nmetric = "first_reply"\nwithin = "1h"\n',
        encoding="utf-8",
    )
    return path


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        "C1,Take in charge ticket,2024-05-06 09:40:00,Value 2\n"
        "C1,Resolve ticket,2024-05-07 11:00:00,Value 2\n"
        "C8,Resolve ticket,2024-05-06 09:00:00,Value 2\n"
        "C8,Closed,2024-05-07 09:00:00,Value 2\n"
        "C8,Take in charge ticket,2024-05-08 09:00:00,Value 3\n",
        encoding="utf-8",
    )
    return path


def test_strict_stops_with_exit_3_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    code, _, err = run(
        "report", str(_log(tmp_path)), "--format", "helpdesk-log", "--strict", "--store", url
    )
    assert code == _app.EXIT_BAD_INPUT
    # C8's third row is data row 5, line 6 of the file (under the header).
    assert "rejected under --strict" in err
    assert "ticket 'C8', line 6: row 5:" in err
    store = open_store(url)
    try:
        assert store.tickets.count(Always()) == 0
    finally:
        store.close()


def test_store_is_all_or_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    code, _, err = run(
        "report", str(_log(tmp_path)), "--format", "helpdesk-log", "--store", url, "--quiet"
    )
    assert code == 0, err
    # A second import of the same tickets conflicts and must change nothing.
    code, _, err = run(
        "report", str(_log(tmp_path)), "--format", "helpdesk-log", "--store", url, "--quiet"
    )
    assert code == _app.EXIT_BAD_INPUT
    assert "C1" in err
    store = open_store(url)
    try:
        assert sorted(t.id for t in store.tickets.find(Always())) == ["C1", "C8"]
    finally:
        store.close()


@needs_data
def test_export_then_report_from_jsonl_gives_the_same_figures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    first = tmp_path / "a.json"
    code, _, err = run(
        "report",
        str(SNOW),
        "--format",
        "servicenow",
        "--store",
        url,
        "--json",
        str(first),
        "--quiet",
    )
    assert code == 0, err
    exported = tmp_path / "t.jsonl"
    code, _, err = run("export", "--store", url, str(exported))
    assert code == 0
    assert "exported 150 tickets" in err
    second = tmp_path / "b.json"
    code, _, err = run(
        "report", str(exported), "--format", "csmcore-jsonl", "--json", str(second), "--quiet"
    )
    assert code == 0, err
    a = json.loads(first.read_text())
    b = json.loads(second.read_text())
    for key in ("volume", "sla", "backlog", "made_sla"):
        assert a["sections"][key] == b["sections"][key]


@needs_data
def test_backtest_shows_both_books(tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text(
        '[[policies]]\nname = "s"\nposition = 1\ndefault = true\n'
        '[[policies.targets]]\nmetric = "first_reply"\nwithin = "10m"\n'
    )
    code, out, err = run("report", str(SNOW), "--format", "servicenow", "--policy", str(strict))
    assert code == 0, err
    assert "Conventions" in out
    assert "policy: strict.toml; targets: first_reply (business time)" in out
    code, out, err = run("backtest", str(SNOW), "--format", "servicenow", "--policy", str(strict))
    assert code == 0, err
    assert "first_reply" in out
    assert "candidate" in out
    assert "now" in out


def test_demo_is_deterministic_by_seed(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        out_json = tmp_path / f"{name}.json"
        code, _, err = run(
            "demo",
            "--seed",
            "5",
            "--weeks",
            "1",
            "--path",
            str(tmp_path / f"{name}.db"),
            "--json",
            str(out_json),
            "--quiet",
        )
        assert code == 0, err
        assert f"demo store: {(tmp_path / f'{name}.db').resolve()}" in err
        outputs.append(json.loads(out_json.read_text()))
    assert outputs[0] == outputs[1]
    assert outputs[0]["tickets"] > 0


def test_an_internal_failure_exits_1_with_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("csmcore.cli.report.build_report", boom)
    data = tmp_path / "in.jsonl"
    data.write_text("")
    code, _, err = run("report", str(data), "--format", "csmcore-jsonl")
    assert code == _app.EXIT_INTERNAL
    assert "kaboom" in err
    assert "internal error" in err


def test_main_returns_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["report", str(tmp_path / "no.csv"), "--format", "servicenow"]) == 3
    assert main(["report"]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_an_output_that_cannot_be_written_exits_3_naming_it(tmp_path: Path) -> None:
    # a missing folder is the user's mistake, not a bug: exit 3 (it was 1, "internal error")
    data = tmp_path / "in.jsonl"
    data.write_text("")
    missing = tmp_path / "no such folder"
    for option in ("--json", "--html"):
        out = missing / "r.out"
        code, _, err = run("report", str(data), "--format", "csmcore-jsonl", option, str(out))
        assert code == _app.EXIT_BAD_INPUT, err
        assert f"{out}: cannot be written" in err
        assert "internal error" not in err
    store = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(store).close()  # export reads an existing store
    code, _, err = run("export", "--store", store, str(missing / "t.jsonl"))
    assert code == _app.EXIT_BAD_INPUT, err
    assert "t.jsonl: cannot be written" in err
    blocker = tmp_path / "a file"
    blocker.write_text("")
    code, _, err = run("demo", "--weeks", "1", "--quiet", "--path", str(blocker / "demo.db"))
    assert code == _app.EXIT_BAD_INPUT, err
    assert "demo.db: cannot be written" in err


def test_lines_are_file_lines_past_multi_line_cells_and_blank_lines(tmp_path: Path) -> None:
    # A quoted cell spanning two lines, a blank line between rows and one at the end: the
    # blank lines are no rows (they were read as rows without a case, each a rejected
    # "ticket"), and C2's bad timestamp is on line 5 of the file (it was reported as line 4).
    path = tmp_path / "log.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        'C1,Assign seriousness,2024-05-06 09:00:00,"Value\n1"\n'
        "\n"
        "C2,Assign seriousness,not a time,Value 2\n"
        "\n",
        encoding="utf-8",
    )
    out = tmp_path / "r.json"
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "-q", "--json", str(out))
    assert code == 0, err
    figures = json.loads(out.read_text(encoding="utf-8"))["sections"]["import"]
    assert (figures["rows"], figures["tickets"], figures["rejected_rows"]) == (2, 1, 1)
    assert [(r["ticket"], r["line"]) for r in figures["rejected"]] == [("C2", 5)]
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "--strict")
    assert code == _app.EXIT_BAD_INPUT
    assert "1 ticket(s) rejected under --strict; first: ticket 'C2', line 5: row 2:" in err


def test_backtest_judges_only_the_tickets_created_by_at(tmp_path: Path) -> None:
    # At 09:30 only C8 (created 09:00) exists; C1 (09:40) was counted as a ticket judged.
    policy = tmp_path / "p.toml"
    policy.write_text(
        '[[policies]]\nname = "s"\nposition = 1\ndefault = true\n'
        '[[policies.targets]]\nmetric = "first_reply"\nwithin = "10m"\n'
    )
    args = ["backtest", str(_log(tmp_path)), "--format", "helpdesk-log", "--policy", str(policy)]
    code, out, err = run(*args, "--at", "2024-05-06T09:30+00:00")
    assert code == 0, err
    assert "Achievement over 1 tickets at 2024-05-06T09:30:00+00:00" in " ".join(out.split())


def test_the_instant_judged_is_shown_in_the_timezone_given(tmp_path: Path) -> None:
    # The log's last event is 2024-05-08 09:00 wall-clock time in --timezone; the report and
    # the backtest printed it as 07:00+00:00 under "dates in Europe/Rome".
    policy = tmp_path / "p.toml"
    policy.write_text(
        '[[policies]]\nname = "s"\nposition = 1\ndefault = true\n'
        '[[policies.targets]]\nmetric = "first_reply"\nwithin = "10m"\n'
    )
    log = str(_log(tmp_path))
    common = ["--format", "helpdesk-log", "--timezone", "Europe/Rome"]
    code, out, err = run("report", log, *common)
    assert code == 0, err
    assert "judged at 2024-05-08T09:00:00+02:00 (dates in Europe/Rome)" in " ".join(out.split())
    code, out, err = run("backtest", log, *common, "--policy", str(policy))
    assert code == 0, err
    assert "Achievement over 2 tickets at 2024-05-08T09:00:00+02:00" in " ".join(out.split())


def test_a_csv_cell_over_the_csv_modules_limit_exits_3_naming_file_and_line(
    tmp_path: Path,
) -> None:
    # csv.Error ("field larger than field limit") escaped as an internal error, exit code 1
    path = tmp_path / "big.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        "C1,Assign seriousness,2024-05-06 09:00:00,Value 1\n"
        f'C2,Assign seriousness,2024-05-06 09:00:00,"{"x" * 200_000}"\n',
        encoding="utf-8",
    )
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "-q")
    assert code == _app.EXIT_BAD_INPUT, err
    assert f"{path}: line 3: the CSV cannot be read past here: field larger" in " ".join(
        err.split()
    )
    header = tmp_path / "header.csv"
    header.write_text(f'"{"x" * 200_000}"\n', encoding="utf-8")
    code, _, err = run("report", str(header), "--format", "servicenow", "-q")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "line 1: the CSV header cannot be read" in err


def test_ids_and_names_that_look_like_rich_markup_are_printed_as_written(tmp_path: Path) -> None:
    # "[/x]C1" crashed the text report (rich MarkupError, exit 1); "[red]C2" was shown as C2
    path = tmp_path / "markup.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource\n"
        "[/x]C1,Assign seriousness,2024-05-06 09:00:00,Value 1\n"
        "[red]C2,Assign seriousness,2024-05-06 09:00:00,Value 1\n"
        "C3,Closed,2024-05-09 09:00:00,Value 1\n",
        encoding="utf-8",
    )
    code, out, err = run("report", str(path), "--format", "helpdesk-log")
    assert code == 0, err
    assert "[/x]C1" in out
    assert "[red]C2" in out


def test_the_progress_bar_shows_a_file_name_that_looks_like_markup_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the bar's description was parsed as rich markup: "[red]desk.csv" showed as a red desk.csv
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    path = tmp_path / "[red]desk.csv"
    path.write_text("a\n", encoding="utf-8")
    with _app._progress(path, quiet=False) as stream:
        assert stream.read() == "a\n"
    assert "[red]desk.csv" in terminal.getvalue()


@needs_data
@pytest.mark.parametrize("fmt", ["helpdesk-log", "servicenow"])
def test_a_truncated_last_row_is_named_as_short_not_as_a_missing_case(
    tmp_path: Path, fmt: str
) -> None:
    # an export cut off mid-row: the case column is past its end. The helpdesk log's case is
    # its 8th column, so the cut row was reported as "the case (ticket id) is missing"
    source = HELP if fmt == "helpdesk-log" else SNOW
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[:4]) + lines[4][:40], encoding="utf-8")
    code, _, err = run("report", str(cut), "--format", fmt, "--strict", "-q")
    assert code == _app.EXIT_BAD_INPUT, err
    text = " ".join(err.split())
    assert f"{cut}: 1 ticket(s) rejected under --strict" in text
    assert re.search(r"line 5: row 4 has \d+ cells; the header has \d+", text), text
    assert "Traceback" not in err


def test_text_that_is_not_utf8_exits_3_naming_the_line_and_the_byte(tmp_path: Path) -> None:
    # a Latin-1 export: the error named neither the line nor the byte
    path = tmp_path / "latin1.csv"
    rows = ["case:concept:name,concept:name,time:timestamp,org:resource\n"]
    rows += [f"C{i},Assign seriousness,2024-05-06 09:00:00,Value {i}\n" for i in range(3000)]
    rows[2500] = "C2500,Assign seriousness,2024-05-06 09:00:00,Andr\u00e9\n"
    path.write_bytes("".join(rows).encode("latin-1"))
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "-q")
    assert code == _app.EXIT_BAD_INPUT, err
    text = " ".join(err.split())
    assert f"{path}: line 2501: is not UTF-8 text (byte 0xe9: invalid continuation byte)" in text
    assert "Traceback" not in err
    policy = tmp_path / "policy.toml"
    policy.write_bytes("# SLA\n# r\u00e9ponse\n".encode("latin-1"))
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "--policy", str(policy))
    assert code == _app.EXIT_BAD_INPUT, err
    assert f"{policy}: line 2: is not UTF-8 text (byte 0xe9" in " ".join(err.split())


@needs_data
def test_export_into_a_pipe_closed_early_stops_quietly(tmp_path: Path) -> None:
    # `csmcore export --store URL | head -1`: the reader goes away after one line. The command
    # printed a BrokenPipeError traceback and called it an internal error (a bug to report).
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    code, _, err = run("report", str(SNOW), "--format", "servicenow", "--store", url, "-q")
    assert code == 0, err
    command = [sys.executable, "-m", "csmcore", "export", "--store", url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith(b'{"type":"ticket"')
        process.stdout.close()  # 150 tickets are ~220 kB: far more than a pipe holds
        err_bytes = process.stderr.read()
        code = process.wait(timeout=60)
    assert b"Traceback" not in err_bytes
    assert b"internal error" not in err_bytes
    assert code == _app.EXIT_INTERNAL


@needs_data
@pytest.mark.parametrize("source", ["servicenow", "helpdesk"])
def test_a_csv_read_as_csmcore_jsonl_exits_3_saying_the_format_is_wrong(
    source: str, tmp_path: Path
) -> None:
    # every line was rejected as "not a JSON document" and the command printed a report of
    # 0 tickets, judged at the current time, with exit code 0
    path = SNOW if source == "servicenow" else HELP
    code, out, err = run("report", str(path), "--format", "csmcore-jsonl")
    assert code == _app.EXIT_BAD_INPUT, out
    text = " ".join(err.split())
    assert f"{path}: no line is a JSON document, so this is not csmcore-jsonl" in text
    assert "line 1: not a JSON document" in text
    assert "known formats: csmcore-jsonl, helpdesk-log, servicenow" in text
    assert "Traceback" not in err
    assert out == ""


def test_a_jsonl_file_with_one_bad_line_still_reports_the_rest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    code, _, err = run("demo", "--weeks", "1", "--path", str(tmp_path / "desk.db"), "-q")
    assert code == 0, err
    exported = tmp_path / "t.jsonl"
    code, _, err = run("export", "--store", url, str(exported))
    assert code == 0, err
    lines = exported.read_text(encoding="utf-8").splitlines(keepends=True)
    exported.write_text("not json\n" + "".join(lines[1:]), encoding="utf-8")
    code, out, err = run("report", str(exported), "--format", "csmcore-jsonl")
    assert code == 0, err
    assert f"{len(lines) - 1:,} tickets" in out
    assert "rejected ?: line 1: not a JSON document" in " ".join(out.split())


def test_a_file_cut_inside_a_character_exits_3_naming_the_line_and_the_byte(
    tmp_path: Path,
) -> None:
    # a UTF-8 export truncated between the two bytes of "é": the message named neither
    path = tmp_path / "cut.csv"
    text = "case:concept:name,concept:name,time:timestamp,org:resource\n"
    text += "C1,Assign seriousness,2024-05-06 09:00:00,Andr\u00e9\n"
    path.write_bytes(text.encode("utf-8")[:-2])
    code, _, err = run("report", str(path), "--format", "helpdesk-log", "-q")
    assert code == _app.EXIT_BAD_INPUT, err
    text = " ".join(err.split())
    assert f"{path}: line 2: is not UTF-8 text (byte 0xc3: unexpected end of data)" in text
    assert "Traceback" not in err
