"""Hypothesis properties of BusinessCalendar over random calendars and random aware instants.

Two kinds of checks:

* an independent *oracle* (``Spec`` in ``tests.calendars.support``) rebuilds the open
  intervals by brute force from the same wall-clock spec the calendar was made from, resolving
  each window edge with the rules of DESIGN.md (a non-existent edge moves forward to the first
  wall time that exists, an ambiguous one takes its first occurrence). ``elapsed``,
  ``is_open`` and ``open_intervals`` must agree with it to the microsecond;
* algebraic laws that tie the methods together (round trips, monotonicity, additivity, the
  earliest / latest semantics of ``add``), over instants spread over 2000-2040.

Instants are drawn in many zones (not only the calendar's) and with both folds.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from csmcore import BusinessCalendar, NoBusinessTimeError, from_data, to_data
from tests.calendars.support import (
    DURATIONS,
    US,
    UTC,
    WIDE_INSTANTS,
    Spec,
    between,
    from_us,
    near,
    resolve_wall,
    scenarios,
    shift,
    to_us,
)


@given(st.data(), scenarios())
def test_elapsed_and_open_intervals_match_the_oracle(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    spec, cal, anchor = scenario
    a = data.draw(near(anchor), label="a")
    b = data.draw(near(anchor), label="b")
    expected = spec.elapsed(to_us(a), to_us(b))
    assert cal.elapsed(a, b) == timedelta(microseconds=expected)
    lo, hi = sorted((a, b), key=to_us)
    got = [(to_us(x), to_us(y)) for x, y in cal.open_intervals(lo, hi)]
    assert got == spec.intervals(to_us(lo), to_us(hi))


@given(st.data(), scenarios())
def test_is_open_matches_the_oracle(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    spec, cal, anchor = scenario
    for _ in range(3):
        t = data.draw(near(anchor), label="t")
        assert cal.is_open(t) is spec.is_open(to_us(t))
    # Exactly at the edges of the windows around the anchor: open at the opening, closed at
    # the closing instant (half-open windows). The oracle's intervals are merged, so a closing
    # instant strictly inside the range opens nothing.
    day = 86_400_000_000
    lo_bound, hi_bound = to_us(anchor) - day, to_us(anchor) + day
    for lo, hi in spec.intervals(lo_bound, hi_bound):
        if lo > lo_bound:
            assert cal.is_open(from_us(lo))
            assert not cal.is_open(from_us(lo - 1))
        if hi < hi_bound:
            assert not cal.is_open(from_us(hi))
            assert cal.is_open(from_us(hi - 1))


@given(st.data(), scenarios())
def test_holidays_have_no_open_time(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    spec, cal, _ = scenario
    closed = sorted(spec.holidays)
    assume(closed)
    holiday = data.draw(st.sampled_from(closed), label="holiday")
    for lo, hi in spec.window_spans(holiday):
        start, end = from_us(lo), from_us(hi)
        assert cal.elapsed(start, end) == timedelta(0)
        assert not cal.is_open(start)
        assert not cal.is_open(from_us((lo + hi) // 2))
        assert list(cal.open_intervals(start, end)) == []
        # add never spends time inside a holiday window: the microsecond it ends on is outside
        u = to_us(cal.add(start, US))
        assert not lo <= u - 1 < hi


# ------------------------------------------------------------------------------------------------
# Laws of add / elapsed, over 2000-2040
# ------------------------------------------------------------------------------------------------


@given(st.data(), scenarios(), DURATIONS)
def test_add_inverts_elapsed_and_gives_the_earliest_or_latest_instant(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime], d: timedelta
) -> None:
    _, cal, anchor = scenario
    s = data.draw(st.one_of(near(anchor), WIDE_INSTANTS), label="s")
    assert cal.add(s, timedelta(0)) is s

    # Forwards: elapsed(s, add(s, d)) == d ...
    u = cal.add(s, d)
    assert u.tzinfo is s.tzinfo
    assert to_us(u) > to_us(s)
    assert cal.elapsed(s, u) == d
    # ... u ends business time: the microsecond before it is open ...
    assert cal.is_open(shift(u, -1))
    # ... and it is the earliest such instant: one microsecond earlier is one short.
    assert cal.elapsed(s, shift(u, -1)) == d - US

    # Backwards: elapsed(add(s, -d), s) == d, at an open instant, the latest such.
    v = cal.add(s, -d)
    assert v.tzinfo is s.tzinfo
    assert to_us(v) < to_us(s)
    assert cal.elapsed(v, s) == d
    assert cal.elapsed(s, v) == -d
    assert cal.is_open(v)
    assert cal.elapsed(shift(v, 1), s) == d - US


@given(st.data(), scenarios(), DURATIONS)
def test_business_time_never_runs_faster_than_real_time(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime], d: timedelta
) -> None:
    # What the escalation rules' level-order check relies on (EscalationRule): across DST
    # changes, windows past midnight, 24-hour days, holidays and closures, business time
    # between two instants is at most the real time between them, so d of business time from
    # an instant ends no earlier than d of real time, and counted back starts no later.
    _, cal, anchor = scenario
    a = data.draw(st.one_of(near(anchor), WIDE_INSTANTS), label="a")
    b = data.draw(st.one_of(near(anchor), WIDE_INSTANTS), label="b")
    lo, hi = sorted((a, b), key=to_us)
    assert cal.elapsed(lo, hi) <= between(lo, hi)
    assert between(a, cal.add(a, d)) >= d
    assert between(cal.add(a, -d), a) >= d


@given(st.data(), scenarios(), DURATIONS, DURATIONS)
def test_add_is_monotonic_in_the_duration_and_the_start(
    data: st.DataObject,
    scenario: tuple[Spec, BusinessCalendar, datetime],
    d1: timedelta,
    d2: timedelta,
) -> None:
    _, cal, anchor = scenario
    s = data.draw(near(anchor), label="s")
    small, large = sorted((d1, d2))
    assert to_us(cal.add(s, small)) <= to_us(cal.add(s, large))
    assert to_us(cal.add(s, -large)) <= to_us(cal.add(s, -small))
    if small < large:
        assert to_us(cal.add(s, small)) < to_us(cal.add(s, large))
        assert to_us(cal.add(s, -large)) < to_us(cal.add(s, -small))
    # Adding in two steps equals adding at once, in both directions.
    assert to_us(cal.add(cal.add(s, small), large)) == to_us(cal.add(s, small + large))
    assert to_us(cal.add(cal.add(s, -small), -large)) == to_us(cal.add(s, -small - large))

    s2 = data.draw(near(anchor), label="s2")
    early, late = sorted((s, s2), key=to_us)
    for delta in (small, -small):
        assert to_us(cal.add(early, delta)) <= to_us(cal.add(late, delta))


@given(st.data(), scenarios())
def test_elapsed_is_additive_and_antisymmetric(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    _, cal, anchor = scenario
    # a anywhere in 2000-2040 or near the calendar's holidays; b and c within 400 days of a
    # (so each example builds a few years of timeline, not forty).
    a = data.draw(st.one_of(near(anchor), WIDE_INSTANTS), label="a")
    b, c = (data.draw(near(a.astimezone(UTC), days=400), label=name) for name in "bc")
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)
    assert cal.elapsed(a, b) == -cal.elapsed(b, a)
    assert cal.elapsed(a, a) == timedelta(0)
    # Business time never exceeds real time, and has the sign of end - start.
    real = between(a, b)
    spent = cal.elapsed(a, b)
    assert abs(spent) <= abs(real)
    assert spent == timedelta(0) or (spent > timedelta(0)) == (real > timedelta(0))


@given(st.data(), scenarios())
def test_open_intervals_next_open_and_next_close_agree_with_elapsed(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    _, cal, anchor = scenario
    a = data.draw(near(anchor), label="a")
    b = data.draw(near(anchor), label="b")
    if to_us(b) < to_us(a):
        a, b = b, a
    spans = list(cal.open_intervals(a, b))
    assert sum((between(lo, hi) for lo, hi in spans), timedelta(0)) == cal.elapsed(a, b)
    for lo, hi in spans:
        assert lo.tzinfo is a.tzinfo
        assert hi.tzinfo is a.tzinfo
        assert to_us(a) <= to_us(lo) < to_us(hi) <= to_us(b)
        assert cal.elapsed(lo, hi) == between(lo, hi)  # open throughout
    for (_, hi), (lo, _) in pairwise(spans):
        assert to_us(hi) < to_us(lo)  # adjacent intervals come out merged
        assert cal.elapsed(hi, lo) == timedelta(0)  # closed in between

    t = data.draw(near(anchor), label="t")
    opened = cal.next_open(t)
    assert opened.tzinfo is t.tzinfo
    assert cal.is_open(opened)
    if cal.is_open(t):
        assert opened is t
    else:
        assert to_us(opened) > to_us(t)
        assert cal.elapsed(t, opened) == timedelta(0)
        assert not cal.is_open(shift(opened, -1))
        assert to_us(cal.add(t, US)) == to_us(opened) + 1
    try:
        closes = cal.next_close(t)
    except NoBusinessTimeError:
        # Only a calendar that never closes within the search horizon may refuse.
        horizon = timedelta(days=BusinessCalendar.search_horizon_days)
        assert cal.elapsed(opened, shift(opened, horizon // US)) == horizon
        return
    assert closes.tzinfo is t.tzinfo
    assert to_us(closes) > to_us(opened)
    assert cal.elapsed(opened, closes) == between(opened, closes)
    assert cal.is_open(shift(closes, -1))
    assert not cal.is_open(closes)


# ------------------------------------------------------------------------------------------------
# 24/7 in UTC is plain datetime arithmetic
# ------------------------------------------------------------------------------------------------

ALWAYS = BusinessCalendar.always()


@given(
    WIDE_INSTANTS,
    WIDE_INSTANTS,
    st.integers(-50 * 365 * 86_400_000_000, 50 * 365 * 86_400_000_000).map(
        lambda u: timedelta(microseconds=u)
    ),
)
def test_always_open_agrees_with_datetime_arithmetic(
    s: datetime, e: datetime, d: timedelta
) -> None:
    # Real elapsed time (compared in UTC: subtracting two datetimes that share a tzinfo would
    # give wall-clock time instead).
    assert ALWAYS.elapsed(s, e) == e.astimezone(UTC) - s.astimezone(UTC)
    u = ALWAYS.add(s, d)
    assert u.tzinfo is s.tzinfo
    assert u.astimezone(UTC) == s.astimezone(UTC) + d
    assert ALWAYS.is_open(s)
    assert ALWAYS.next_open(s) is s


# ------------------------------------------------------------------------------------------------
# Serialization
# ------------------------------------------------------------------------------------------------


@given(scenarios())
def test_serialization_round_trip(scenario: tuple[Spec, BusinessCalendar, datetime]) -> None:
    cal = scenario[1]
    data = to_data(cal)
    back = from_data(json.loads(json.dumps(data)), BusinessCalendar)
    assert back == cal
    assert to_data(back) == data


def test_oracle_resolves_dst_edges_as_design_says() -> None:
    """The oracle itself, on the two cases DESIGN.md pins (so its agreement means something)."""
    berlin = ZoneInfo("Europe/Berlin")
    # 2025-03-30 02:30 does not exist in Berlin (02:00 CET -> 03:00 CEST): first instant after
    # the gap is 03:00 CEST = 01:00 UTC.
    assert from_us(resolve_wall(berlin, datetime(2025, 3, 30, 2, 30))) == datetime(
        2025, 3, 30, 1, 0, tzinfo=UTC
    )
    # 2025-10-26 02:30 happens twice (CEST then CET): first occurrence 02:30 CEST = 00:30 UTC.
    assert from_us(resolve_wall(berlin, datetime(2025, 10, 26, 2, 30))) == datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("weekly", [((0, 540, 480),), ((4, 1320, 480), (6, 0, 1440))])
def test_oracle_counts_plain_weeks(weekly: tuple[tuple[int, int, int], ...]) -> None:
    spec = Spec("UTC", weekly, frozenset(), False, ())
    start = to_us(datetime(2025, 1, 6, tzinfo=UTC))  # a Monday
    week = 7 * 86_400_000_000
    assert spec.elapsed(start, start + week) == sum(length for *_, length in weekly) * 60_000_000
