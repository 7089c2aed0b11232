"""The calendar's wall-clock fast path must give exactly what the exact path gives.

Inputs whose tzinfo *is* the calendar's zone take a fast path (bisect over local datetimes); the
same instants given in UTC take the exact integer path. They must agree on every result, including
its UTC offset and fold, for random calendars (DST zones, windows touching DST changes, 24/7),
and for wall times that are ambiguous (fold 0 and 1) or missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from csmcore import BusinessCalendar
from tests.calendars.support import DURATIONS, Spec, scenarios

UTC = timezone.utc


def _same(a: datetime, b: datetime) -> bool:
    return a == b and a.utcoffset() == b.utcoffset() and a.tzinfo is b.tzinfo and a.fold == b.fold


def _wall_instants(zone: tzinfo, anchor: datetime) -> st.SearchStrategy[datetime]:
    """Wall times in the calendar's own zone near ``anchor``: any minute, either fold, so that
    ambiguous and missing wall times come up around DST changes."""
    assert isinstance(anchor, datetime)
    base = anchor.astimezone(zone).replace(tzinfo=None)
    return st.builds(
        lambda minutes, micro, fold: (
            base + timedelta(minutes=minutes, microseconds=micro)
        ).replace(tzinfo=zone, fold=fold),
        st.integers(-40 * 1440, 40 * 1440),
        st.integers(0, 999_999),
        st.integers(0, 1),
    )


@given(st.data(), scenarios())
def test_fast_path_agrees_with_the_exact_path(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    _, cal, anchor = scenario
    zone = cal.timezone
    start = data.draw(_wall_instants(zone, anchor), label="start")
    end = data.draw(_wall_instants(zone, anchor), label="end")
    delta = data.draw(DURATIONS, label="delta") * data.draw(st.sampled_from([1, -1]))
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    assert cal.elapsed(start, end) == cal.elapsed(start_utc, end_utc)
    fast = cal.add(start, delta)
    exact = cal.add(start_utc, delta).astimezone(zone)
    assert _same(fast, exact), (fast, exact)
    assert cal.add(start, timedelta(0)) is start
    event("fast path on" if cal.timeline._fast is not None else "fast path off")


def _open_hours(cal: BusinessCalendar, day: datetime) -> timedelta:
    return cal.elapsed(day, day + timedelta(days=1))


@pytest.mark.parametrize(
    ("zone", "fold_day", "repeated_hour"),
    [
        ("America/New_York", datetime(2025, 11, 2), 1),  # 02:00 EDT -> 01:00 EST
        ("Europe/Berlin", datetime(2025, 10, 26), 2),  # 03:00 CEST -> 02:00 CET
    ],
)
def test_fast_path_turns_off_when_a_window_holds_a_dst_change(
    zone: str, fold_day: datetime, repeated_hour: int
) -> None:
    tz = ZoneInfo(zone)
    office = BusinessCalendar.weekly("09:00", "17:00", days="mon-sun", timezone=zone)
    night = BusinessCalendar.weekly("00:00", "06:00", days="mon-sun", timezone=zone)
    anchor = fold_day.replace(hour=12, tzinfo=tz)
    assert office.is_open(anchor)
    assert night.is_open(anchor.replace(hour=3)) is True
    # Windows far from the change: the fast path is on. A window holding the change: off.
    assert office.timeline._fast is not None
    assert night.timeline._fast is None
    # Either way the answers are exact: the night window holds 7 real hours on fall-back day.
    assert _open_hours(night, fold_day.replace(tzinfo=tz)) == timedelta(hours=7)
    first = fold_day.replace(hour=repeated_hour, minute=30, tzinfo=tz, fold=0)
    second = first.replace(fold=1)
    assert night.elapsed(first, second) == timedelta(hours=1)
    # In the office calendar both occurrences of 01:30 lie in the closed night: same position.
    assert office.elapsed(first, second) == timedelta(0)
    assert office.add(second, timedelta(hours=1)) == fold_day.replace(hour=10, tzinfo=tz)
