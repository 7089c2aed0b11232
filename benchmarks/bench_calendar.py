"""Business-time arithmetic: csmcore against pandas ``CustomBusinessHour`` and ``businesstime``.

Run from the repository root::

    .venv/bin/python benchmarks/bench_calendar.py            # 100,000 add + 100,000 elapsed
    .venv/bin/python benchmarks/bench_calendar.py --quick    # 10,000 each, a smoke run
    .venv/bin/python benchmarks/bench_calendar.py --profile  # also where csmcore spends its time

The workload (issue 2): calendar Monday-Friday 09:00-17:00 in America/New_York, closed on the
US federal holidays of the ``holidays`` package; random aware start instants over 2024-2026
(microsecond resolution); random budgets of up to five business days (40 h).

One process, the same inputs for every library, the best of several repeats
(``time.perf_counter``, garbage collector paused as ``timeit`` does). Before timing, every library
is run on the same inputs and its answers are compared with csmcore's; each difference must fall
into a class explained by a documented convention of the peer (printed with its source), else the
script says so loudly and exits with status 1.

Requirements: the ``bench`` extra (``pip install -e '.[bench]'``: pandas, businesstime, holidays).
No data files are read.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
import timeit
import tracemalloc
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from importlib.metadata import version
from zoneinfo import ZoneInfo

import holidays
import pandas as pd
from businesstime import BusinessTime
from pandas.tseries.offsets import CustomBusinessHour

from _common import Outcomes, Timing, environment_lines, heading, measure, rate_line, ratio_line
from csmcore import BusinessCalendar

ZONE_NAME = "America/New_York"
NY = ZoneInfo(ZONE_NAME)
OPEN, CLOSE = clock_time(9), clock_time(17)
DAY_LENGTH = timedelta(hours=8)  # one full business day of this calendar
MAX_BUDGET_HOURS = 40  # five business days
START_YEARS = (2024, 2026)  # random start instants fall in these years (inclusive)
# Holidays: 2024-2027, so that results spilling past 31 Dec 2026 (a budget is at most five
# business days) still see New Year's Day 2027 closed.
HOLIDAY_YEARS = range(2024, 2028)
MEMORY_YEARS = range(2020, 2030)
MEMORY_BUDGET = 1 << 20  # bytes; "small" for ten years of timeline, the threshold we hold to
GOAL_ADD_VS_PANDAS = 50.0
GOAL_ELAPSED_VS_BUSINESSTIME = 8.0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


# --------------------------------------------------------------------------------------------
# Holidays and the three calendars
# --------------------------------------------------------------------------------------------


def us_federal_holidays(years: Iterable[int]) -> tuple[list[date], list[str]]:
    """The US federal holidays of the ``holidays`` package, observed days included.

    ``holidays.country_holidays("US")`` has ``observed=True`` by default: when a holiday falls on
    a Saturday the Friday before is listed too ("... (observed)"), on a Sunday the Monday after.
    Both the actual date and the observed one are passed on; an actual date on a weekend is
    closed anyway, so the observed date is the one that matters.
    """
    table = holidays.country_holidays("US", years=list(years))
    days = sorted(table)
    notes = [f"{day.isoformat()} {day:%a} {table[day]}" for day in days]
    return days, notes


@dataclass(frozen=True)
class Libraries:
    """The same calendar, built once per library."""

    holidays: list[date]
    csm: BusinessCalendar
    bt: BusinessTime
    cbh: dict[int, CustomBusinessHour]  # whole-hour budget -> offset, built once

    @classmethod
    def build(cls, days: list[date]) -> Libraries:
        csm = BusinessCalendar.weekly(
            "09:00", "17:00", days="mon-fri", timezone=ZONE_NAME, holidays=days
        )
        # businesstime tests ``day in holidays``: a frozenset is its fastest container.
        bt = BusinessTime(business_hours=(OPEN, CLOSE), weekends=(5, 6), holidays=frozenset(days))
        # Offsets are built outside the timed loops (building one converts the holiday list);
        # n * offset would build a new one per call.
        cbh = {
            hours: CustomBusinessHour(
                hours, start="09:00", end="17:00", weekmask="Mon Tue Wed Thu Fri", holidays=days
            )
            for hours in range(1, MAX_BUDGET_HOURS + 1)
        }
        return cls(holidays=days, csm=csm, bt=bt, cbh=cbh)


def bt_business_time(value: timedelta) -> timedelta:
    """businesstime's answer as business time.

    ``businesstimedelta`` counts each whole business day as ``timedelta(days=1)`` and adds the
    remaining business time (its docstring: "the number of full business days and business time";
    its own ``businesstime_hours`` converts with ``days * open_hours + seconds`` in float hours).
    Here the same conversion is done exactly, with the sign handled first because a negative
    timedelta normalises to ``days=-n, seconds>=0``.
    """
    negative = value < timedelta(0)
    value = abs(value)
    result = value.days * DAY_LENGTH + (value - timedelta(days=value.days))
    return -result if negative else result


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    starts: list[datetime]  # aware, America/New_York, microsecond resolution
    hours: list[int]  # whole-hour budgets 1..40 (pandas takes whole hours only)
    budgets: list[timedelta]  # the same as timedeltas
    fine_budgets: list[timedelta]  # any microsecond count up to 40 h (csmcore only)
    pair_a: list[datetime]  # elapsed(a, b): b within seven days of a, one pair in ten reversed
    pair_b: list[datetime]
    stamps: list[pd.Timestamp] = field(default_factory=list)  # starts as pandas Timestamps
    naive_a: list[datetime] = field(default_factory=list)  # pair_a as naive local wall time
    naive_b: list[datetime] = field(default_factory=list)


def _instant(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, NY).replace(microsecond=us % 1_000_000)


def make_inputs(count: int, seed: int) -> Inputs:
    rng = random.Random(seed)
    lo = (datetime(START_YEARS[0], 1, 1, tzinfo=NY) - EPOCH) // US
    hi = (datetime(START_YEARS[1] + 1, 1, 1, tzinfo=NY) - EPOCH) // US
    starts = [_instant(rng.randrange(lo, hi)) for _ in range(count)]
    hours = [rng.randint(1, MAX_BUDGET_HOURS) for _ in range(count)]
    fine = [
        timedelta(microseconds=rng.randrange(0, MAX_BUDGET_HOURS * 3_600_000_000 + 1))
        for _ in range(count)
    ]
    pair_a: list[datetime] = []
    pair_b: list[datetime] = []
    for _ in range(count):
        a_us = rng.randrange(lo, hi)
        b_us = a_us + rng.randrange(0, 7 * 86_400_000_000)
        if rng.random() < 0.1:
            a_us, b_us = b_us, a_us
        pair_a.append(_instant(a_us))
        pair_b.append(_instant(b_us))
    inputs = Inputs(
        starts=starts,
        hours=hours,
        budgets=[timedelta(hours=h) for h in hours],
        fine_budgets=fine,
        pair_a=pair_a,
        pair_b=pair_b,
    )
    # Conversions for the peers, done once, outside every timed loop.
    inputs.stamps.extend(pd.Timestamp(s) for s in starts)
    inputs.naive_a.extend(a.replace(tzinfo=None) for a in pair_a)
    inputs.naive_b.extend(b.replace(tzinfo=None) for b in pair_b)
    return inputs


# --------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------

AGREE = "agree"
PANDAS_CLOSE = "pandas: result at closing time rolled to the next opening"
BT_AFTER_HOURS = "businesstime: both ends after closing, one business day apart -> 0"

CONVENTIONS = {
    PANDAS_CLOSE: (
        "csmcore's add returns the earliest instant that uses up the budget, so a budget used "
        "up exactly at closing gives the closing instant (DESIGN.md, pinned contract). pandas "
        "BusinessHour moves such a result to the next opening: its own tests expect "
        "datetime(2014, 7, 1, 16) + BusinessHour() == datetime(2014, 7, 2, 9) "
        "(pandas/tests/tseries/offsets/test_business_hour.py, apply_cases). Both instants are "
        "the same business time after the start; the class is counted only when csmcore's "
        "answer is a closing instant and pandas' answer is the next opening after it."
    ),
    BT_AFTER_HOURS: (
        "a defect of businesstime 0.3.0, reported upstream as seatgeek/businesstime issues #13 "
        "and #26: when the earlier instant is after closing on a business day and the later "
        "one is at or after closing on the next business day, iterbusinessdays() skips the "
        "first day and never reaches the last, so businesstimedelta returns 0 instead of one "
        "whole business day. Counted only when exactly that holds (and csmcore gives 8 h)."
    ),
}


class Tally(Outcomes):
    """Counts of outcome classes for one comparison, with the first example of each."""

    def __init__(self, title: str) -> None:
        super().__init__(AGREE)
        self.title = title

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        return [f"  {self.title}: {total:,} inputs", *self.outcome_lines()]


def _is_business_day(day: date, closed: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in closed


def _next_business_day(day: date, closed: frozenset[date]) -> date:
    day += timedelta(days=1)
    while not _is_business_day(day, closed):
        day += timedelta(days=1)
    return day


def _bt_after_hours_defect(
    a: datetime, b: datetime, csm: timedelta, bt: timedelta, closed: frozenset[date]
) -> bool:
    """Whether (a, b) is the businesstime defect of issues #13/#26 (see CONVENTIONS)."""
    lo, hi = (a, b) if a <= b else (b, a)
    return (
        bt == timedelta(0)
        and abs(csm) == DAY_LENGTH
        and _is_business_day(lo.date(), closed)
        and lo.time() > CLOSE  # businesstime's own test: ``d1.time() > business_hours[1]``
        and hi.date() == _next_business_day(lo.date(), closed)
        and hi.time() >= CLOSE
    )


def _show(moment: datetime) -> str:
    return f"{moment.isoformat()} ({moment:%a})"


def check_add_vs_pandas(libs: Libraries, inputs: Inputs, count: int) -> Tally:
    tally = Tally("add: csmcore vs pandas CustomBusinessHour (whole-hour budgets)")
    cal = libs.csm
    for start, stamp, hours in zip(
        inputs.starts[:count], inputs.stamps[:count], inputs.hours[:count], strict=True
    ):
        ours = cal.add(start, timedelta(hours=hours))
        theirs = (stamp + libs.cbh[hours]).to_pydatetime()
        example = f"{_show(start)} + {hours} h: csmcore {_show(ours)}, pandas {_show(theirs)}"
        if ours == theirs and ours.utcoffset() == theirs.utcoffset():
            tally.add(AGREE, example)
        elif (
            not cal.is_open(ours)
            and cal.is_open(ours - US)
            and theirs == cal.next_open(ours)
            and cal.elapsed(start, theirs) == timedelta(hours=hours)
        ):
            tally.add(PANDAS_CLOSE, example)
        else:
            tally.add("UNEXPLAINED: csmcore and pandas differ", example)
    return tally


def check_add_roundtrip(libs: Libraries, inputs: Inputs, count: int) -> Tally:
    """csmcore's add against its own elapsed (the pinned contract) and against businesstime."""
    tally = Tally(
        "add round trip: elapsed(start, add(start, d)) == d, by csmcore and by businesstime"
    )
    cal, bt, closed = libs.csm, libs.bt, frozenset(libs.holidays)
    budgets = inputs.budgets[: count // 2] + inputs.fine_budgets[: count - count // 2]
    for start, budget in zip(inputs.starts[:count], budgets, strict=True):
        end = cal.add(start, budget)
        ours = cal.elapsed(start, end)
        theirs = bt_business_time(
            bt.businesstimedelta(start.replace(tzinfo=None), end.replace(tzinfo=None))
        )
        example = (
            f"{_show(start)} + {budget}: add {_show(end)}, csmcore elapsed {ours}, "
            f"businesstime elapsed {theirs}"
        )
        if ours != budget or end < start:
            tally.add("UNEXPLAINED: csmcore add/elapsed break the round trip", example)
        elif theirs == budget:
            tally.add(AGREE, example)
        elif _bt_after_hours_defect(start, end, ours, theirs, closed):
            tally.add(BT_AFTER_HOURS, example)
        else:
            tally.add("UNEXPLAINED: businesstime disagrees with csmcore add", example)
    return tally


def check_elapsed(libs: Libraries, inputs: Inputs, count: int) -> Tally:
    tally = Tally("elapsed: csmcore vs businesstime")
    cal, bt, closed = libs.csm, libs.bt, frozenset(libs.holidays)
    for a, b, na, nb in zip(
        inputs.pair_a[:count],
        inputs.pair_b[:count],
        inputs.naive_a[:count],
        inputs.naive_b[:count],
        strict=True,
    ):
        ours = cal.elapsed(a, b)
        theirs = bt_business_time(bt.businesstimedelta(na, nb))
        example = f"{_show(a)} -> {_show(b)}: csmcore {ours}, businesstime {theirs}"
        if ours == theirs:
            tally.add(AGREE, example)
        elif _bt_after_hours_defect(a, b, ours, theirs, closed):
            tally.add(BT_AFTER_HOURS, example)
        else:
            tally.add("UNEXPLAINED: csmcore and businesstime differ", example)
    return tally


# --------------------------------------------------------------------------------------------
# Timed loops: one shape for every library, results kept in a local so nothing is skipped
# --------------------------------------------------------------------------------------------


def loop_csm_add(
    cal: BusinessCalendar, starts: Sequence[datetime], deltas: Sequence[timedelta]
) -> Callable[[], object]:
    def run() -> object:
        add = cal.add
        last = None
        for s, d in zip(starts, deltas, strict=True):
            last = add(s, d)
        return last

    return run


def loop_pandas_add(
    stamps: Sequence[pd.Timestamp], offsets: Sequence[CustomBusinessHour]
) -> Callable[[], object]:
    def run() -> object:
        last = None
        for t, o in zip(stamps, offsets, strict=True):
            last = t + o
        return last

    return run


def loop_csm_elapsed(
    cal: BusinessCalendar, a: Sequence[datetime], b: Sequence[datetime]
) -> Callable[[], object]:
    def run() -> object:
        elapsed = cal.elapsed
        last = None
        for x, y in zip(a, b, strict=True):
            last = elapsed(x, y)
        return last

    return run


def loop_bt_elapsed(
    bt: BusinessTime, a: Sequence[datetime], b: Sequence[datetime]
) -> Callable[[], object]:
    def run() -> object:
        delta = bt.businesstimedelta
        last = None
        for x, y in zip(a, b, strict=True):
            last = delta(x, y)
        return last

    return run


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def memory_report() -> tuple[list[str], bool]:
    """Memory held by a calendar's precomputed timeline after touching ten years."""
    days, _ = us_federal_holidays(range(MEMORY_YEARS[0], MEMORY_YEARS[-1] + 2))
    tracemalloc.start()
    try:
        cal = BusinessCalendar.weekly(
            "09:00", "17:00", days="mon-fri", timezone=ZONE_NAME, holidays=days
        )
        before, _ = tracemalloc.get_traced_memory()
        started = time.perf_counter()
        for year in MEMORY_YEARS:  # touch every year, first to last
            for month in (1, 6, 12):
                cal.add(datetime(year, month, 15, 12, tzinfo=NY), timedelta(hours=1))
        built = time.perf_counter() - started
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = after - before
    first = datetime(MEMORY_YEARS[0], 1, 1, tzinfo=NY)
    last = datetime(MEMORY_YEARS[-1] + 1, 1, 1, tzinfo=NY)
    intervals = sum(1 for _ in cal.open_intervals(first, last))
    years = len(MEMORY_YEARS)
    ok = held <= MEMORY_BUDGET
    lines = [
        f"  calendar touched in every year {MEMORY_YEARS[0]}-{MEMORY_YEARS[-1]} "
        f"({intervals:,} open intervals in those years; build time {built * 1e3:.0f} ms "
        "under tracemalloc)",
        f"  memory held by the timeline (tracemalloc, after - before touching): "
        f"{held / 1024:,.0f} KiB = {held / years / 1024:,.1f} KiB per year = "
        f"{held / intervals:,.0f} bytes per open interval; peak while building "
        f"{(peak - before) / 1024:,.0f} KiB",
        f"  budget <= {MEMORY_BUDGET // 1024:,} KiB for ten years: "
        + ("PASS (small)" if ok else "MISS (too large)"),
        "  (the timeline may hold a year or two on either side of the range touched: it grows "
        "one calendar year at a time and keeps a margin)",
    ]
    return lines, ok


# --------------------------------------------------------------------------------------------
# Profile of csmcore's hot path
# --------------------------------------------------------------------------------------------


def _ns_per_item(stmt: str, namespace: dict[str, object], items: int, repeats: int = 7) -> float:
    """Best nanoseconds per item of ``for x in xs: <stmt>`` (timeit, gc paused)."""
    timer = timeit.Timer(f"for x in xs:\n    {stmt}", globals=namespace)
    return min(timer.repeat(repeat=repeats, number=1)) / items * 1e9


def profile_report(libs: Libraries, inputs: Inputs) -> list[str]:
    """cProfile of add/elapsed, then timeit micro-timings of the steps of csmcore's add/elapsed.

    Each step runs as ``for x in xs: <expression>`` over prepared lists, and the empty loop's
    cost is subtracted. The sorted lists searched by bisect are rebuilt from the public
    ``open_intervals()`` (the same sizes and magnitudes as the calendar's own), so nothing here
    depends on private names.
    """
    cal = libs.csm
    n = min(len(inputs.starts), 50_000)
    starts, budgets = inputs.starts[:n], inputs.budgets[:n]
    lines = [f"  cProfile, {n:,} add + {n:,} elapsed calls (sorted by tottime, top 8):"]
    profiler = cProfile.Profile()
    profiler.enable()
    loop_csm_add(cal, starts, budgets)()
    loop_csm_elapsed(cal, inputs.pair_a[:n], inputs.pair_b[:n])()
    profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(8)
    table = [row for row in buffer.getvalue().splitlines() if row.strip()]
    first_row = next(i for i, row in enumerate(table) if row.lstrip().startswith("ncalls"))
    lines.extend(f"    {row.strip()}" for row in table[first_row:])

    first = datetime(START_YEARS[0] - 1, 1, 1, tzinfo=NY)
    last = datetime(START_YEARS[1] + 2, 1, 1, tzinfo=NY)
    bounds: list[int] = []
    cum = [0]
    for lo, hi in cal.open_intervals(first, last):
        lo_us, hi_us = (lo - EPOCH) // US, (hi - EPOCH) // US
        bounds += (lo_us, hi_us)
        cum.append(cum[-1] + hi_us - lo_us)
    results_us = [(cal.add(s, d) - EPOCH) // US for s, d in zip(starts, budgets, strict=True)]
    epoch_ny = datetime(1970, 1, 1, tzinfo=NY)
    namespace: dict[str, object] = {
        "EPOCH": EPOCH,
        "US": US,
        "NY": NY,
        "EPOCH_NY": epoch_ny,
        "timedelta": timedelta,
        "fromtimestamp": datetime.fromtimestamp,
        "fromutc": NY.fromutc,
        "bisect_left": bisect_left,
        "bisect_right": bisect_right,
        "bounds": bounds,
        "cum": cum,
        "add": cal.add,
        "elapsed": cal.elapsed,
    }
    lists: dict[str, Sequence[object]] = {
        "pairs": list(zip(starts, budgets, strict=True)),
        "elapsed_pairs": list(zip(inputs.pair_a[:n], inputs.pair_b[:n], strict=True)),
        "starts": starts,
        "budgets": budgets,
        "ts": [(s - EPOCH) // US for s in starts],
        "targets": [cum[len(cum) // 2] + d // US for d in budgets],
        "results": results_us,
        "utc": [EPOCH + timedelta(microseconds=u) for u in results_us],
    }
    steps = [
        ("pairs", "add(*x)", "whole add(start, d)"),
        ("elapsed_pairs", "elapsed(*x)", "whole elapsed(a, b)"),
        ("starts", "x - EPOCH", "  start - EPOCH (aware subtraction alone)"),
        ("starts", "(x - EPOCH) // US", "  (start - EPOCH) // US: instant -> int µs"),
        ("starts", "(x - EPOCH) / US", "  alt (start - EPOCH) / US: float, integral"),
        ("starts", "x.timestamp()", "  ref start.timestamp(): float seconds"),
        ("budgets", "x // US", "  delta // US: budget -> int µs"),
        ("ts", "bisect_right(bounds, x)", f"  bisect_right(bounds, t), {len(bounds):,} items"),
        ("targets", "bisect_left(cum, x)", f"  bisect_left(cum, target), {len(cum):,} items"),
        ("results", "fromtimestamp(x / 1e6, NY)", "  fromtimestamp(u / 1e6, zone): µs -> result"),
        (
            "results",
            "(EPOCH + timedelta(microseconds=x)).astimezone(NY)",
            "  old (EPOCH + timedelta(µs=u)).astimezone(zone)",
        ),
        ("utc", "x.astimezone(NY)", "    of which .astimezone(zone)"),
        ("results", "fromutc(EPOCH_NY + US * x)", "  alt zone.fromutc(EPOCH_IN_ZONE + US * u)"),
        ("results", "timedelta(0, 0, x)", "  timedelta(0, 0, x): elapsed's result"),
        ("results", "timedelta(microseconds=x)", "  old timedelta(microseconds=x)"),
        ("results", "US * x", "  alt US * x"),
    ]
    empty = {name: _ns_per_item("pass", {"xs": xs}, len(xs)) for name, xs in lists.items()}
    timed: list[tuple[str, float]] = []
    for list_name, stmt, label in steps:
        xs = lists[list_name]
        ns = _ns_per_item(stmt, {**namespace, "xs": xs}, len(xs)) - empty[list_name]
        timed.append((label, ns))

    whole = timed[0][1]
    lines.append(
        f"\n  timeit micro-timings, {n:,} items, best of 7, ns per item with the empty loop "
        "subtracted, and share of a whole add:"
    )
    lines.extend(f"    {label:<50} {ns:7.0f} ns  {ns / whole:5.0%}" for label, ns in timed)

    # A speed-up must not cost exactness: check the alternatives on every item.
    fromutc_exact = all(
        NY.fromutc(epoch_ny + US * u) == datetime.fromtimestamp(u / 1e6, NY) for u in results_us
    )
    truediv_exact = all((s - EPOCH) / US == t for s, t in zip(starts, lists["ts"], strict=True))
    lines.append(
        f"    exact on all {n:,} items: fromutc variant {fromutc_exact}; "
        f"(start - EPOCH) / US == (start - EPOCH) // US {truediv_exact} (floats hold every "
        "integer below 2**53 µs, about year 2255, exactly)"
    )
    return lines


def sketch_report(libs: Libraries, inputs: Inputs) -> list[str]:
    """Time two alternative timeline layouts against csmcore's, as plain functions.

    Not csmcore code: sketches for the hot path, built from the public ``open_intervals()``,
    with the same two-bisect logic as csmcore. Every answer is checked against csmcore's own
    (instant, UTC offset and fold) before anything is timed.

    * ``int``: today's layout, UTC microseconds as ints (the reference for the sketches).
    * ``timedelta``: bounds and running totals kept as ``timedelta`` since the epoch, so an
      instant needs only ``start - EPOCH`` (no ``// US``) and elapsed's result is a plain
      difference (no ``timedelta(...)`` constructor).
    * ``zone-local``: bounds kept as aware datetimes in the calendar's zone. For an input whose
      ``tzinfo`` *is* the calendar's zone, comparison and subtraction are wall-clock field
      operations with no ``utcoffset()`` call at all. Valid only for intervals with no UTC
      offset change inside (checked here; a real version needs a per-interval flag and the
      exact path for inputs in or near a transition), else it falls back.
    """
    cal = libs.csm
    n = min(len(inputs.starts), 50_000)
    first = datetime(START_YEARS[0] - 1, 1, 1, tzinfo=NY)
    last = datetime(START_YEARS[1] + 2, 1, 1, tzinfo=NY)
    bounds: list[int] = []
    cum = [0]
    local: list[datetime] = []
    for lo, hi in cal.open_intervals(first, last):
        lo_us, hi_us = (lo - EPOCH) // US, (hi - EPOCH) // US
        bounds += (lo_us, hi_us)
        cum.append(cum[-1] + hi_us - lo_us)
        local += (lo.astimezone(NY), hi.astimezone(NY))
    bounds_td = [US * b for b in bounds]
    cum_td = [US * c for c in cum]
    spans = zip(local[::2], local[1::2], strict=True)
    local_ok = all(lo.utcoffset() == hi.utcoffset() for lo, hi in spans)

    def elapsed_int(a: datetime, b: datetime) -> timedelta:
        x, y = (a - EPOCH) // US, (b - EPOCH) // US
        k = bisect_right(bounds, x)
        bx = cum[k >> 1] + x - bounds[k - 1] if k & 1 else cum[k >> 1]
        k = bisect_right(bounds, y)
        by = cum[k >> 1] + y - bounds[k - 1] if k & 1 else cum[k >> 1]
        return timedelta(0, 0, by - bx)

    def elapsed_td(a: datetime, b: datetime) -> timedelta:
        x, y = a - EPOCH, b - EPOCH
        k = bisect_right(bounds_td, x)
        bx = cum_td[k >> 1] + (x - bounds_td[k - 1]) if k & 1 else cum_td[k >> 1]
        k = bisect_right(bounds_td, y)
        by = cum_td[k >> 1] + (y - bounds_td[k - 1]) if k & 1 else cum_td[k >> 1]
        return by - bx

    def elapsed_local(a: datetime, b: datetime) -> timedelta:
        if not local_ok or a.tzinfo is not NY or b.tzinfo is not NY:
            return elapsed_td(a, b)
        k = bisect_right(local, a)
        bx = cum_td[k >> 1] + (a - local[k - 1]) if k & 1 else cum_td[k >> 1]
        k = bisect_right(local, b)
        by = cum_td[k >> 1] + (b - local[k - 1]) if k & 1 else cum_td[k >> 1]
        return by - bx

    def add_int(s: datetime, d: timedelta) -> datetime:
        t = (s - EPOCH) // US
        k = bisect_right(bounds, t)
        target = (cum[k >> 1] + t - bounds[k - 1] if k & 1 else cum[k >> 1]) + d // US
        m = bisect_left(cum, target) - 1
        return datetime.fromtimestamp((bounds[m << 1] + target - cum[m]) / 1e6, s.tzinfo)

    def add_td(s: datetime, d: timedelta) -> datetime:
        t = s - EPOCH
        k = bisect_right(bounds_td, t)
        target = (cum_td[k >> 1] + (t - bounds_td[k - 1]) if k & 1 else cum_td[k >> 1]) + d
        m = bisect_left(cum_td, target) - 1
        return (EPOCH + (bounds_td[m << 1] + (target - cum_td[m]))).astimezone(s.tzinfo)

    def add_local(s: datetime, d: timedelta) -> datetime:
        if not local_ok or s.tzinfo is not NY:
            return add_td(s, d)
        k = bisect_right(local, s)
        target = (cum_td[k >> 1] + (s - local[k - 1]) if k & 1 else cum_td[k >> 1]) + d
        m = bisect_left(cum_td, target) - 1
        return local[m << 1] + (target - cum_td[m])

    pairs = list(zip(inputs.pair_a[:n], inputs.pair_b[:n], strict=True))
    adds = list(zip(inputs.starts[:n], inputs.fine_budgets[:n], strict=True))
    wrong = 0
    for a, b in pairs:
        want = cal.elapsed(a, b)
        wrong += sum(f(a, b) != want for f in (elapsed_int, elapsed_td, elapsed_local))
    for s, d in adds:
        want_dt = cal.add(s, d)
        expected = (want_dt, want_dt.utcoffset(), want_dt.fold)
        for g in (add_int, add_td, add_local):
            got = g(s, d)
            wrong += (got, got.utcoffset(), got.fold) != expected

    namespace: dict[str, object] = {"pairs": pairs, "adds": adds}
    rows = [
        ("pairs", "cal.elapsed(a, b)", cal.elapsed),
        ("pairs", "sketch int (today's layout)", elapsed_int),
        ("pairs", "sketch timedelta", elapsed_td),
        ("pairs", "sketch zone-local", elapsed_local),
        ("adds", "cal.add(s, d)", cal.add),
        ("adds", "sketch int (today's layout)", add_int),
        ("adds", "sketch timedelta", add_td),
        ("adds", "sketch zone-local", add_local),
    ]
    lines = [
        f"  alternative layouts as plain functions, {n:,} items, best of 7 (timeit); answers "
        f"checked against csmcore: {wrong} differ; zone-local precondition holds: {local_ok}"
    ]
    for list_name, label, func in rows:
        xs = namespace[list_name]
        ns = _ns_per_item("f(*x)", {"xs": xs, "f": func}, n) - _ns_per_item("pass", {"xs": xs}, n)
        op = "elapsed" if list_name == "pairs" else "add"
        lines.append(f"    {op:<8} {label:<30} {ns:6.0f} ns  {1e9 / ns:>11,.0f} ops/s")
    return lines


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 calls: a smoke run")
    parser.add_argument("--calls", type=int, help="add and elapsed calls per library")
    parser.add_argument("--pandas-calls", type=int, help="calls timed for pandas (slow)")
    parser.add_argument("--check", type=int, help="inputs compared across libraries")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the best one counts")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--profile", action="store_true", help="profile csmcore's hot path")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 2 when a goal is missed")
    args = parser.parse_args(argv)
    args.calls = args.calls or (10_000 if args.quick else 100_000)
    args.pandas_calls = min(args.pandas_calls or (2_000 if args.quick else 10_000), args.calls)
    args.check = min(args.check or (2_000 if args.quick else 5_000), args.calls)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print("Business-time arithmetic: csmcore vs pandas CustomBusinessHour vs businesstime")
    print(heading("environment"))
    for line in environment_lines():
        print(line)
    print(
        "  "
        + ", ".join(
            f"{name} {version(name)}" for name in ("csmcore", "pandas", "businesstime", "holidays")
        )
    )

    days, notes = us_federal_holidays(HOLIDAY_YEARS)
    observed = [note for note in notes if "(observed)" in note]
    weekend = [day for day in days if day.weekday() >= 5]
    print(heading("workload"))
    print(
        f"  calendar Mon-Fri 09:00-17:00 {ZONE_NAME}; starts uniform over "
        f"{START_YEARS[0]}-{START_YEARS[1]} (µs resolution); budgets up to "
        f"{MAX_BUDGET_HOURS} h (five business days); seed {args.seed}"
    )
    print(
        f"  holidays: holidays.country_holidays('US', years={HOLIDAY_YEARS.start}-"
        f"{HOLIDAY_YEARS.stop - 1}) (holidays package {version('holidays')}, observed=True): "
        f"{len(days)} dates, the same list for all three libraries;"
    )
    print(f"    {len(observed)} are observed substitutes: {'; '.join(observed)}")
    print(
        f"    {len(weekend)} actual dates fall on a weekend (closed anyway): "
        + ", ".join(day.isoformat() for day in weekend)
    )
    print("    2027 is included so that results spilling past 31 Dec 2026 see 1 Jan 2027 closed")
    print(
        "  add: pandas takes whole hours only, so the compared and timed add budgets are whole "
        f"hours 1-{MAX_BUDGET_HOURS}; csmcore is also timed on µs budgets"
    )
    print(
        "  elapsed: pairs (a, b) with b up to 7 days after a, one pair in ten reversed "
        "(negative result); businesstime gets naive local wall times (it is naive-only),"
    )
    print(
        "    converted once outside the timed loop; its result counts a whole business day as "
        "1 day and is converted to business hours (days * 8 h + rest) outside the loop too"
    )
    print(
        "  pandas gets pd.Timestamp inputs and prebuilt offsets (one per whole-hour n), "
        "converted outside the timed loop; no data files are used"
    )

    libs = Libraries.build(days)
    inputs = make_inputs(args.calls, args.seed)

    # csmcore's one-off cost: a fresh calendar building its timeline for the years used.
    fresh = BusinessCalendar.weekly(
        "09:00", "17:00", days="mon-fri", timezone=ZONE_NAME, holidays=days
    )
    t0 = time.perf_counter()
    fresh.add(datetime(START_YEARS[0], 1, 2, 12, tzinfo=NY), timedelta(hours=1))
    fresh.add(datetime(START_YEARS[1], 12, 31, 12, tzinfo=NY), timedelta(hours=40))
    cold = time.perf_counter() - t0

    print(heading(f"agreement on the first {args.check:,} inputs"))
    tallies = [
        check_add_vs_pandas(libs, inputs, args.check),
        check_add_roundtrip(libs, inputs, args.check),
        check_elapsed(libs, inputs, args.check),
    ]
    seen: set[str] = set()
    for tally in tallies:
        for line in tally.lines():
            print(line)
        seen.update(tally.counts)
    print("  conventions behind the explained classes:")
    for outcome, text in CONVENTIONS.items():
        if outcome in seen:
            print(f"    * {outcome}: {text}")
    unexplained = sum(tally.unexplained for tally in tallies)

    print(heading("speed (higher is better)"))
    repeats = args.repeats
    n, pn = args.calls, args.pandas_calls
    offsets = [libs.cbh[h] for h in inputs.hours]
    for warm in (
        loop_csm_add(libs.csm, inputs.starts, inputs.budgets),
        loop_csm_add(libs.csm, inputs.starts, inputs.fine_budgets),
        loop_csm_elapsed(libs.csm, inputs.pair_a, inputs.pair_b),
        loop_pandas_add(inputs.stamps[:200], offsets[:200]),
        loop_bt_elapsed(libs.bt, inputs.naive_a[:1000], inputs.naive_b[:1000]),
    ):
        warm()  # first-call costs (timeline years, imports, caches) stay out of the timings
    csm_add = measure(
        "csmcore add (whole-hour budgets)",
        n,
        loop_csm_add(libs.csm, inputs.starts, inputs.budgets),
        repeats=repeats,
    )
    csm_add_fine = measure(
        "csmcore add (µs budgets)",
        n,
        loop_csm_add(libs.csm, inputs.starts, inputs.fine_budgets),
        repeats=repeats,
    )
    pandas_add = measure(
        "pandas CustomBusinessHour add",
        pn,
        loop_pandas_add(inputs.stamps[:pn], offsets[:pn]),
        repeats=min(repeats, 3),
    )
    csm_elapsed = measure(
        "csmcore elapsed",
        n,
        loop_csm_elapsed(libs.csm, inputs.pair_a, inputs.pair_b),
        repeats=repeats,
    )
    bt_elapsed = measure(
        "businesstime businesstimedelta",
        n,
        loop_bt_elapsed(libs.bt, inputs.naive_a, inputs.naive_b),
        repeats=repeats,
    )
    timings: list[tuple[Timing, str]] = [
        (csm_add, ""),
        (csm_add_fine, ""),
        (
            pandas_add,
            f"<- first {pn:,} of the {n:,} inputs; a full run would take "
            f"~{n / pandas_add.ops_per_second:.1f} s",
        ),
        (csm_elapsed, ""),
        (bt_elapsed, "<- naive inputs, raw result (conversion not timed)"),
    ]
    for timing, note in timings:
        print(rate_line(timing, note))
    print(
        f"  csmcore one-off: a fresh calendar builds its timeline around {START_YEARS[0]}-"
        f"{START_YEARS[1]} on first use in {cold * 1e3:.1f} ms (not in the figures above)"
    )
    print(heading("ratios"))
    add_ratio = csm_add.ops_per_second / pandas_add.ops_per_second
    elapsed_ratio = csm_elapsed.ops_per_second / bt_elapsed.ops_per_second
    print(
        ratio_line(
            "add: csmcore / pandas CustomBusinessHour",
            csm_add.ops_per_second,
            pandas_add.ops_per_second,
            goal=GOAL_ADD_VS_PANDAS,
        )
    )
    print(
        ratio_line(
            "elapsed: csmcore / businesstime",
            csm_elapsed.ops_per_second,
            bt_elapsed.ops_per_second,
            goal=GOAL_ELAPSED_VS_BUSINESSTIME,
        )
    )
    goals_met = add_ratio >= GOAL_ADD_VS_PANDAS and elapsed_ratio >= GOAL_ELAPSED_VS_BUSINESSTIME

    print(heading("memory"))
    memory_lines, memory_ok = memory_report()
    for line in memory_lines:
        print(line)

    if args.profile:
        print(heading("profile of csmcore"))
        for line in profile_report(libs, inputs):
            print(line)
        for line in sketch_report(libs, inputs):
            print(line)

    print(heading("verdict"))
    print(f"  total run time {time.perf_counter() - started:.1f} s")
    status = 0
    if unexplained:
        print(
            f"  FAILURE: {unexplained} unexplained mismatches between the libraries "
            "(see 'agreement' above)",
            file=sys.stderr,
        )
        print(f"  FAILURE: {unexplained} unexplained mismatches")
        status = 1
    else:
        print("  every difference between the libraries is explained by a documented convention")
    if not (goals_met and memory_ok):
        print("  MISS: a speed or memory goal is not met (see above)")
        if args.fail_on_miss and status == 0:
            status = 2
    else:
        print("  all speed and memory goals met")
    return status


if __name__ == "__main__":
    sys.exit(main())
