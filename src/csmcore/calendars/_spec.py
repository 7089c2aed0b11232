"""Parsing what a calendar is made of: weekly hours, weekdays, holidays, recurring closures and
partial closures, each turned into the canonical form :class:`BusinessCalendar` stores."""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, TypeAlias

import attrs
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rruleset, rrulestr

from csmcore._time import require_aware
from csmcore._values import frozen_set
from csmcore.errors import CalendarError, ValidationError, invalid_type
from csmcore.serialization import serializable

__all__ = [
    "WEEKDAYS",
    "CountryHolidays",
    "HoursSpec",
    "RuleSpec",
    "TimeSpec",
    "Week",
    "Window",
    "fmt_window",
    "normalise_closures",
    "normalise_holidays",
    "normalise_rules",
    "parse_days",
    "parse_hours",
    "parse_rule",
]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys accepted in ``hours``, Monday first (index 0, as ``date.weekday()``)."""

_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = 86_400
_ONE_DAY = timedelta(days=1)
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")

Window: TypeAlias = tuple[int, int]
"""A window as (open, close) in seconds after the local midnight of the day it opens on."""
Week: TypeAlias = tuple[tuple[Window, ...], ...]
TimeSpec: TypeAlias = str | time
HoursSpec: TypeAlias = Mapping[int | str, Sequence[tuple[TimeSpec, TimeSpec]] | Sequence[TimeSpec]]
RuleSpec: TypeAlias = rrule | rruleset | str


# --------------------------------------------------------------------------------------------
# Parsing the weekly pattern
# --------------------------------------------------------------------------------------------


def _fmt_seconds(seconds: int) -> str:
    """``"HH:MM"`` (``"HH:MM:SS"`` when there are seconds) of a time of day below 24:00."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def fmt_window(window: Window) -> tuple[str, str]:
    opening, closing = window
    return _fmt_seconds(opening), ("24:00" if closing == _DAY else _fmt_seconds(closing % _DAY))


def _parse_time(value: object, *, where: str, is_close: bool) -> int:
    """Seconds after midnight of an ``"HH:MM"`` / ``"HH:MM:SS"`` string or a ``time``."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise CalendarError(
                f"{where}: {value!r} carries a tzinfo; window times are local wall-clock times "
                "of the calendar's zone, give a naive time or an 'HH:MM' string"
            )
        return value.hour * 3600 + value.minute * 60 + value.second
    if not isinstance(value, str):
        raise CalendarError(
            f"{where}: {value!r} is not a time; expected an 'HH:MM' string such as '09:00' "
            "(or '24:00' as a closing time) or a datetime.time"
        )
    match = _HHMM.match(value.strip())
    if match:
        hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
        if hours == 24 and minutes == 0 and seconds == 0:
            if is_close:
                return _DAY
            raise CalendarError(
                f"{where}: '24:00' is accepted only as a closing time; open at '00:00' instead"
            )
        if hours < 24 and minutes < 60 and seconds < 60:
            return hours * 3600 + minutes * 60 + seconds
    raise CalendarError(
        f"{where}: {value!r} is not a valid time; expected 'HH:MM' with HH 00-23 and MM 00-59 "
        "(or '24:00' as a closing time), e.g. '09:00' or '17:30'"
    )


def _day_index(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        if 0 <= key <= 6:
            return key
    elif isinstance(key, str):
        lowered = key.strip().lower()
        if lowered in WEEKDAYS:
            return WEEKDAYS.index(lowered)
        if lowered in _FULL_NAMES:
            return _FULL_NAMES.index(lowered)
    raise CalendarError(
        f"hours: {key!r} is not a weekday; expected 0 (Monday) to 6 (Sunday) or one of "
        f"{', '.join(WEEKDAYS)}"
    )


def parse_days(days: str | Iterable[int | str]) -> list[int]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``"sat-mon"`` (wraps), or an iterable of weekdays."""
    if isinstance(days, str):
        result: list[int] = []
        for part in days.split(","):
            part = part.strip()
            if "-" in part:
                first, _, last = part.partition("-")
                start, stop = _day_index(first), _day_index(last)
                span = (stop - start) % 7
                result.extend((start + offset) % 7 for offset in range(span + 1))
            elif part:
                result.append(_day_index(part))
        if not result:
            raise CalendarError(f"days={days!r} names no weekday; expected e.g. 'mon-fri'")
        return sorted(set(result))
    if not isinstance(days, Iterable):
        raise invalid_type(
            "days", days, "a string such as 'mon-fri' or 'mon,wed,fri', or a list of weekdays"
        )
    found = sorted({_day_index(day) for day in days})
    if not found:
        raise CalendarError(f"days={days!r} names no weekday; expected e.g. ['mon', 'tue']")
    return found


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(part, str | time) for part in value)
    )


def parse_hours(hours: object) -> Week:
    """Turn the ``hours`` mapping into seven sorted tuples of windows, checking overlaps."""
    if (
        isinstance(hours, tuple)
        and len(hours) == 7
        and all(isinstance(d, tuple) for d in hours)
        and all(
            isinstance(w, tuple) and len(w) == 2 and all(type(x) is int for x in w)
            for day in hours
            for w in day
        )
    ):
        # Already canonical (attrs.evolve passes the stored form back): re-check it all the same.
        spec: dict[int | str, Any] = {
            index: [fmt_window(w) for w in day] for index, day in enumerate(hours)
        }
        return parse_hours(spec)
    if not isinstance(hours, Mapping):
        raise CalendarError(
            f"hours={hours!r} is not a mapping; expected e.g. "
            "{'mon': [('09:00', '17:00')], 'tue': [('09:00', '12:00'), ('13:00', '17:00')]}"
        )
    week: list[list[Window]] = [[] for _ in range(7)]
    seen: set[int] = set()
    for key, value in hours.items():
        day = _day_index(key)
        name = WEEKDAYS[day]
        if day in seen:
            raise CalendarError(f"hours: {name} is given twice ({key!r}); give each day once")
        seen.add(day)
        windows = [value] if _is_pair(value) else value
        if isinstance(windows, str) or not isinstance(windows, Iterable):
            raise CalendarError(
                f"hours[{name!r}]={value!r} is not a list of (open, close) pairs; "
                "expected e.g. [('09:00', '17:00')]"
            )
        for position, window in enumerate(windows):
            where = f"hours[{name!r}][{position}]"
            if not _is_pair(window):
                raise CalendarError(
                    f"{where}={window!r} is not an (open, close) pair of 'HH:MM' strings"
                )
            opening = _parse_time(window[0], where=where, is_close=False)
            closing = _parse_time(window[1], where=where, is_close=True)
            if closing <= opening:
                closing += _DAY  # runs past midnight; belongs to the day it opens on
            week[day].append((opening, closing))
    _check_overlaps(week)
    return tuple(tuple(sorted(day)) for day in week)


def _check_overlaps(week: list[list[Window]]) -> None:
    spans = sorted(
        (day * _DAY + opening, day * _DAY + closing, day, (opening, closing))
        for day, windows in enumerate(week)
        for opening, closing in windows
    )
    if len(spans) < 2:
        return  # one window of at most a day cannot overlap itself
    week_seconds = 7 * _DAY
    # Compare each window with the next one, and the last with the first one of the next week.
    for index, current in enumerate(spans):
        following = spans[(index + 1) % len(spans)]
        next_start = following[0] + (week_seconds if index + 1 == len(spans) else 0)
        if current[1] > next_start:
            a_day, b_day = WEEKDAYS[current[2]], WEEKDAYS[following[2]]
            a = "-".join(fmt_window(current[3]))
            b = "-".join(fmt_window(following[3]))
            where = a_day if a_day == b_day else f"{a_day} and {b_day}"
            raise CalendarError(
                f"hours: overlapping windows on {where}: {a_day} {a} overlaps {b_day} {b}; "
                "windows must not overlap (merge them into one window)"
            )


# --------------------------------------------------------------------------------------------
# Holidays, recurring closures, partial closures
# --------------------------------------------------------------------------------------------


@serializable("country_holidays", aliases=("csmcore.calendars:CountryHolidays",))
@attrs.frozen(kw_only=True)
class CountryHolidays:
    """A serialisable reference to a ``holidays`` package calendar (the ``[holidays]`` extra).

    ``BusinessCalendar(holidays=CountryHolidays(country="US"))`` behaves like
    ``holidays=holidays.country_holidays("US")`` but survives serialization. The ``holidays``
    package is imported the first time a date is looked up, never by ``import csmcore``.
    """

    country: str = attrs.field(validator=attrs.validators.instance_of(str))
    subdiv: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    _table: Any = attrs.field(default=None, init=False, eq=False, repr=False, hash=False)

    def __contains__(self, day: object) -> bool:
        table = self._table
        if table is None:
            try:
                import holidays as holidays_package
            except ImportError as err:  # pragma: no cover - exercised without the extra only
                raise ValidationError(
                    "CountryHolidays needs the holidays package: pip install 'csmcore[holidays]'"
                ) from err
            try:
                table = holidays_package.country_holidays(self.country, subdiv=self.subdiv)
            except NotImplementedError as err:
                raise ValidationError(
                    f"CountryHolidays(country={self.country!r}, subdiv={self.subdiv!r}) is not "
                    "known to the holidays package; expected an ISO 3166 code such as 'US'"
                ) from err
            object.__setattr__(self, "_table", table)
        return day in table


def normalise_holidays(value: object) -> Container[date]:
    if value is None:
        return frozenset()
    if isinstance(value, str | bytes | bytearray | memoryview):
        raise CalendarError(
            f"holidays={value!r} is a {type(value).__name__}, not a collection of dates; "
            "expected a list or set of datetime.date, a holidays-package calendar, or "
            "CountryHolidays(country=...)"
        )
    if isinstance(value, CountryHolidays | frozenset):
        if isinstance(value, frozenset):
            _check_dates(value)
        return value
    if isinstance(value, list | tuple | set | Iterator) or (
        isinstance(value, Iterable) and not isinstance(value, Container)
    ):
        days = frozen_set(value, "holidays", "datetime.date values")
        _check_dates(days)
        return days
    if isinstance(value, Container):
        # e.g. holidays.country_holidays("US"): looked up lazily, year by year, with ``in``.
        return value
    raise CalendarError(
        f"holidays={value!r} is not a collection of dates; expected a list or set of "
        "datetime.date, a holidays-package calendar, or CountryHolidays(country=...)"
    )


def _check_dates(days: Iterable[object]) -> None:
    for day in days:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise CalendarError(
                f"holidays: {day!r} is not a datetime.date; give whole days as date objects "
                "(use closures=[(start, end)] for part of a day)"
            )


def _rule_text(rule: RuleSpec) -> str:
    if isinstance(rule, str):
        text = rule.strip()
    elif isinstance(rule, rrule):
        text = str(rule)
    elif isinstance(rule, rruleset):
        lines: list[str] = []
        for sub in rule._rrule:  # type: ignore[attr-defined]  # no public accessor
            lines.extend(str(sub).splitlines())
        for sub in rule._exrule:  # type: ignore[attr-defined]
            lines.extend(
                line.replace("RRULE:", "EXRULE:")
                for line in str(sub).splitlines()
                if not line.startswith("DTSTART")
            )
        for attr, tag in (("_rdate", "RDATE"), ("_exdate", "EXDATE")):
            for moment in getattr(rule, attr):
                if moment.tzinfo is not None and moment.utcoffset() != timedelta(0):
                    raise CalendarError(
                        f"recurring_holidays: {tag} {moment!r} must be naive or UTC to serialise"
                    )
                stamp = moment.strftime("%Y%m%dT%H%M%S") + ("Z" if moment.tzinfo else "")
                lines.append(f"{tag}:{stamp}")
        # DTSTART lines of several rules: keep the first, rrulestr takes one.
        starts = [line for line in lines if line.startswith("DTSTART")]
        others = [line for line in lines if not line.startswith("DTSTART")]
        text = "\n".join(starts[:1] + others)
    else:
        raise CalendarError(
            f"recurring_holidays: {rule!r} is not a dateutil rrule, rruleset or RFC 5545 string"
        )
    parse_rule(text)
    return text


def parse_rule(text: str) -> rruleset:
    try:
        parsed = rrulestr(text, forceset=True)
    except (ValueError, TypeError) as err:
        raise CalendarError(
            f"recurring_holidays: {text!r} is not a valid RFC 5545 rule "
            "(e.g. 'DTSTART:20240101T000000\\nRRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24')"
        ) from err
    assert isinstance(parsed, rruleset)
    for sub in [*parsed._rrule, *parsed._exrule]:  # type: ignore[attr-defined]
        _check_bounded(sub, text)
    return parsed


MAX_RULE_PERIODS = 600_000
"""The most periods (years, months, weeks or days, by its ``FREQ``) a recurring-holiday rule may
run through between its DTSTART and the end of the supported range (30 December 9998) or its
UNTIL / COUNT: a weekly rule may run for ever, a daily one for about 1,600 years. Longer rules
are refused when the calendar is built, so that no query walks for seconds."""

MAX_RULE_COUNT = 100_000
"""The largest ``COUNT`` a recurring-holiday rule may give. A rule with COUNT is read from its
DTSTART (the occurrences before a date cannot be skipped without counting them); a rule without
COUNT is restarted near the dates asked about."""

_DAYS_PER_PERIOD = {YEARLY: 365.25, MONTHLY: 30.44, WEEKLY: 7.0, DAILY: 1.0}
_LAST_DAY = datetime(9998, 12, 30)


def _check_bounded(rule: rrule, text: str) -> None:
    """Refuse a rule finer than daily, with a BYEASTER offset outside -80..250 days, or one
    running through more than :data:`MAX_RULE_PERIODS` periods."""
    freq = rule._freq  # type: ignore[attr-defined]  # dateutil has no public accessors
    if freq not in _DAYS_PER_PERIOD:
        raise CalendarError(
            f"recurring_holidays: {text!r} repeats more often than daily; closing whole days "
            "needs FREQ=YEARLY, MONTHLY, WEEKLY or DAILY"
        )
    for offset in rule._byeaster or ():  # type: ignore[attr-defined]
        if not -80 <= offset <= 250:  # beyond, dateutil indexes past its year masks
            raise CalendarError(
                f"recurring_holidays: {text!r} has BYEASTER={offset}; expected an offset of "
                "-80 to 250 days from Easter (an offset that stays within Easter's year)"
            )
    start = rule._dtstart.replace(tzinfo=None)  # type: ignore[attr-defined]
    until = rule._until  # type: ignore[attr-defined]
    end = _LAST_DAY if until is None else min(_LAST_DAY, until.replace(tzinfo=None))
    periods = max(0.0, (end - start).days / _DAYS_PER_PERIOD[freq] / rule._interval)  # type: ignore[attr-defined]
    count = rule._count  # type: ignore[attr-defined]
    if count is not None and count > MAX_RULE_COUNT:
        raise CalendarError(
            f"recurring_holidays: {text!r} has COUNT={count}; at most {MAX_RULE_COUNT:,} "
            "occurrences are accepted (give UNTIL instead)"
        )
    if rule._count is not None:  # type: ignore[attr-defined]
        periods = min(periods, rule._count)  # type: ignore[attr-defined]
    if periods > MAX_RULE_PERIODS:
        raise CalendarError(
            f"recurring_holidays: {text!r} would run through about {int(periods):,} periods "
            f"up to the year 9998; at most {MAX_RULE_PERIODS:,} are accepted (start it "
            "later, or give UNTIL or COUNT)"
        )


def normalise_rules(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, rrule | rruleset | str):
        return (_rule_text(value),)
    if isinstance(value, Iterable):
        return tuple(_rule_text(rule) for rule in value)
    raise CalendarError(
        f"recurring_holidays={value!r}: expected an rrule, an rruleset, an RFC 5545 string, "
        "or a list of them"
    )


def normalise_closures(value: object) -> tuple[tuple[datetime, datetime], ...]:
    if value is None:
        return ()
    if not isinstance(value, Iterable):
        raise CalendarError(f"closures={value!r}: expected a list of (start, end) aware datetimes")
    result = []
    for position, item in enumerate(value):
        where = f"closures[{position}]"
        if not (isinstance(item, Sequence) and len(item) == 2):
            raise CalendarError(f"{where}={item!r} is not a (start, end) pair of datetimes")
        start = require_aware(item[0], f"{where}[0]")
        end = require_aware(item[1], f"{where}[1]")
        if end <= start:
            raise CalendarError(
                f"{where}: end {end.isoformat()} is not after start {start.isoformat()}"
            )
        result.append((start, end))
    return tuple(sorted(result, key=lambda pair: (pair[0], pair[1])))


# --------------------------------------------------------------------------------------------
# The timeline: precomputed open intervals in UTC microseconds
# --------------------------------------------------------------------------------------------


# Resolved here, where the names exist: the package presents the class as csmcore.calendars's.
attrs.resolve_types(CountryHolidays)
