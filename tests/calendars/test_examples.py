"""Worked BusinessCalendar examples, each expected value reasoned out by hand in a comment.

Time-zone facts used (IANA tz database):
- Europe/Berlin: CET (+01:00) / CEST (+02:00); 2025-03-30 02:00 CET -> 03:00 CEST (01:00 UTC),
  2025-10-26 03:00 CEST -> 02:00 CET (01:00 UTC).
- America/New_York: EST (-05:00) / EDT (-04:00); 2025-03-09 02:00 EST -> 03:00 EDT (07:00 UTC),
  2025-11-02 02:00 EDT -> 01:00 EST (06:00 UTC).
- America/Sao_Paulo changed at local midnight: 2018-11-04 00:00 -03 -> 01:00 -02 (03:00 UTC),
  2019-02-17 00:00 -02 -> 2019-02-16 23:00 -03 (02:00 UTC); no DST since 2019.
- Australia/Lord_Howe: +10:30 / +11:00, 2025-10-05 02:00 -> 02:30.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from dateutil.rrule import MO, MONTHLY, rrule, rruleset

from csmcore import BusinessCalendar, CountryHolidays

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
H = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def one_day(zone: str, day: date, window: tuple[str, str]) -> BusinessCalendar:
    """A calendar open only in ``window`` on ``day``'s weekday."""
    return BusinessCalendar(timezone=zone, hours={day.weekday(): [window]})


def spans(cal: BusinessCalendar, start: datetime, end: datetime) -> list[tuple[str, str]]:
    return [(a.isoformat(), b.isoformat()) for a, b in cal.open_intervals(start, end)]


# ------------------------------------------------------------------------------------------------
# DST days: business time is real time
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "opens_utc", "closes_utc", "hours"),
    [
        # Berlin spring forward: 01:00 CET = 00:00 UTC; 04:00 CEST = 02:00 UTC -> 2 real hours.
        ("Europe/Berlin", date(2025, 3, 30), utc(2025, 3, 30, 0), utc(2025, 3, 30, 2), 2),
        # Berlin fall back: 01:00 CEST = 23:00 UTC the day before; 04:00 CET = 03:00 UTC -> 4 h.
        ("Europe/Berlin", date(2025, 10, 26), utc(2025, 10, 25, 23), utc(2025, 10, 26, 3), 4),
        # New York spring forward: 01:00 EST = 06:00 UTC; 04:00 EDT = 08:00 UTC -> 2 h.
        ("America/New_York", date(2025, 3, 9), utc(2025, 3, 9, 6), utc(2025, 3, 9, 8), 2),
        # New York fall back: 01:00 is ambiguous, first occurrence 01:00 EDT = 05:00 UTC;
        # 04:00 EST = 09:00 UTC -> 4 h.
        ("America/New_York", date(2025, 11, 2), utc(2025, 11, 2, 5), utc(2025, 11, 2, 9), 4),
        # Lord Howe springs forward 30 minutes at 02:00: 01:00 +10:30 = 14:30 UTC the day before,
        # 04:00 +11:00 = 17:00 UTC -> 2.5 h.
        (
            "Australia/Lord_Howe",
            date(2025, 10, 5),
            utc(2025, 10, 4, 14, 30),
            utc(2025, 10, 4, 17),
            2.5,
        ),
    ],
)
def test_a_one_to_four_window_on_a_dst_day_holds_real_hours(
    zone: str, day: date, opens_utc: datetime, closes_utc: datetime, hours: float
) -> None:
    cal = one_day(zone, day, ("01:00", "04:00"))
    tz = ZoneInfo(zone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    next_midnight = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)
    assert cal.elapsed(midnight, next_midnight) == timedelta(hours=hours)
    got = list(cal.open_intervals(midnight, next_midnight))
    assert [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in got] == [(opens_utc, closes_utc)]
    # The whole budget of the day ends exactly at the closing instant.
    assert cal.add(midnight, timedelta(hours=hours)).astimezone(UTC) == closes_utc
    # One real hour after opening, whatever the wall clock says.
    assert cal.add(midnight, H).astimezone(UTC) == opens_utc + H


def test_berlin_spring_forward_add_crosses_the_gap_in_real_time() -> None:
    cal = one_day("Europe/Berlin", date(2025, 3, 30), ("01:00", "04:00"))
    start = datetime(2025, 3, 30, 1, 30, tzinfo=BERLIN)  # 00:30 UTC
    # 1 business hour later is 01:30 UTC, which Berlin shows as 03:30 CEST (02:xx never happened).
    assert cal.add(start, H).isoformat() == "2025-03-30T03:30:00+02:00"
    # From 01:30 CET to the 04:00 CEST close: 00:30 UTC -> 02:00 UTC = 1.5 h.
    assert cal.elapsed(start, cal.next_close(start)) == timedelta(hours=1, minutes=30)


def test_new_york_fall_back_counts_the_repeated_hour() -> None:
    cal = BusinessCalendar.weekly("00:00", "24:00", days="sun", timezone="America/New_York")
    first = datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK, fold=0)  # EDT, 05:30 UTC
    second = datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK, fold=1)  # EST, 06:30 UTC
    # Same wall time, one real hour apart: business time counts real time.
    assert cal.elapsed(first, second) == H
    # The Sunday window (00:00 EDT = 04:00 UTC to Monday 00:00 EST = 05:00 UTC) holds 25 hours.
    sunday = datetime(2025, 11, 2, tzinfo=NEW_YORK)
    assert cal.elapsed(sunday, sunday + timedelta(days=1)) == timedelta(hours=25)
    # 2 business hours after 00:30 EDT (04:30 UTC) is 06:30 UTC = 01:30 EST: the second 01:30.
    result = cal.add(datetime(2025, 11, 2, 0, 30, tzinfo=NEW_YORK), 2 * H)
    assert result.isoformat() == "2025-11-02T01:30:00-05:00"
    assert result.fold == 1


def test_an_ambiguous_edge_takes_its_first_occurrence_in_new_york() -> None:
    # 2025-11-02 01:00-01:59 happens twice in New York (EDT, then EST). A window 01:30-03:00
    # opens at the first 01:30 (EDT = 05:30 UTC) and closes at 03:00 EST (08:00 UTC): 2.5 h.
    cal = one_day("America/New_York", date(2025, 11, 2), ("01:30", "03:00"))
    saturday = datetime(2025, 11, 1, 12, tzinfo=NEW_YORK)
    opened = cal.next_open(saturday)
    assert opened.astimezone(UTC) == utc(2025, 11, 2, 5, 30)
    assert opened.isoformat() == "2025-11-02T01:30:00-04:00"
    assert opened.fold == 0
    assert cal.elapsed(saturday, utc(2025, 11, 3)) == timedelta(hours=2, minutes=30)
    # The second 01:30 (EST, fold=1) is an hour into the window.
    second = datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK, fold=1)
    assert cal.is_open(second)
    assert cal.elapsed(opened, second) == H


def test_sao_paulo_midnight_spring_forward() -> None:
    # Sunday 2018-11-04: local 00:00-00:59 never happened (00:00 -03 became 01:00 -02).
    cal = BusinessCalendar(timezone="America/Sao_Paulo", hours={"sat": [("22:00", "02:00")]})
    saturday = datetime(2018, 11, 3, 12, tzinfo=SAO_PAULO)
    sunday_noon = utc(2018, 11, 4, 12)
    # Sat 22:00 -03 = Sun 01:00 UTC to "Sun 02:00" = 02:00 -02 = 04:00 UTC: 3 real hours, not 4.
    assert spans(cal, saturday, sunday_noon) == [
        ("2018-11-03T22:00:00-03:00", "2018-11-04T02:00:00-02:00")
    ]
    assert cal.elapsed(saturday, sunday_noon) == 3 * H
    # Sunday 00:30 does not exist: the opening moves forward to the first instant that does,
    # 01:00 -02 (03:00 UTC).
    only_sunday = BusinessCalendar(
        timezone="America/Sao_Paulo", hours={"sun": [("00:30", "04:00")]}
    )
    assert only_sunday.next_open(saturday).isoformat() == "2018-11-04T01:00:00-02:00"
    # 01:00 -02 to 04:00 -02: 3 hours.
    assert only_sunday.elapsed(saturday, sunday_noon) == 3 * H


def test_sao_paulo_midnight_fall_back() -> None:
    # 2019-02-17 00:00 -02 became 2019-02-16 23:00 -03: Saturday 23:00-23:59 happened twice.
    cal = BusinessCalendar(timezone="America/Sao_Paulo", hours={"sat": [("23:30", "24:00")]})
    saturday = datetime(2019, 2, 16, 20, tzinfo=SAO_PAULO)
    # The ambiguous 23:30 opening takes its first occurrence: 23:30 -02 = 01:30 UTC.
    opened = cal.next_open(saturday)
    assert opened.isoformat() == "2019-02-16T23:30:00-02:00"
    assert opened.astimezone(UTC) == utc(2019, 2, 17, 1, 30)
    # "24:00" is Sunday 00:00, which exists once: -03, 03:00 UTC. So the window holds 1.5 h.
    assert cal.elapsed(saturday, saturday + timedelta(days=1)) == timedelta(hours=1, minutes=30)
    assert cal.next_close(saturday).astimezone(UTC) == utc(2019, 2, 17, 3)
    # A whole-Saturday window 00:00 -02 (02:00 UTC) .. Sunday 00:00 -03 (03:00 UTC) is 25 h.
    whole = BusinessCalendar(timezone="America/Sao_Paulo", hours={"sat": [("00:00", "24:00")]})
    assert whole.elapsed(saturday - timedelta(days=1), saturday + timedelta(days=1)) == 25 * H


def test_a_missing_opening_edge_moves_forward_in_berlin() -> None:
    # 02:30 does not exist on 2025-03-30 in Berlin; the first instant that does is 03:00 CEST.
    cal = one_day("Europe/Berlin", date(2025, 3, 30), ("02:30", "05:00"))
    day_before = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    monday = datetime(2025, 3, 31, tzinfo=BERLIN)
    assert cal.next_open(day_before).isoformat() == "2025-03-30T03:00:00+02:00"
    # 03:00 CEST .. 05:00 CEST: 2 hours.
    assert cal.elapsed(day_before, monday) == 2 * H
    # A window entirely inside the gap holds no time at all that day.
    gap_only = BusinessCalendar(
        timezone="Europe/Berlin", hours={"sun": [("02:10", "02:50")], "mon": [("09:00", "10:00")]}
    )
    assert gap_only.elapsed(day_before, monday) == timedelta(0)
    # (and Monday's 09:00-10:00 is still there)
    assert gap_only.elapsed(day_before, monday + timedelta(days=1)) == H


# ------------------------------------------------------------------------------------------------
# Overnight windows and holidays
# ------------------------------------------------------------------------------------------------


def test_holiday_closes_the_overnight_window_opening_on_it_but_not_the_one_before() -> None:
    # Every night 22:00-06:00 in Berlin (winter, +01:00); 2025-12-25 is a holiday.
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        hours={day: [("22:00", "06:00")] for day in range(7)},
        holidays=[date(2025, 12, 25)],
    )

    def at(day: int, hour: int) -> datetime:
        return datetime(2025, 12, day, hour, tzinfo=BERLIN)

    # The window that opened on the 24th runs into the holiday morning: still open.
    assert cal.is_open(at(25, 3))
    # The window that would open on the 25th (22:00 -> 06:00 on the 26th) is closed.
    assert not cal.is_open(at(25, 23))
    assert not cal.is_open(at(26, 3))
    # The one opening on the 26th is back.
    assert cal.is_open(at(26, 23))
    # 24th-night 8 h + 25th-night 0 h + 26th-night 8 h.
    assert cal.elapsed(at(24, 12), at(27, 12)) == 16 * H
    # From 05:00 on the 25th: 1 h left until 06:00, the next opening is the 26th at 22:00, plus
    # 1 h = 23:00 on the 26th.
    assert cal.add(at(25, 5), 2 * H).isoformat() == "2025-12-26T23:00:00+01:00"


def test_ticket_created_on_a_weekend_starts_on_monday() -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="America/New_York")
    saturday = datetime(2025, 6, 14, 10, tzinfo=NEW_YORK)
    # Nothing counts until Monday 09:00; 4 hours later is Monday 13:00 EDT.
    assert cal.add(saturday, 4 * H).isoformat() == "2025-06-16T13:00:00-04:00"
    assert cal.elapsed(saturday, datetime(2025, 6, 16, 13, tzinfo=NEW_YORK)) == 4 * H
    assert cal.next_open(saturday).isoformat() == "2025-06-16T09:00:00-04:00"
    assert not cal.is_open(saturday)


def test_budget_used_up_at_closing_returns_the_closing_instant() -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="America/New_York")
    monday_9 = datetime(2025, 6, 16, 9, tzinfo=NEW_YORK)
    # 8 hours from the Monday opening end at Monday 17:00, not at Tuesday 09:00 (same business
    # time, but later): add gives the earliest instant.
    assert cal.add(monday_9, 8 * H).isoformat() == "2025-06-16T17:00:00-04:00"
    assert cal.add(monday_9 + 4 * H, 4 * H).isoformat() == "2025-06-16T17:00:00-04:00"
    # One microsecond more spills into Tuesday.
    spill = cal.add(monday_9, 8 * H + timedelta(microseconds=1))
    assert spill.isoformat() == "2025-06-17T09:00:00.000001-04:00"


def test_backwards_add_gives_the_latest_instant() -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="America/New_York")
    tuesday = datetime(2025, 6, 17, 10, tzinfo=NEW_YORK)
    # 1 h on Tuesday (09:00-10:00), then 1 h before Monday 17:00 = 16:00.
    assert cal.add(tuesday, -2 * H).isoformat() == "2025-06-16T16:00:00-04:00"
    # From Tuesday 09:00 back 8 h: all of Monday; the latest such instant is Monday 09:00 (any
    # earlier instant down to Friday 17:00 has the same business time to Tuesday 09:00).
    assert cal.add(tuesday - H, -8 * H).isoformat() == "2025-06-16T09:00:00-04:00"
    # From Monday 09:00 back 1 h: Friday 16:00.
    monday = datetime(2025, 6, 16, 9, tzinfo=NEW_YORK)
    assert cal.add(monday, -H).isoformat() == "2025-06-13T16:00:00-04:00"
    assert cal.elapsed(tuesday, datetime(2025, 6, 16, 16, tzinfo=NEW_YORK)) == -2 * H


# ------------------------------------------------------------------------------------------------
# Recurring and partial closures
# ------------------------------------------------------------------------------------------------

FIRST_MONDAYS = rrule(MONTHLY, byweekday=MO(+1), dtstart=datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "rule",
    [
        FIRST_MONDAYS,
        "DTSTART:20250101T000000\nRRULE:FREQ=MONTHLY;BYDAY=+1MO",
        [FIRST_MONDAYS],
    ],
    ids=["rrule", "rfc5545-string", "list"],
)
def test_recurring_closure_every_first_monday(rule: object) -> None:
    cal = BusinessCalendar.weekly(
        "09:00", "17:00", timezone="Europe/Berlin", recurring_holidays=rule
    )
    # 2025-06-01 is a Sunday, so Monday 2025-06-02 is June's first Monday: closed.
    friday = datetime(2025, 5, 30, 16, tzinfo=BERLIN)
    # 1 h on Friday, Monday closed, 1 h on Tuesday -> Tuesday 10:00.
    assert cal.add(friday, 2 * H).isoformat() == "2025-06-03T10:00:00+02:00"
    assert not cal.is_open(datetime(2025, 6, 2, 12, tzinfo=BERLIN))
    # The second Monday of June (the 9th) is an ordinary working day.
    assert cal.is_open(datetime(2025, 6, 9, 12, tzinfo=BERLIN))


def test_recurring_closure_from_an_rruleset_with_an_exception() -> None:
    rules = rruleset()
    rules.rrule(FIRST_MONDAYS)
    rules.exdate(datetime(2025, 6, 2))  # open on June's first Monday after all
    cal = BusinessCalendar.weekly(
        "09:00", "17:00", timezone="Europe/Berlin", recurring_holidays=rules
    )
    assert cal.is_open(datetime(2025, 6, 2, 12, tzinfo=BERLIN))
    assert not cal.is_open(datetime(2025, 7, 7, 12, tzinfo=BERLIN))  # July's first Monday


def test_half_day_closure_on_christmas_eve() -> None:
    cal = BusinessCalendar.weekly(
        "09:00",
        "17:00",
        timezone="Europe/Berlin",
        holidays=[date(2025, 12, 25), date(2025, 12, 26)],
        closures=[
            (datetime(2025, 12, 24, 13, tzinfo=BERLIN), datetime(2025, 12, 25, tzinfo=BERLIN))
        ],
    )
    start = datetime(2025, 12, 24, 11, tzinfo=BERLIN)  # a Wednesday
    # 11:00-13:00 on the 24th (2 h), 25th/26th holidays, 27th/28th weekend, Monday 29th 09:00
    # + the last hour -> 10:00.
    assert cal.add(start, 3 * H).isoformat() == "2025-12-29T10:00:00+01:00"
    assert cal.next_close(start).isoformat() == "2025-12-24T13:00:00+01:00"
    assert (
        cal.elapsed(datetime(2025, 12, 24, tzinfo=BERLIN), datetime(2025, 12, 25, tzinfo=BERLIN))
        == 4 * H
    )


# ------------------------------------------------------------------------------------------------
# The holidays package
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "us_holidays",
    [holidays.country_holidays("US"), CountryHolidays(country="US")],
    ids=["holidays.country_holidays", "CountryHolidays"],
)
def test_us_holidays_from_the_holidays_package(us_holidays: object) -> None:
    cal = BusinessCalendar.weekly(
        "09:00", "17:00", timezone="America/New_York", holidays=us_holidays
    )
    # 2025-07-04 (Independence Day) is a Friday: Thursday 16:00 + 2 h -> 1 h Thursday, Friday
    # holiday, weekend, Monday 10:00.
    thursday = datetime(2025, 7, 3, 16, tzinfo=NEW_YORK)
    assert cal.add(thursday, 2 * H).isoformat() == "2025-07-07T10:00:00-04:00"
    # Thanksgiving 2031 is Thursday 2031-11-27 (the fourth Thursday): looked up lazily by year.
    assert not cal.is_open(datetime(2031, 11, 27, 12, tzinfo=NEW_YORK))
    assert cal.is_open(datetime(2031, 11, 26, 12, tzinfo=NEW_YORK))


def test_import_csmcore_does_not_import_holidays() -> None:
    code = (
        "import sys\n"
        "import csmcore\n"
        "from datetime import datetime, timedelta, timezone\n"
        "assert 'holidays' not in sys.modules, 'import csmcore imported holidays'\n"
        "cal = csmcore.BusinessCalendar.weekly('09:00', '17:00', timezone='UTC',\n"
        "    holidays=csmcore.CountryHolidays(country='US'))\n"
        "assert 'holidays' not in sys.modules, 'building the calendar imported holidays'\n"
        "cal.add(datetime(2025, 7, 3, 16, tzinfo=timezone.utc), timedelta(hours=2))\n"
        "assert 'holidays' in sys.modules, 'the first lookup should import holidays'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------------
# Zones of inputs and results
# ------------------------------------------------------------------------------------------------


def test_results_are_in_the_zone_of_the_input() -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
    tokyo = ZoneInfo("Asia/Tokyo")
    # Monday 2025-01-06 17:00 Tokyo = 09:00 Berlin (+01:00, Tokyo +09:00): the opening instant.
    start = datetime(2025, 1, 6, 17, tzinfo=tokyo)
    result = cal.add(start, 2 * H)
    assert result.tzinfo is tokyo
    assert result.isoformat() == "2025-01-06T19:00:00+09:00"  # 11:00 Berlin
    back = cal.add(start, -2 * H)
    # 2 h back from the Monday opening: Friday 17:00 Berlin - 2 h = 15:00 Berlin = 14:00 UTC =
    # Friday 23:00 in Tokyo.
    assert back.isoformat() == "2025-01-03T23:00:00+09:00"
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    closes = cal.next_close(datetime(2025, 1, 6, 12, tzinfo=kathmandu))
    # 12:00 +05:45 = 06:15 UTC = 07:15 Berlin: before opening; the day closes 17:00 Berlin =
    # 16:00 UTC = 21:45 +05:45.
    assert closes.isoformat() == "2025-01-06T21:45:00+05:45"
    assert cal.next_open(datetime(2025, 1, 6, 12, tzinfo=kathmandu)).isoformat() == (
        "2025-01-06T13:45:00+05:45"  # 09:00 Berlin = 08:00 UTC
    )


def test_fixed_offset_calendar_in_kathmandu_time() -> None:
    cal = BusinessCalendar.weekly("09:00", "17:00", timezone="Asia/Kathmandu")
    # 09:00 +05:45 is 03:15 UTC.
    assert cal.next_open(utc(2025, 1, 6, 0)) == utc(2025, 1, 6, 3, 15)
    assert cal.elapsed(utc(2025, 1, 6), utc(2025, 1, 7)) == 8 * H


def test_always_and_weekly_constructors() -> None:
    cal = BusinessCalendar.always(timezone="Europe/Berlin")
    # 24/7 in Berlin across the spring-forward day: 23 real hours between two local midnights.
    a = datetime(2025, 3, 30, tzinfo=BERLIN)
    b = datetime(2025, 3, 31, tzinfo=BERLIN)
    assert cal.elapsed(a, b) == 23 * H
    wrap = BusinessCalendar.weekly("10:00", "12:00", days="sat-mon", timezone="UTC")
    assert set(wrap.hours) == {"sat", "sun", "mon"}
    assert wrap.hours["sun"] == (("10:00", "12:00"),)
    overnight = BusinessCalendar.weekly("22:00", "24:00", days=[4], timezone="UTC")
    assert overnight.hours == {"fri": (("22:00", "24:00"),)}
    # 2025-01-03 is a Friday: 22:00-24:00 UTC, 2 h.
    assert overnight.elapsed(utc(2025, 1, 3), utc(2025, 1, 5)) == 2 * H


def test_a_whole_missing_day_in_apia() -> None:
    # Samoa skipped 2011-12-30: 2011-12-29 24:00 -10:00 (2011-12-30 10:00 UTC) was followed by
    # 2011-12-31 00:00 +14:00. Friday's 09:00-17:00 window never existed; both edges move to the
    # first instant that exists, Saturday 00:00 +14:00, so the window is empty.
    apia = ZoneInfo("Pacific/Apia")
    cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-sun", timezone="Pacific/Apia")
    thursday_close = datetime(2011, 12, 29, 17, tzinfo=apia)
    assert cal.next_open(thursday_close).isoformat() == "2011-12-31T09:00:00+14:00"
    # Thursday 8 h + Friday 0 h + Saturday 8 h.
    start = datetime(2011, 12, 29, tzinfo=apia)
    end = datetime(2012, 1, 1, tzinfo=apia)
    assert cal.elapsed(start, end) == 16 * H
    assert cal.add(thursday_close, H).isoformat() == "2011-12-31T10:00:00+14:00"


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Pacific/Apia"]
)
@pytest.mark.parametrize(
    "hours",
    [
        {"sun": [("00:30", "04:00")]},
        {"sat": [("23:30", "24:00")]},
        {"sun": [("02:15", "02:45")], "mon": [("09:00", "17:00")]},
        {"fri": [("23:50", "00:10")], "thu": [("09:00", "17:00")]},
    ],
)
def test_a_dateutil_zone_gives_the_same_calendar_as_zoneinfo(
    zone: str, hours: dict[str, list[tuple[str, str]]]
) -> None:
    # dateutil.tz resolves a non-existent wall time differently from zoneinfo (its fold has no
    # effect in a gap); the calendar's rules must not depend on that.
    from dateutil import tz as dateutil_tz

    with_dateutil = BusinessCalendar(timezone=dateutil_tz.gettz(zone), hours=hours)
    with_zoneinfo = BusinessCalendar(timezone=zone, hours=hours)
    start, end = utc(2010, 1, 1), utc(2020, 1, 1)

    def instants(cal: BusinessCalendar) -> list[tuple[datetime, datetime]]:
        return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in cal.open_intervals(start, end)]

    assert instants(with_dateutil) == instants(with_zoneinfo)


def test_a_complex_calendar_survives_serialization_with_its_behaviour() -> None:
    import json

    from dateutil.rrule import YEARLY

    from csmcore import from_data, to_data

    rules = rruleset()
    rules.rrule(FIRST_MONDAYS)
    rules.exdate(datetime(2025, 6, 2))  # open on 2025-06-02 after all
    rules.rdate(datetime(2025, 6, 10))  # and closed on Tuesday 2025-06-10
    rules.exrule(rrule(YEARLY, bymonth=1, byweekday=MO(+1), dtstart=datetime(2025, 1, 1)))
    cal = BusinessCalendar.weekly(
        datetime(2025, 1, 1, 9, 0, 30).time(),  # a datetime.time, with seconds
        "17:00:15",
        timezone="-03:30",
        holidays=CountryHolidays(country="DE", subdiv="BY"),
        recurring_holidays=rules,
    )
    back = from_data(json.loads(json.dumps(to_data(cal))), BusinessCalendar)
    assert back == cal
    local = timezone(-timedelta(hours=3, minutes=30))
    cases = [
        (datetime(2025, 6, 2, 12, tzinfo=local), True),  # first Monday, but EXDATE
        (datetime(2025, 6, 10, 12, tzinfo=local), False),  # RDATE
        (datetime(2025, 7, 7, 12, tzinfo=local), False),  # first Monday of July
        (datetime(2026, 1, 5, 12, tzinfo=local), True),  # first Monday of January: EXRULE
        (datetime(2025, 1, 6, 12, tzinfo=local), False),  # Epiphany, a holiday in Bavaria
        (datetime(2025, 1, 7, 12, tzinfo=local), True),
        (datetime(2025, 1, 7, 9, 0, 29, tzinfo=local), False),  # opens at 09:00:30
        (datetime(2025, 1, 7, 17, 0, 14, tzinfo=local), True),  # closes at 17:00:15
    ]
    for moment, is_open in cases:
        assert cal.is_open(moment) is is_open, moment
        assert back.is_open(moment) is is_open, moment


def test_a_closure_ending_in_the_fall_back_hour_round_trips_equal() -> None:
    """Found by the round-trip property: 02:00 in Berlin on 2025-10-26 happens twice, and Python
    never finds such an ambiguous time equal to one in another zone (PEP 495), so the closure
    read back with a fixed +02:00 offset compared unequal although it is the same instant.
    Closures compare (and hash) by their instants in UTC."""
    from zoneinfo import ZoneInfo

    from csmcore import from_data, to_data

    berlin = ZoneInfo("Europe/Berlin")
    closure = (
        datetime(2025, 10, 25, 21, 34, tzinfo=berlin),
        datetime(2025, 10, 26, 2, tzinfo=berlin),
    )
    cal = BusinessCalendar.always(timezone="UTC", closures=[closure])
    back = from_data(to_data(cal), BusinessCalendar)
    assert back == cal
    assert hash(back) == hash(cal)
    later = (closure[0], closure[1] + timedelta(minutes=1))
    assert BusinessCalendar.always(timezone="UTC", closures=[later]) != cal
