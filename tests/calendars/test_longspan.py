"""Issue 11: long spans of business time are sums of whole years, not walks, and agree exactly
with the short-span computation.

Work is counted, not timed: ``timeline._work`` counts the years built into interval lists, the
years totalled (whole weeks less closed days, corrected near UTC offset changes) and the zone
probes made. Speed figures are in benchmarks/bench_limits.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.calendars import BusinessCalendar
from csmcore.calendars._days import MAX_REACH, RuleDays
from csmcore.calendars._spec import parse_rule
from tests.calendars.support import CALENDAR_ZONES, INPUT_ZONES, Spec, scenarios
from tests.guard import hang_guard

UTC = timezone.utc
Scene = tuple[Spec, BusinessCalendar, datetime]
START = datetime(2025, 1, 6, 10, tzinfo=UTC)


def berlin() -> BusinessCalendar:
    return BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")


def test_add_of_the_maximum_reach_builds_a_few_years_only() -> None:
    cal = berlin()
    with hang_guard():
        end = cal.add(START, MAX_REACH)
    built, totalled, _ = cal.timeline._work
    # 146,400 days of business time at 40 hours a week is about 1,684 years: each year between
    # is totalled once; only the start's years and the result's are built.
    assert built <= 8
    assert totalled <= 1700
    assert cal.elapsed(START, end) == MAX_REACH
    assert cal.add(end, -MAX_REACH) == START


def test_elapsed_over_two_thousand_years_builds_a_few_years_only() -> None:
    cal = berlin()
    with hang_guard():
        span = cal.elapsed(START, START.replace(year=4025))
    built, totalled, probes = cal.timeline._work
    assert built <= 8
    assert totalled <= 2001
    # Weekly probes of the zone past 2100, daily ones before; none per window.
    assert probes <= 80 * 372 + 1930 * 56
    weeks = (date(4025, 1, 6) - date(2025, 1, 6)).days // 7
    # 5 days of 8 hours a week, DST changes fall on closed Sundays: whole weeks exactly.
    assert span == timedelta(hours=40) * weeks


def test_a_second_long_query_reuses_the_year_totals() -> None:
    cal = berlin()
    cal.elapsed(START, START.replace(year=4025))
    before = list(cal.timeline._work)
    cal.elapsed(START.replace(year=3025), START.replace(year=4024))
    assert cal.timeline._work[1] == before[1]  # no year totalled again


def test_a_weekly_rule_from_year_1_is_read_from_near_the_query() -> None:
    cal = BusinessCalendar.weekly(
        "09:00",
        "17:00",
        recurring_holidays="DTSTART:00010101T000000\nRRULE:FREQ=WEEKLY;BYDAY=WE",
    )
    with hang_guard():
        got = cal.add(datetime(9000, 1, 7, 16, tzinfo=UTC), timedelta(hours=2))  # a Tuesday
    assert got == datetime(9000, 1, 9, 10, tzinfo=UTC)  # Wednesday is closed
    days = cal.timeline._rule_days[0]._days
    assert len(days) < 200  # occurrences read: about a year's, not 470,000 weeks'


def test_a_daily_rule_of_1600_years_is_read_from_near_the_query() -> None:
    rule = "DTSTART:00020101T000000\nRRULE:FREQ=DAILY;INTERVAL=3;UNTIL=16000101T000000"
    cal = BusinessCalendar.weekly("09:00", "17:00", recurring_holidays=rule)
    monday = datetime(1599, 3, 1, 9, tzinfo=UTC)  # a Monday, 583,282 days after DTSTART
    with hang_guard():
        week = cal.elapsed(monday, monday + timedelta(days=7))
    weekdays = [monday.date() + timedelta(days=n) for n in range(5)]
    open_days = [d for d in weekdays if (d - date(2, 1, 1)).days % 3]
    assert week == timedelta(hours=8) * len(open_days)
    assert len(cal.timeline._rule_days[0]._days) < 1000


# -- the fast long-span path agrees exactly with the short-span computation --------------------

FAR = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(4, 1, 1), max_value=datetime(9997, 12, 1)),
    st.sampled_from(INPUT_ZONES),
)


@settings(max_examples=40)
@given(scenarios(), st.integers(1840, 2110), st.integers(3, 9997))
def test_year_totals_are_the_built_years_totals(scene: Scene, dst_year: int, far: int) -> None:
    _, cal, anchor = scene
    tl = cal.timeline
    for year in (anchor.year - 1, anchor.year, anchor.year + 1, dst_year, far):
        built = sum(hi - lo for lo, hi in tl._build(date(year, 1, 1), date(year + 1, 1, 1)))
        assert tl._quick_total(year) == built, year


@settings(max_examples=30)
@given(st.sampled_from(CALENDAR_ZONES), st.integers(2501, 9998))
def test_dst_corrections_repeat_every_400_years(zone: str | tzinfo, year: int) -> None:
    """After 2500 a zoneinfo zone's corrections are taken from 400 years before: the same as
    probing the zone over the year."""
    cal = BusinessCalendar(
        timezone=zone,
        hours={day: [("01:00", "04:00"), ("22:00", "00:30")] for day in range(7)},
    )
    assert cal.timeline._corrections(year) == cal.timeline._exact_corrections(year)


@settings(max_examples=30)
@given(scenarios(), st.integers(400, 3000), st.integers(0, 10**6))
def test_far_path_equals_a_walk(scene: Scene, days: int, micro: int) -> None:
    """A span of a few years: computed by jumping (a fresh calendar) and by walking the
    contiguous lists over it (another fresh calendar, asked about every year in between)."""
    spec, cal, anchor = scene
    walked = spec.build("plain")
    a = anchor
    b = anchor + timedelta(days=days, microseconds=micro)
    t = a
    while t < b:
        walked.is_open(t)
        t += timedelta(days=200)
    assert cal.elapsed(a, b) == walked.elapsed(a, b)
    assert cal.is_open(b) == walked.is_open(b)
    assert cal.next_open(b) == walked.next_open(b)
    assert cal.add(a, timedelta(hours=days)) == walked.add(a, timedelta(hours=days))
    fresh = spec.build("plain")
    assert fresh.add(b, -timedelta(hours=days)) == walked.add(b, -timedelta(hours=days))


@settings(max_examples=25)
@given(scenarios(), FAR, FAR)
def test_elapsed_is_additive_over_centuries(scene: Scene, b: datetime, c: datetime) -> None:
    _, cal, anchor = scene
    assert cal.elapsed(anchor, c) == cal.elapsed(anchor, b) + cal.elapsed(b, c)


@settings(max_examples=40)
@given(scenarios(), FAR)
def test_add_inverts_elapsed_over_centuries(scene: Scene, u: datetime) -> None:
    _, cal, anchor = scene
    span = cal.elapsed(anchor, u)
    if abs(span) > MAX_REACH:
        return
    got = cal.add(anchor, span)
    if span and cal.is_open(u):
        assert got == u
    else:  # a closed u: the earliest (latest, going back) instant at the same position
        assert cal.elapsed(got, u) == timedelta(0)


# -- recurring rules restarted near the query give the same days --------------------------------

RULES = st.builds(
    lambda freq, interval, byday, extra, start, wkst: (
        f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ={freq};INTERVAL={interval};WKST={wkst}"
        + (f";BYDAY={byday}" if byday else "")
        + extra
    ),
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    st.integers(1, 5),
    st.sampled_from(["", "MO", "WE,SA", "SU", "MO,TU,WE,TH,FR"]),
    st.sampled_from(["", ";BYMONTHDAY=13", ";BYMONTH=2,11", ";BYSETPOS=-1", ";BYMONTHDAY=-1"]),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(2000, 1, 1)),
    st.sampled_from(["MO", "SU", "WE"]),
)


@settings(max_examples=100)
@given(RULES, st.integers(0, 120), st.integers(1, 400))
def test_a_restarted_rule_gives_the_rules_days(text: str, years: int, length: int) -> None:
    try:
        rule = parse_rule(text)
    except Exception:
        return  # refused when built (too many periods): not the point here
    start = rrulestr(text)._dtstart.date()  # type: ignore[union-attr]
    first = date(min(start.year + years, 9990), 1, 1) + timedelta(days=years * 3)
    last = first + timedelta(days=length)
    expected = sorted(
        {
            moment.date()
            for moment in rule.between(
                datetime(first.year, first.month, first.day),
                datetime(last.year, last.month, last.day, 23, 59, 59),
                inc=True,
            )
        }
    )
    days = RuleDays(rule, UTC)
    assert sorted(set(days.between(first, last))) == expected
    assert len(days._days) <= 6 * (length + 900)  # read from near ``first``, not DTSTART


def test_rules_with_count_are_read_from_their_start() -> None:
    rule = parse_rule("DTSTART:20000103T000000\nRRULE:FREQ=WEEKLY;COUNT=300")
    days = RuleDays(rule, UTC)
    assert days.between(date(2005, 1, 1), date(2005, 1, 31)) == [
        date(2005, 1, 3),
        date(2005, 1, 10),
        date(2005, 1, 17),
        date(2005, 1, 24),
        date(2005, 1, 31),
    ]


@pytest.mark.parametrize("years", [1, 30, 400])
def test_going_back_after_a_jump_is_exact(years: int) -> None:
    cal, ref = berlin(), berlin()
    far = START.replace(year=2025 + years)
    cal.is_open(far)
    assert cal.elapsed(START, far) == ref.elapsed(START, far)
