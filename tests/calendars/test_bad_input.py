"""Issue 11: bad input to calendars ends in a CsmError, up front and in bounded time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from csmcore.calendars import BusinessCalendar, BusinessTimeline
from csmcore.errors import CalendarError, InvalidType, ValidationError
from tests.guard import hang_guard

UTC = timezone.utc
CAL = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
LATE = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))  # UTC form overflows
EARLY = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))
END = datetime.max.replace(tzinfo=UTC)
FAR = datetime(1, 1, 1, tzinfo=UTC)
OK = datetime(2025, 1, 6, 10, tzinfo=UTC)

CALLS: dict[str, Callable[[datetime], object]] = {
    "is_open": lambda at: CAL.is_open(at),
    "next_open": lambda at: CAL.next_open(at),
    "next_close": lambda at: CAL.next_close(at),
    "open_intervals": lambda at: CAL.open_intervals(at, OK),
    "open_intervals_end": lambda at: CAL.open_intervals(OK, at),
    "add": lambda at: CAL.add(at, timedelta(hours=1)),
    "elapsed": lambda at: CAL.elapsed(at, OK),
}
ARGUMENT = {"open_intervals": "start", "open_intervals_end": "end", "add": "start"}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("at", [LATE, EARLY, END, FAR], ids=["late", "early", "end", "year1"])
def test_instants_out_of_range_are_refused(name: str, at: datetime) -> None:
    argument = ARGUMENT.get(name, "start" if name == "elapsed" else "at")
    with pytest.raises(ValidationError, match=rf"^{argument}=.*supported range") as info:
        CALLS[name](at)
    assert info.value.field == argument
    assert not isinstance(info.value, OverflowError)


def test_the_range_is_the_timelines() -> None:
    lo = datetime(3, 1, 2, tzinfo=UTC)
    hi = datetime(9998, 12, 30, tzinfo=UTC)
    with pytest.raises(ValidationError):
        CAL.is_open(lo - timedelta(microseconds=1))
    with pytest.raises(ValidationError):
        CAL.is_open(hi)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert (lo - epoch) // timedelta(microseconds=1) == BusinessTimeline.MIN_US


def test_weekly_days_of_the_wrong_type_is_invalid_type() -> None:
    with pytest.raises(InvalidType, match=r"^days=0 is a int; expected a string") as info:
        BusinessCalendar.weekly("09:00", "17:00", days=0)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert info.value.field == "days"


@pytest.mark.parametrize("holidays", [b"x", "2025-01-01", bytearray(b"x")])
def test_holidays_given_as_text_or_bytes_are_refused_when_built(holidays: object) -> None:
    with pytest.raises(CalendarError, match=r"^holidays=.*not a collection of dates"):
        BusinessCalendar.weekly("09:00", "17:00", holidays=holidays)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("DTSTART:20240101T000000\nRRULE:FREQ=YEARLY;BYEASTER=99999", "BYEASTER=99999"),
        ("DTSTART:20240101T000000\nRRULE:FREQ=YEARLY;BYEASTER=260", "BYEASTER=260"),
        ("DTSTART:20240101T000000\nRRULE:FREQ=SECONDLY", "more often than daily"),
        ("DTSTART:20240101T000000\nRRULE:FREQ=HOURLY", "more often than daily"),
        ("DTSTART:00010101T000000\nRRULE:FREQ=DAILY", "periods"),
        ("DTSTART:20000101T000000\nRRULE:FREQ=DAILY;COUNT=100001", "COUNT=100001"),
    ],
)
def test_absurd_rules_are_refused_when_built_naming_the_rule(rule: str, says: str) -> None:
    # Refused up front: the rule is checked, never expanded (the guard only turns a hang into
    # a failure; speed is in benchmarks/bench_limits.py).
    with (
        hang_guard(),
        pytest.raises(CalendarError, match=f"^recurring_holidays: {re.escape(repr(rule))}") as e,
    ):
        BusinessCalendar.weekly("09:00", "17:00", recurring_holidays=rule)
    assert says in str(e.value)


@pytest.mark.parametrize(
    "rule",
    [
        "DTSTART:20240101T000000\nRRULE:FREQ=DAILY;COUNT=5",
        "DTSTART:00030101T000000\nRRULE:FREQ=WEEKLY;BYDAY=SU",
        "DTSTART:20000101T000000\nRRULE:FREQ=YEARLY;BYEASTER=-2",
        "DTSTART:20240101T000000\nRRULE:FREQ=DAILY;UNTIL=20300101T000000",
    ],
)
def test_bounded_rules_are_accepted(rule: str) -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", recurring_holidays=rule)
    assert cal.is_open(datetime(2025, 1, 7, 10, tzinfo=UTC)) in (True, False)
