"""Import benchmark: ``csmcore.tickets.importing`` on the ServiceNow sample scaled up.

Run ``python benchmarks/bench_import.py`` (``--quick`` for 100,000 rows). The input is the
project's ServiceNow sample (``<repo>/../shared/data/servicenow_incident_sample.csv``, or
``--data``): the first 972 rows of the "Incident management process enriched event log"
(C. Amaral, M. Fantinato, S. Peres, UCI Machine Learning Repository, 2018, CC BY 4.0),
repeated with fresh case ids (``INC0000045-17``...) to about 1,000,000 rows.

Measured, each the best of ``--repeats`` runs, by CPU time of this process and by wall clock:

1. csmcore ``import_snapshots`` (repair policy) on rows already split into cells, consuming
   every ticket; the rows come from a generator that copies each sample row with its new case
   id (its own cost is measured alone and printed, not subtracted);
2. the same from CSV text: ``csv.reader`` over the scaled text, then the import (on the first
   ``--text-rows`` rows, 200,000 by default: parsed text of a million rows takes gigabytes);
3. the ticket model's share: the same events built again from their attributes and folded
   into tickets (no rows read), next to the import of the same rows;
4. peers for scale: the generator alone; ``csv.reader`` alone over the same text; a plain loop
   that groups rows by case and diffs consecutive rows into ``(column, old, new)`` changes
   (what a hand-written importer does before it builds anything); pandas ``read_csv`` of the
   same text (C parser, all columns as strings).

Goal (issue 10): at least 150,000 rows/s for 1. by CPU time. ``--profile`` adds a cProfile of
100,000 rows.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from _common import environment_lines, heading
from csmcore.tickets import Ticket
from csmcore.tickets.importing import (
    SERVICENOW,
    ImportReport,
    Timestamps,
    import_snapshots,
)

GOAL = 150_000
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load(data: Path) -> tuple[list[str], list[list[str]]]:
    with (data / "servicenow_incident_sample.csv").open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def scaled(rows: list[list[str]], copies: int) -> Iterator[list[str]]:
    """The sample ``copies`` times, each copy with fresh case ids (``<number>-<copy>``)."""
    for copy in range(copies):
        suffix = f"-{copy}"
        for row in rows:
            new = row.copy()
            new[0] = row[0] + suffix
            yield new


def scaled_text(header: list[str], rows: list[list[str]], copies: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(scaled(rows, copies))
    return out.getvalue()


def timed(func: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """(best CPU seconds, best wall seconds, last result) over ``repeats`` runs."""
    cpu_best = wall_best = float("inf")
    result: object = None
    for _ in range(repeats):
        wall = time.perf_counter()
        cpu = time.process_time()
        result = func()
        cpu_best = min(cpu_best, time.process_time() - cpu)
        wall_best = min(wall_best, time.perf_counter() - wall)
    return cpu_best, wall_best, result


def line(label: str, rows: int, cpu: float, wall: float, note: str = "") -> str:
    text = (
        f"  {label:<46} {rows / cpu:>12,.0f} rows/s CPU  {rows / wall:>12,.0f} rows/s wall  "
        f"({cpu:.2f} s CPU, {wall:.2f} s wall)"
    )
    return f"{text}  {note}" if note else text


def import_rows(header: Sequence[str], rows: Iterator[list[str]]) -> ImportReport:
    report = ImportReport()
    stamps = Timestamps(zone="UTC", day_first=True)
    for _ in import_snapshots(
        rows, header=header, format=SERVICENOW, timestamps=stamps, report=report
    ):
        pass
    return report


Spec = list[tuple[type[Any], dict[str, Any]]]


def model_specs(header: Sequence[str], base: list[list[str]], copies: int) -> list[Spec]:
    """Each imported ticket's events as (class, constructor arguments)."""
    stamps = Timestamps(zone="UTC", day_first=True)
    specs = []
    for imported in import_snapshots(
        scaled(base, copies), header=header, format=SERVICENOW, timestamps=stamps
    ):
        spec = []
        for event in imported.ticket.events:
            cls = type(event)
            arguments = {a.name: getattr(event, a.name) for a in attrs.fields(cls) if a.init}
            for name in ("fields", "changes"):
                if name in arguments:
                    arguments[name] = dict(arguments[name])
            spec.append((cls, arguments))
        specs.append(spec)
    return specs


def rebuild(specs: list[Spec]) -> int:
    """Build every event again and fold each ticket: the ticket model's work alone."""
    for spec in specs:
        Ticket.from_events([cls(**arguments) for cls, arguments in spec])
    return len(specs)


def plain_diff(rows: Iterator[list[str]]) -> int:
    """Group by case, diff consecutive rows into (column, old, new): a peer for scale."""
    changes = 0
    previous: list[str] | None = None
    for row in rows:
        if previous is not None and previous[0] == row[0]:
            found = [
                (i, old, new)
                for i, (old, new) in enumerate(zip(previous, row, strict=True))
                if old != new
            ]
            changes += len(found)
        previous = row
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to import (about)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows: a smoke run")
    parser.add_argument(
        "--text-rows", type=int, default=200_000, help="rows for the measurements from CSV text"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats; the best one counts")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--profile", action="store_true", help="cProfile of 100,000 rows")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 2 if the goal is missed")
    args = parser.parse_args(argv)
    if not (args.data / "servicenow_incident_sample.csv").is_file():
        print(f"the ServiceNow sample is not in {args.data} (use --data)", file=sys.stderr)
        return 1
    header, base = load(args.data)
    target = 100_000 if args.quick else args.rows
    copies = max(1, round(target / len(base)))
    total = copies * len(base)

    print(heading("import benchmark (issue 10)"))
    print("\n".join(environment_lines()))
    print(f"  load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"  input: the ServiceNow sample ({len(base)} rows, {len({r[0] for r in base})} "
        f"incidents; Amaral, Fantinato, Peres, UCI ML Repository 2018, CC BY 4.0) x {copies:,} "
        f"with fresh case ids = {total:,} rows"
    )

    print(heading("csmcore"))
    cpu, wall, report = timed(lambda: import_rows(header, scaled(base, copies)), args.repeats)
    assert isinstance(report, ImportReport)
    assert report.balanced
    assert report.rows == total
    ours = total / cpu
    verdict = "PASS" if ours >= GOAL else "MISS"
    print(line("import_snapshots (repair), rows in memory", total, cpu, wall))
    print(f"    goal >= {GOAL:,} rows/s by CPU time: {verdict}")
    print("    " + report.summary().replace("\n", "\n    "))
    # CSV text of the whole input would take gigabytes once parsed by pandas: the measurements
    # from text use the first --text-rows rows.
    text_copies = min(copies, max(1, round(args.text_rows / len(base))))
    text_total = text_copies * len(base)
    text = scaled_text(header, base, text_copies)

    def from_text() -> ImportReport:
        stream = io.StringIO(text)
        reader = csv.reader(stream)
        return import_rows(next(reader), reader)

    cpu_t, wall_t, _ = timed(from_text, args.repeats)
    print(line(f"csv.reader + import_snapshots ({text_total:,} rows)", text_total, cpu_t, wall_t))

    # The ticket model's share: the same events built again from their attributes (with every
    # converter and validator) and folded into tickets, without reading any row.
    specs = model_specs(header, base, text_copies)
    cpu_m, wall_m, _ = timed(lambda: rebuild(specs), args.repeats)
    print(
        line(f"ticket model alone ({text_total:,} rows' events)", text_total, cpu_m, wall_m),
    )
    cpu_s, _wall_s, _ = timed(lambda: import_rows(header, scaled(base, text_copies)), args.repeats)
    share = cpu_m / cpu_s
    print(
        f"    the model is {share:.0%} of the import's CPU time on the same rows "
        f"({text_total / cpu_s:,.0f} rows/s); reading and diffing rows is the rest"
    )

    print(heading("peers and parts, for scale"))
    cpu_g, wall_g, _ = timed(lambda: sum(1 for _ in scaled(base, copies)), args.repeats)
    print(line("the row generator alone", total, cpu_g, wall_g))
    cpu_d, wall_d, _ = timed(lambda: plain_diff(scaled(base, copies)), args.repeats)
    print(line("plain loop: group by case, diff rows", total, cpu_d, wall_d))
    cpu_c, wall_c, _ = timed(lambda: sum(1 for _ in csv.reader(io.StringIO(text))), args.repeats)
    print(line(f"csv.reader alone ({text_total:,} rows)", text_total, cpu_c, wall_c))
    try:
        import pandas as pd
    except ImportError:
        print("  pandas is not installed: skipped")
    else:
        cpu_p, wall_p, _ = timed(
            lambda: pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False),
            args.repeats,
        )
        print(line(f"pandas read_csv, strings ({text_total:,} rows)", text_total, cpu_p, wall_p))
    print(heading("ratios (CPU time)"))
    print(f"  csmcore import / plain diff loop: {ours / (total / cpu_d):6.2f}x")
    print(f"  csmcore import / csv.reader:      {ours / (text_total / cpu_c):6.2f}x")

    if args.profile:
        print(heading("cProfile of 100,000 rows (by own time)"))
        few = max(1, round(100_000 / len(base)))
        profiler = cProfile.Profile()
        profiler.enable()
        import_rows(header, scaled(base, few))
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
        print(out.getvalue())
    return 2 if args.fail_on_miss and verdict == "MISS" else 0


if __name__ == "__main__":
    sys.exit(main())
