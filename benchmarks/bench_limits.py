"""Issue 11's worst cases, timed: every call in the documented range answers, or is refused, in
well under a second.

Run from the repository root::

    .venv/bin/python benchmarks/bench_limits.py            # 5 repeats of each case
    .venv/bin/python benchmarks/bench_limits.py --quick    # 2 repeats: a smoke run

The tests prove these calls bounded by counting their work (years built and totalled, rules
read, subqueries issued) and guard against hangs only; the times are here. Each worst case runs
next to a baseline: the same call on a short span (a day or a week of business time, a one-line
SQL statement), so the figures show what the long span costs on top. Every case starts from new
objects (calendars cache what they compute), outside the timed call. No library offers these
calls with the same guarantees, so there is no peer: the baseline is csmcore itself.

PostgreSQL cases run when ``CSMCORE_TEST_POSTGRES_DSN`` is set (a throwaway schema is created
and dropped). Goal: each worst case under 1 s (best of the repeats), printed as PASS/MISS;
``--fail-on-miss`` exits with status 2 on a miss.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from _common import environment_lines, heading
from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.calendars._timeline import MAX_REACH
from csmcore.errors import CalendarError, StorageError
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget
from csmcore.storage import open_store
from csmcore.tickets import Priority, Role, Ticket

UTC = timezone.utc
START = datetime(2025, 1, 6, 10, tzinfo=UTC)
GOAL = 1.0


def berlin(rule: str | None = None) -> BusinessCalendar:
    return BusinessCalendar.weekly(
        "09:00", "17:00", timezone="Europe/Berlin", recurring_holidays=rule or ()
    )


def timed(setup: Callable[[], Any], call: Callable[[Any], object], repeats: int) -> float:
    """The best wall-clock seconds of ``call(setup())`` over ``repeats`` fresh setups."""
    best = float("inf")
    for _ in range(repeats):
        subject = setup()
        started = time.perf_counter()
        call(subject)
        best = min(best, time.perf_counter() - started)
    return best


def refused(call: Callable[[], object], error: type[Exception]) -> Callable[[Any], object]:
    def run(_: object) -> None:
        try:
            call()
        except error:
            return
        raise AssertionError("expected a refusal")

    return run


def sla_case(years: int) -> Callable[[Any], object]:
    def run(cal: BusinessCalendar) -> object:
        book = SlaBook(
            policies=[
                SlaPolicy(
                    name="std",
                    position=1,
                    default=True,
                    targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=timedelta(hours=2))],
                )
            ],
            calendar=cal,
        )
        ticket, _ = Ticket.create(
            at=START,
            ticket_id="T-1",
            created_by=Role.REQUESTER,
            channel="email",
            priority=Priority.NORMAL,
            requester="ann@example.com",
        )
        later = START.replace(year=START.year + years) if years else START + timedelta(days=1)
        book.evaluate(ticket, later)
        return book.next_change(ticket, later)

    return run


Case = tuple[str, Callable[[], Any], Callable[[Any], object], Callable[[Any], object]]
"""A label, a setup giving new objects, the worst case and its short-span baseline."""

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"


def calendar_cases() -> list[Case]:
    year_one = "DTSTART:00010101T000000\nRRULE:FREQ=WEEKLY;BYDAY=WE"
    recent = "DTSTART:20240101T000000\nRRULE:FREQ=WEEKLY;BYDAY=WE"
    late = datetime(9000, 1, 7, 16, tzinfo=UTC)
    return [
        (
            "add of the maximum reach (146,400 days)",
            berlin,
            lambda cal: cal.add(START, MAX_REACH),
            lambda cal: cal.add(START, timedelta(days=1)),
        ),
        (
            "elapsed from 2025 to 4025",
            berlin,
            lambda cal: cal.elapsed(START, START.replace(year=4025)),
            lambda cal: cal.elapsed(START, START + timedelta(days=7)),
        ),
        (
            "SlaBook.evaluate + next_change 2,000 years on",
            berlin,
            sla_case(2000),
            sla_case(0),
        ),
        (
            "weekly rule from year 1, add in year 9000",
            lambda: berlin(year_one),
            lambda cal: cal.add(late, timedelta(hours=2)),
            lambda cal: cal.add(START, timedelta(hours=2)),
        ),
        (
            "daily rule from year 1: refused when built",
            lambda: None,
            refused(lambda: berlin("DTSTART:00010101T000000\nRRULE:FREQ=DAILY"), CalendarError),
            lambda _: berlin(recent),
        ),
    ]


def sqlite_cases(folder: str) -> list[Case]:
    def store() -> Any:
        return open_store(f"sqlite:///{folder}/{uuid.uuid4().hex}.db?statement_timeout=0.2")

    return [
        (
            "SQLite runaway statement, statement_timeout=0.2",
            store,
            lambda s: _expect_storage_error(lambda: s.query_once(None, RUNAWAY)),
            lambda s: s.query_once(None, "SELECT 1"),
        ),
    ]


def _expect_storage_error(call: Callable[[], object]) -> None:
    try:
        call()
    except StorageError:
        return
    raise AssertionError("expected StorageError")


def postgres_cases(dsn: str) -> tuple[list[Case], Any]:
    sep = "&" if "?" in dsn else "?"
    schema = f"bench_limits_{uuid.uuid4().hex[:12]}"
    store: Any = open_store(f"{dsn}{sep}schema={schema}")
    tags = [f"tag-{n:04d}" for n in range(400)]
    from csmcore.testing.builders import make_ticket

    ticket = make_ticket("T-1", tags=set(tags))
    store.tickets.add(ticket)
    return [
        (
            "PostgreSQL count(HasTags(400 tags))",
            lambda: store,
            lambda s: s.tickets.count(cd.HasTags(tags)),
            lambda s: s.tickets.count(cd.HasTags(tags[:2])),
        ),
        (
            "PostgreSQL wrong port: StorageError",
            lambda: None,
            lambda _: _expect_storage_error(
                lambda: open_store("postgresql://postgres@127.0.0.1:1/x?pool_timeout=600")
            ),
            lambda _: store.query_once(None, "SELECT 1"),
        ),
    ], store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 2 on a missed goal")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5
    print(heading("environment"))
    for line in environment_lines():
        print(line)
    print(heading(f"worst cases of issue 11 (best of {repeats}, each on new objects)"))
    missed = 0
    with tempfile.TemporaryDirectory() as folder:
        cases = calendar_cases() + sqlite_cases(folder)
        pg_store = None
        dsn = os.environ.get("CSMCORE_TEST_POSTGRES_DSN", "")
        if dsn:
            more, pg_store = postgres_cases(dsn)
            cases += more
        else:
            print("  (PostgreSQL cases skipped: CSMCORE_TEST_POSTGRES_DSN is not set)")
        try:
            for label, setup, worst, baseline in cases:
                slow = timed(setup, worst, repeats)
                short = timed(setup, baseline, repeats)
                verdict = "PASS" if slow < GOAL else "MISS"
                missed += slow >= GOAL
                print(
                    f"  {label:<50} {slow * 1000:9.1f} ms   short span {short * 1000:8.2f} ms   "
                    f"goal < {GOAL:g} s: {verdict}"
                )
        finally:
            if pg_store is not None:
                pg_store.drop_schema()
    print(heading("verdict"))
    print("  all worst cases under 1 s" if not missed else f"  {missed} case(s) over 1 s")
    return 2 if missed and args.fail_on_miss else 0


if __name__ == "__main__":
    sys.exit(main())
