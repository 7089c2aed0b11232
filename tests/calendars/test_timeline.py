"""The public positions API of a calendar's business-time line (BusinessTimeline)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore import BusinessCalendar, NaiveDatetimeError, NoBusinessTimeError
from csmcore.calendars import BusinessTimeline
from tests.calendars.support import DURATIONS, US, near, scenarios, to_us

UTC = timezone.utc


@given(st.data(), scenarios())
def test_positions_are_elapsed_and_instants_are_add(
    data: st.DataObject, scenario: tuple[object, BusinessCalendar, datetime]
) -> None:
    _, cal, anchor = scenario
    line = cal.timeline
    a, b = data.draw(near(anchor)), data.draw(near(anchor))
    assert timedelta(microseconds=line.position_of(b) - line.position_of(a)) == cal.elapsed(a, b)
    assert line.position(to_us(a)) == line.position_of(a)
    delta = data.draw(DURATIONS)
    goal = line.position_of(a) + delta // US
    due = line.instant_at(goal, to_us(a))
    assert due == to_us(cal.add(a, delta))
    assert line.instant_from(goal, to_us(a), line.position_of(a)) == due
    assert line.instant_of(goal, a) == cal.add(a, delta)
    assert line.instant_of(goal, a).tzinfo is a.tzinfo
    assert line.instant_at(line.position_of(a) - 1, to_us(a)) == to_us(a)  # not ahead: floor


@pytest.mark.parametrize("offset", [timedelta(hours=14), timedelta(hours=-12), timedelta(0)])
def test_every_instant_within_the_limits_has_a_position(offset: timedelta) -> None:
    # A fresh calendar for each end: one timeline covering both would be built year by year.
    def fresh() -> BusinessTimeline:
        return BusinessCalendar.weekly("09:00", "17:00", timezone=timezone(offset)).timeline

    day = 86_400_000_000
    for first, last in (
        (BusinessTimeline.MIN_US, BusinessTimeline.MIN_US + day),
        (BusinessTimeline.MAX_US - day, BusinessTimeline.MAX_US - 1),
    ):
        line = fresh()
        assert 0 <= line.position(last) - line.position(first) <= day


def test_naive_datetimes_are_refused_naming_the_argument() -> None:
    line = BusinessCalendar.always().timeline
    with pytest.raises(NaiveDatetimeError, match="moment"):
        line.position_of(datetime(2025, 1, 1))
    with pytest.raises(NaiveDatetimeError, match="not_before"):
        line.instant_of(0, datetime(2025, 1, 1))


def test_no_open_time_ahead_raises() -> None:
    start = datetime(2025, 1, 6, 9, tzinfo=UTC)
    cal = BusinessCalendar.weekly(
        "09:00", "17:00", timezone="UTC", closures=[(start, start.replace(year=2045))]
    )
    line = cal.timeline
    with pytest.raises(NoBusinessTimeError):
        line.instant_of(line.position_of(start) + 1, start)
