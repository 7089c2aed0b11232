"""``csmcore report`` on a 120,000-row ServiceNow export: the whole command, and where time goes.

Run ``python benchmarks/bench_report.py`` (``--rows N`` for another size, ``--quick`` for
24,000 rows). The input is the project's ServiceNow sample
(``<repo>/../shared/data/servicenow_incident_sample.csv``: the first 972 rows of the "Incident
management process enriched event log", C. Amaral, M. Fantinato, S. Peres, UCI Machine Learning
Repository, 2018, CC BY 4.0) replayed with new incident numbers and every date shifted by whole
weeks per replay, written to a temporary CSV file of about 120,000 rows (one row per audit
event).

Measured:

1. the real command in a fresh process, as a support lead runs it:
   ``csmcore report FILE --format servicenow --json out.json --html out.html`` (wall clock,
   including interpreter start and imports); goal (issue 15): under 20 s on a 2-core machine;
2. the same work in this process, phase by phase (import, SLA evaluation, report figures, JSON,
   HTML, text), so the total can be read as a breakdown;
3. peers for scale: ``csv.reader`` alone over the file, and pandas ``read_csv`` of it (C parser,
   all columns as strings) — reading the file is the floor any tool pays.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from _common import environment_lines, heading
from csmcore.cli import importers
from csmcore.cli._text import render_text
from csmcore.cli.policy_file import default_book, default_calendar
from csmcore.cli.report import ReportInput, build_report
from csmcore.tickets import Ticket
from csmcore.tickets.importing import ImportReport

HERE = Path(__file__).resolve().parent
SAMPLE = (
    Path(os.environ.get("CSMCORE_SAMPLE_DATA") or HERE.parent.parent / "shared" / "data")
    / "servicenow_incident_sample.csv"
)
STAMPED = ("opened_at", "sys_created_at", "sys_updated_at", "resolved_at", "closed_at")


def _shift(text: str, weeks: int) -> str:
    """``d/m/yyyy HH:MM`` moved ``weeks`` weeks later; other text unchanged."""
    try:
        value = datetime.strptime(text, "%d/%m/%Y %H:%M")
    except ValueError:
        return text
    moved = value + timedelta(weeks=weeks)
    return f"{moved.day}/{moved.month}/{moved.year} {moved.hour:02d}:{moved.minute:02d}"


def scaled_export(rows: int, out: Path) -> int:
    """Write about ``rows`` rows replaying the sample; returns the rows written."""
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        sample = list(reader)
    case = header.index("number")
    stamped = [header.index(c) for c in STAMPED]
    written = 0
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        replay = 0
        while written < rows:
            for row in sample:
                copy = list(row)
                copy[case] = f"{row[case]}-{replay}"
                for i in stamped:
                    copy[i] = _shift(row[i], replay)
                writer.writerow(copy)
                written += 1
            replay += 1
    return written


T = TypeVar("T")


def _timed(label: str, func: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:8.2f} s")
    return seconds, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=120_000, help="rows in the export")
    parser.add_argument("--quick", action="store_true", help="24,000 rows: a smoke run")
    args = parser.parse_args()
    rows = 24_000 if args.quick else args.rows
    if not SAMPLE.is_file():
        print(f"the sample {SAMPLE} is absent (set CSMCORE_SAMPLE_DATA)", file=sys.stderr)
        return 2
    print(heading("csmcore report on a ServiceNow export"))
    for line in environment_lines():
        print(line)
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "incidents.csv"
        written = scaled_export(rows, export)
        print(f"  export: {written:,} rows, {export.stat().st_size / 1e6:.1f} MB")

        print(heading("1. the command, in a fresh process"))
        command = [
            sys.executable,
            "-c",
            "import sys; from csmcore.cli import main; sys.exit(main())",
            "report",
            str(export),
            "--format",
            "servicenow",
            "--quiet",
            "--json",
            str(Path(folder) / "out.json"),
            "--html",
            str(Path(folder) / "out.html"),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        whole = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        verdict = "PASS" if whole < 20 else "MISS"
        print(
            f"  csmcore report (wall clock)                    {whole:8.2f} s   "
            f"goal < 20 s: {verdict}"
        )

        print(heading("2. the same work, phase by phase (this process)"))
        report = ImportReport()

        def load() -> list[Ticket]:
            with export.open(newline="", encoding="utf-8") as f:
                found = importers.importer_named("servicenow").read(
                    f, options=importers.ImportOptions(), report=report
                )
                return [i.ticket for i in found]

        t_import, tickets = _timed("import (read, parse, build tickets)", load)
        book = default_book(default_calendar("UTC"))
        at = max(t.updated_at for t in tickets)
        data = ReportInput(
            tickets=tickets,
            book=book,
            at=at,
            import_report=report,
        )
        t_sla, _ = _timed("SLA evaluation (every ticket, 2 targets)", data.results)
        t_fig, figures = _timed("report figures (sections)", lambda: build_report(data))
        t_json, _ = _timed("JSON", lambda: json.dumps(figures))
        try:
            from csmcore.cli.html import render_html

            t_html, _ = _timed("HTML (plotly)", lambda: render_html(figures))
        except ImportError:
            t_html = 0.0
            print("  HTML: plotly not installed ([report] extra); skipped")
        from rich.console import Console

        sink = Console(file=io.StringIO(), width=100)
        t_text, _ = _timed("text (rich)", lambda: render_text(figures, sink))
        total = t_import + t_sla + t_fig + t_json + t_html + t_text
        print(
            f"  {'sum of phases':<44} {total:8.2f} s  ({report.tickets:,} tickets, "
            f"{report.events:,} events)"
        )
        print(f"  {'interpreter start + imports (1. minus sum)':<44} {whole - total:8.2f} s")

        print(heading("3. reading the file alone (peers)"))

        def read_csv() -> int:
            with export.open(newline="", encoding="utf-8") as f:
                return sum(1 for _ in csv.reader(f))

        _timed("csv.reader over the file", read_csv)
        try:
            import pandas as pd

            _timed("pandas read_csv (all str)", lambda: pd.read_csv(export, dtype=str))
        except ImportError:
            print("  pandas not installed ([bench] extra); skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
