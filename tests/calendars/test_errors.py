"""Bad input to BusinessCalendar: every case is a CsmError subclass that names the value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from csmcore import (
    BusinessCalendar,
    CalendarError,
    CountryHolidays,
    CsmError,
    NaiveDatetimeError,
    NoBusinessTimeError,
    SerializationError,
    UnknownTimezoneError,
    ValidationError,
    from_data,
    to_data,
)

UTC = timezone.utc
AWARE = datetime(2025, 1, 6, 12, tzinfo=UTC)
NAIVE = datetime(2025, 1, 6, 12)
CAL = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
HOUR = timedelta(hours=1)

# ------------------------------------------------------------------------------------------------
# Naive datetimes, for every method, naming the argument
# ------------------------------------------------------------------------------------------------

CALLS: list[tuple[str, Callable[[], Any], str]] = [
    ("add", lambda: CAL.add(NAIVE, HOUR), "start"),
    ("add backwards", lambda: CAL.add(NAIVE, -HOUR), "start"),
    ("elapsed start", lambda: CAL.elapsed(NAIVE, AWARE), "start"),
    ("elapsed end", lambda: CAL.elapsed(AWARE, NAIVE), "end"),
    ("is_open", lambda: CAL.is_open(NAIVE), "at"),
    ("next_open", lambda: CAL.next_open(NAIVE), "at"),
    ("next_close", lambda: CAL.next_close(NAIVE), "at"),
    ("open_intervals start", lambda: list(CAL.open_intervals(NAIVE, AWARE)), "start"),
    ("open_intervals end", lambda: list(CAL.open_intervals(AWARE, NAIVE)), "end"),
]


@pytest.mark.parametrize(("method", "call", "argument"), CALLS, ids=[c[0] for c in CALLS])
def test_naive_datetimes_are_rejected_naming_the_argument(
    method: str, call: Callable[[], Any], argument: str
) -> None:
    with pytest.raises(NaiveDatetimeError) as info:
        call()
    assert info.value.argument == argument
    assert info.value.value == NAIVE
    assert str(info.value).startswith(f"{argument}=datetime.datetime(2025, 1, 6, 12, 0)")
    assert "naive" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_tzinfo_that_gives_no_offset_counts_as_naive() -> None:
    class NoOffset(timezone.__base__):  # type: ignore[misc, name-defined]
        def utcoffset(self, dt: datetime | None) -> None:
            return None

    moment = datetime(2025, 1, 6, 12, tzinfo=NoOffset())
    with pytest.raises(NaiveDatetimeError, match=r"^at="):
        CAL.is_open(moment)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: CAL.add(date(2025, 1, 6), HOUR), "start=datetime.date(2025, 1, 6)"),  # type: ignore[arg-type]
        (lambda: CAL.add("2025-01-06T12:00Z", HOUR), "start='2025-01-06T12:00Z'"),  # type: ignore[arg-type]
        (lambda: CAL.elapsed(AWARE, 1736164800), "end=1736164800"),  # type: ignore[arg-type]
        (lambda: CAL.is_open(None), "at=None"),  # type: ignore[arg-type]
        (lambda: CAL.next_open(1.5), "at=1.5"),  # type: ignore[arg-type]
    ],
)
def test_non_datetimes_are_rejected(call: Callable[[], Any], named: str) -> None:
    with pytest.raises(ValidationError, match="expected an aware datetime") as info:
        call()
    assert str(info.value).startswith(named)


@pytest.mark.parametrize("delta", [5, 3600.0, "1h", None, True, date(2025, 1, 1)])
def test_add_needs_a_timedelta(delta: object) -> None:
    with pytest.raises(ValidationError, match=r"expected a datetime\.timedelta") as info:
        CAL.add(AWARE, delta)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"delta={delta!r}")


# ------------------------------------------------------------------------------------------------
# Building a calendar
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Berln", "", "+25:00", "../etc"])
def test_unknown_zone_names(zone: str) -> None:
    with pytest.raises(UnknownTimezoneError) as info:
        BusinessCalendar.weekly("09:00", "17:00", timezone=zone)
    assert repr(zone) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_zone_of_the_wrong_type() -> None:
    with pytest.raises(UnknownTimezoneError, match="timezone=5 is a int"):
        BusinessCalendar.weekly("09:00", "17:00", timezone=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("opening", "closing", "bad"),
    [
        ("9am", "17:00", "'9am'"),
        ("09:00", "25:00", "'25:00'"),
        ("12:60", "17:00", "'12:60'"),
        ("09:00", "5pm", "'5pm'"),
        ("09-00", "17:00", "'09-00'"),
        ("", "17:00", "''"),
        (9, "17:00", "9"),
        ("09:00", None, "None"),
    ],
)
def test_malformed_times(opening: object, closing: object, bad: str) -> None:
    with pytest.raises(CalendarError) as info:
        BusinessCalendar(timezone="UTC", hours={"mon": [(opening, closing)]})
    message = str(info.value)
    assert bad in message
    assert "hours['mon'][0]" in message
    assert "'HH:MM'" in message  # says what is accepted


def test_24_00_is_a_close_only() -> None:
    with pytest.raises(CalendarError, match="'24:00' is accepted only as a closing time"):
        BusinessCalendar.weekly("24:00", "06:00", timezone="UTC")
    # ... and as a close it means midnight at the end of the day.
    cal = BusinessCalendar.weekly("20:00", "24:00", days="mon", timezone="UTC")
    assert cal.next_close(datetime(2025, 1, 6, 21, tzinfo=UTC)) == datetime(2025, 1, 7, tzinfo=UTC)


def test_aware_times_in_windows_are_rejected() -> None:
    with pytest.raises(CalendarError, match="carries a tzinfo"):
        BusinessCalendar(timezone="UTC", hours={"mon": [(time(9, tzinfo=UTC), time(17))]})


@pytest.mark.parametrize("key", ["funday", "mo", 7, -1, True, 1.0, None])
def test_unknown_weekday_keys(key: object) -> None:
    with pytest.raises(CalendarError, match="is not a weekday") as info:
        BusinessCalendar(timezone="UTC", hours={key: [("09:00", "17:00")]})
    assert repr(key) in str(info.value)
    assert "mon, tue, wed, thu, fri, sat, sun" in str(info.value)


def test_a_day_given_twice() -> None:
    with pytest.raises(CalendarError, match="mon is given twice"):
        BusinessCalendar(
            timezone="UTC", hours={"mon": [("09:00", "12:00")], 0: [("13:00", "14:00")]}
        )


@pytest.mark.parametrize(
    ("hours", "names"),
    [
        ({"tue": [("09:00", "12:00"), ("11:00", "13:00")]}, "on tue"),
        ({"wed": [("09:00", "17:00"), ("09:00", "17:00")]}, "on wed"),
        ({"fri": [("22:00", "06:00")], "sat": [("05:00", "09:00")]}, "on fri and sat"),
        ({"sun": [("23:00", "02:00")], "mon": [("01:00", "09:00")]}, "on sun and mon"),
        ({"mon": [("00:00", "24:00"), ("12:00", "13:00")]}, "on mon"),
    ],
)
def test_overlapping_windows_name_the_day(hours: dict[str, Any], names: str) -> None:
    with pytest.raises(CalendarError, match="overlapping windows") as info:
        BusinessCalendar(timezone="UTC", hours=hours)
    assert names in str(info.value)


def test_touching_windows_are_not_overlapping() -> None:
    cal = BusinessCalendar(
        timezone="UTC",
        hours={"mon": [("09:00", "12:00"), ("12:00", "24:00")], "tue": [("00:00", "02:00")]},
    )
    # Monday 09:00 to Tuesday 02:00, 17 hours in one piece.
    monday = datetime(2025, 1, 6, tzinfo=UTC)
    assert list(cal.open_intervals(monday, monday + timedelta(days=2))) == [
        (monday + 9 * HOUR, monday + 26 * HOUR)
    ]


@pytest.mark.parametrize(
    "hours", [{}, {"mon": []}, {day: [] for day in range(7)}], ids=["empty", "mon-empty", "all"]
)
def test_a_calendar_with_no_open_time(hours: dict[Any, Any]) -> None:
    with pytest.raises(CalendarError, match="no open window on any weekday"):
        BusinessCalendar(timezone="UTC", hours=hours)


@pytest.mark.parametrize(
    ("hours", "fragment"),
    [
        ("mon 09:00-17:00", "is not a mapping"),
        ({"mon": "09:00-17:00"}, "is not a list of (open, close) pairs"),
        ({"mon": [("09:00",)]}, "is not an (open, close) pair"),
        ({"mon": [("09:00", "12:00", "17:00")]}, "is not an (open, close) pair"),
    ],
)
def test_malformed_hours(hours: object, fragment: str) -> None:
    with pytest.raises(CalendarError) as info:
        BusinessCalendar(timezone="UTC", hours=hours)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("holidays", "fragment"),
    [
        ([datetime(2025, 12, 25, tzinfo=UTC)], "is not a datetime.date"),
        (["2025-12-25"], "'2025-12-25' is not a datetime.date"),
        (5, "holidays=5 is not a collection of dates"),
    ],
)
def test_bad_holidays(holidays: object, fragment: str) -> None:
    with pytest.raises(CalendarError) as info:
        BusinessCalendar.weekly("09:00", "17:00", timezone="UTC", holidays=holidays)
    assert fragment in str(info.value)


def test_unknown_country_in_country_holidays() -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", holidays=CountryHolidays(country="XX"))
    with pytest.raises(ValidationError, match="country='XX'"):
        cal.is_open(AWARE)


@pytest.mark.parametrize(
    ("closures", "error", "fragment"),
    [
        ([(NAIVE, AWARE)], NaiveDatetimeError, "closures[0][0]="),
        ([(AWARE, NAIVE)], NaiveDatetimeError, "closures[0][1]="),
        ([(AWARE, AWARE)], CalendarError, "closures[0]: end"),
        ([(AWARE + HOUR, AWARE)], CalendarError, "is not after start"),
        ([AWARE], CalendarError, "closures[0]="),
        (5, CalendarError, "closures=5"),
    ],
)
def test_bad_closures(closures: object, error: type[CsmError], fragment: str) -> None:
    with pytest.raises(error) as info:
        BusinessCalendar.weekly("09:00", "17:00", timezone="UTC", closures=closures)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("every first monday", "is not a valid RFC 5545 rule"),
        ("RRULE:FREQ=SOMETIMES", "is not a valid RFC 5545 rule"),
        (5, "recurring_holidays=5"),
        ([5], "5 is not a dateutil rrule"),
    ],
)
def test_bad_recurring_holidays(rule: object, fragment: str) -> None:
    with pytest.raises(CalendarError) as info:
        BusinessCalendar.weekly("09:00", "17:00", timezone="UTC", recurring_holidays=rule)
    assert fragment in str(info.value)


@pytest.mark.parametrize("days", ["", "someday", "mon-funday", [8]])
def test_bad_days_in_weekly(days: object) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar.weekly("09:00", "17:00", days=days, timezone="UTC")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# Holidays that close everything: bounded search, no hang
# ------------------------------------------------------------------------------------------------


class EveryDay:
    """A holiday container that contains every date."""

    def __contains__(self, day: object) -> bool:
        return True


@pytest.mark.parametrize(
    "call",
    [
        lambda cal: cal.add(AWARE, HOUR),
        lambda cal: cal.add(AWARE, -HOUR),
        lambda cal: cal.next_open(AWARE),
        lambda cal: cal.next_close(AWARE),
    ],
    ids=["add", "add-backwards", "next_open", "next_close"],
)
def test_holidays_closing_everything_raise_quickly(call: Callable[[BusinessCalendar], Any]) -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin", holidays=EveryDay())
    with pytest.raises(NoBusinessTimeError, match="3660 days") as info:
        call(cal)
    built, totalled, _ = cal.timeline._work
    assert built + totalled <= 16  # bounded: ten years of days (the horizon), not forever
    assert "holidays or closures shut every window" in str(info.value)
    assert isinstance(info.value, ArithmeticError)
    # The questions that need no search still answer.
    assert not cal.is_open(AWARE)
    assert cal.elapsed(AWARE, AWARE + timedelta(days=30)) == timedelta(0)


def test_a_long_closure_beyond_the_horizon_raises_but_a_shorter_one_is_crossed() -> None:
    # The horizon (search_horizon_days = 3660) counts from the end of the part of the timeline
    # already built, which can be up to two years past the start: 5000 days is surely beyond.
    far = AWARE + timedelta(days=5000)
    shut = BusinessCalendar.weekly("09:00", "17:00", timezone="UTC", closures=[(AWARE, far)])
    with pytest.raises(NoBusinessTimeError):
        shut.add(AWARE, HOUR)
    near = AWARE + timedelta(days=400)  # 2026-02-10, a Tuesday, 12:00 UTC
    crossed = BusinessCalendar.weekly("09:00", "17:00", timezone="UTC", closures=[(AWARE, near)])
    assert crossed.add(AWARE, HOUR) == near + HOUR


def test_a_24_7_calendar_has_no_next_close() -> None:
    with pytest.raises(NoBusinessTimeError, match="no closing instant"):
        BusinessCalendar.always().next_close(AWARE)


# ------------------------------------------------------------------------------------------------
# Malformed serialized calendars
# ------------------------------------------------------------------------------------------------

GOOD = to_data(
    BusinessCalendar.weekly(
        "09:00",
        "17:00",
        timezone="Europe/Berlin",
        holidays=[date(2025, 12, 25)],
        closures=[(AWARE, AWARE + HOUR)],
    )
)


def _with(**changes: object) -> dict[str, Any]:
    data = dict(GOOD)
    data.update(changes)
    return data


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ([1, 2], ["$:", "is not a mapping"]),
        (_without("hours"), ["$.hours", "required field missing"]),
        (_without("timezone"), ["$.timezone", "required field missing"]),
        (_with(colour="blue"), ["unknown calendar keys ['colour']"]),
        (_with(holidays=["2025-12-25", "25/12/2025"]), ["$.holidays[1]", "'25/12/2025'"]),
        (_with(holidays="2025-12-25"), ["$.holidays", "is not a list of ISO dates"]),
        (_with(holidays={"land": "US"}), ["$.holidays", "is not a country spec"]),
        (_with(closures=[["2025-01-01T00:00:00+00:00"]]), ["$.closures[0]", "pair"]),
        (_with(closures=[["yesterday", "today"]]), ["$.closures[0]", "'yesterday'"]),
        (_with(closures=[["2025-01-01T00:00", "2025-01-02T00:00"]]), ["closures[0][0]", "naive"]),
        (_with(timezone="Mars/Base"), ["'Mars/Base'"]),
        (_with(hours={"mon": [["9am", "17:00"]]}), ["hours['mon'][0]", "'9am'"]),
        (_with(hours={"moonday": [["09:00", "17:00"]]}), ["'moonday' is not a weekday"]),
        (_with(recurring_holidays=["nonsense"]), ["recurring_holidays", "'nonsense'"]),
    ],
)
def test_malformed_serialized_calendars(data: object, fragments: list[str]) -> None:
    with pytest.raises(SerializationError) as info:
        from_data(data, BusinessCalendar)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_the_good_data_itself_loads() -> None:
    # So the failures above come from the one change each makes.
    assert from_data(GOOD, BusinessCalendar).holidays == frozenset({date(2025, 12, 25)})


class Opaque:
    def __contains__(self, day: object) -> bool:
        return False


def test_calendars_that_cannot_be_serialised_say_why() -> None:
    with pytest.raises(SerializationError, match="holidays of type Opaque"):
        to_data(BusinessCalendar.weekly("09:00", "17:00", holidays=Opaque()))
    odd_zone = timezone(timedelta(hours=1, seconds=30))
    with pytest.raises(SerializationError, match="cannot serialise the time zone"):
        to_data(BusinessCalendar.weekly("09:00", "17:00", timezone=odd_zone))
