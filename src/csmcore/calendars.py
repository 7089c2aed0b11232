"""Business calendars: exact, DST-correct business-time arithmetic.

A :class:`BusinessCalendar` knows when a team is open: weekly windows in the local wall-clock
time of an IANA zone, holidays, recurring closures and partial-day closures. It answers
``add`` (a business duration from an instant, forwards or backwards), ``elapsed`` (business time
between two instants, signed), ``is_open``, ``next_open`` and
:meth:`BusinessCalendar.open_intervals`.

Business time is *real elapsed time* inside open windows. On a DST change day a 01:00-04:00
window holds two (spring forward) or four (fall back) real hours. A window edge that does not
exist locally moves forward to the first instant that exists; an ambiguous one takes its first
occurrence.

>>> from datetime import datetime, timedelta, date
>>> from zoneinfo import ZoneInfo
>>> berlin = ZoneInfo("Europe/Berlin")
>>> cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="Europe/Berlin",
...                               holidays=[date(2025, 12, 25), date(2025, 12, 26)])
>>> cal.add(datetime(2025, 12, 24, 16, 0, tzinfo=berlin), timedelta(hours=2))
datetime.datetime(2025, 12, 29, 10, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/Berlin'))
>>> cal.elapsed(datetime(2025, 12, 24, 16, 0, tzinfo=berlin),
...             datetime(2025, 12, 29, 10, 0, tzinfo=berlin))
datetime.timedelta(seconds=7200)

How it works: the calendar turns its rules into a sorted list of open intervals in UTC
microseconds, with a running total of business time, one calendar year at a time and only for
the years that are asked about. ``add`` and ``elapsed`` are then two binary searches each, exact
to the microsecond. Instants given in the calendar's own zone take a faster wall-clock path
whenever no DST change falls inside or next to an open window (checked per year). A five-day week
costs about 80 KiB of memory per year covered (``benchmarks/bench_calendar.py`` measures it).
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, ClassVar, TypeAlias

import attrs
from dateutil.rrule import rrule, rruleset, rrulestr

from csmcore._time import EPOCH, US, require_aware, resolve_zone, zone_name
from csmcore.errors import (
    CalendarError,
    NaiveDatetimeError,
    NoBusinessTimeError,
    SerializationError,
    ValidationError,
)
from csmcore.serialization import converter, serializable

__all__ = ["WEEKDAYS", "BusinessCalendar", "CountryHolidays"]

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


def _fmt_window(window: Window) -> tuple[str, str]:
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


def _parse_days(days: str | Iterable[int | str]) -> list[int]:
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
    return sorted({_day_index(day) for day in days})


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(part, str | time) for part in value)
    )


def _parse_hours(hours: object) -> Week:
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
            index: [_fmt_window(w) for w in day] for index, day in enumerate(hours)
        }
        return _parse_hours(spec)
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
            a = "-".join(_fmt_window(current[3]))
            b = "-".join(_fmt_window(following[3]))
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


def _normalise_holidays(value: object) -> Container[date]:
    if value is None:
        return frozenset()
    if isinstance(value, CountryHolidays | frozenset):
        if isinstance(value, frozenset):
            _check_dates(value)
        return value
    if isinstance(value, list | tuple | set | Iterator) or (
        isinstance(value, Iterable) and not isinstance(value, Container)
    ):
        days = frozenset(value)
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
    _parse_rule(text)
    return text


def _parse_rule(text: str) -> rruleset:
    try:
        parsed = rrulestr(text, forceset=True)
    except (ValueError, TypeError) as err:
        raise CalendarError(
            f"recurring_holidays: {text!r} is not a valid RFC 5545 rule "
            "(e.g. 'DTSTART:20240101T000000\\nRRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24')"
        ) from err
    assert isinstance(parsed, rruleset)
    return parsed


def _normalise_rules(value: object) -> tuple[str, ...]:
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


def _normalise_closures(value: object) -> tuple[tuple[datetime, datetime], ...]:
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


class _Timeline:
    """Open intervals as a flat sorted list ``bounds = [o0, c0, o1, c1, ...]`` of UTC
    microseconds, and ``cum[i]`` = business microseconds before interval ``i`` (``cum[n]`` is the
    total). Covers intervals that open on local dates ``[day_lo, day_hi)``; instants in
    ``[safe_lo, safe_hi)`` can be placed exactly. Extends one calendar year at a time.

    Thread safety: the lists are never changed once published. Growing builds new lists and
    publishes them as one tuple ``data = (bounds, cum)`` under a lock, then widens
    ``safe_lo`` / ``safe_hi``; readers check the safe range first and read ``data`` after it, so
    they always see a pair of lists that covers their instant.

    The wall-clock fast path: ``fast = (tz, lo, hi, local, position)`` holds the same bounds as
    aware datetimes in the calendar's own zone object and the running totals as timedeltas.
    Python compares and subtracts two datetimes that share a tzinfo object by their wall-clock
    fields, without asking the zone for offsets, which makes that form about twice as fast for
    inputs in the calendar's zone. It is exact only when no UTC offset change happens inside
    or at the edge of an open interval: then wall-clock differences inside an interval are
    real differences, and every wall time that is ambiguous or missing lies inside one closed
    gap, where any instant has the same business position. ``fast`` is None whenever some
    offset change in the covered years breaks that (a 24/7 calendar in a DST zone, a window
    holding the change); the exact integer path is then used for everything.
    """

    __slots__ = (
        "cal",
        "data",
        "day_hi",
        "day_lo",
        "fast",
        "fast_ok",
        "local",
        "lock",
        "rules",
        "safe_hi",
        "safe_lo",
        "shut",
        "tz",
    )

    def __init__(self, cal: BusinessCalendar) -> None:
        self.cal = cal
        self.tz = cal.timezone
        self.data: tuple[list[int], list[int]] = ([], [0])
        self.local: tuple[list[datetime], list[timedelta]] = ([], [timedelta(0)])
        self.fast: _Fast | None = None
        self.fast_ok = True
        self.lock = threading.RLock()
        self.day_lo = date.max
        self.day_hi = date.min
        self.safe_lo = 0
        self.safe_hi = 0  # empty: nothing is safe until the first cover()
        self.rules = [_parse_rule(text) for text in cal.recurring_holidays]
        self.shut = _union([(_us(a), _us(b)) for a, b in cal.closures])

    # -- conversions --------------------------------------------------------------------------

    def local_us(self, day: date, seconds: int) -> int:
        """UTC microseconds of local wall time ``day + seconds`` (DST rules of the module doc)."""
        tz = self.tz
        naive = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
        if isinstance(tz, timezone):
            return _us(naive.replace(tzinfo=tz))
        first = naive.replace(tzinfo=tz)  # fold=0: first occurrence when ambiguous
        us = _us(first)
        if (EPOCH + timedelta(microseconds=us)).astimezone(tz).replace(tzinfo=None) == naive:
            return us
        # The wall time does not exist (a gap): move forward to the instant the gap ends, i.e.
        # the first second whose local wall time is at or after ``naive``. Bracket it with the
        # offsets in force a day either side; this asks nothing of how the tzinfo treats fold
        # in a gap (zoneinfo and dateutil.tz differ there).
        offsets = [
            (naive + shift).replace(tzinfo=tz).utcoffset() or timedelta(0)
            for shift in (-_ONE_DAY, timedelta(0), _ONE_DAY)
        ]
        wall_s = (naive - datetime(1970, 1, 1)) // timedelta(seconds=1)
        low_s = wall_s - max(offsets) // timedelta(seconds=1) - 1  # wall time before naive
        high_s = wall_s - min(offsets) // timedelta(seconds=1) + 1  # wall time after the gap
        while high_s - low_s > 1:
            mid = (low_s + high_s) // 2
            if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
                high_s = mid
            else:
                low_s = mid
        return high_s * 1_000_000

    def midnight_us(self, day: date) -> int:
        return _us(datetime(day.year, day.month, day.day, tzinfo=self.tz))

    # -- building -----------------------------------------------------------------------------

    def closed_days(self, first: date, last: date) -> set[date]:
        days: set[date] = set()
        for rule in self.rules:
            lo = datetime(first.year, first.month, first.day)
            hi = datetime(last.year, last.month, last.day, 23, 59, 59)
            try:
                hits = rule.between(lo, hi, inc=True)
                days.update(moment.date() for moment in hits)
            except TypeError:  # the rule has an aware DTSTART: ask in the calendar's zone
                hits = rule.between(
                    lo.replace(tzinfo=self.tz), hi.replace(tzinfo=self.tz), inc=True
                )
                days.update(moment.astimezone(self.tz).date() for moment in hits)
        return days

    def build(self, first: date, stop: date) -> list[tuple[int, int]]:
        """Open intervals of windows opening on local dates ``[first, stop)``, sorted, merged."""
        cal = self.cal
        week = cal._week
        holidays = cal.holidays
        shut_days = self.closed_days(first, stop - _ONE_DAY) if self.rules else set()
        out: list[tuple[int, int]] = []
        day = first
        while day < stop:
            windows = week[day.weekday()]
            if windows and day not in shut_days and day not in holidays:
                for opening, closing in windows:
                    lo = self.local_us(day, opening)
                    hi = self.local_us(day, closing)
                    if hi > lo:
                        out.append((lo, hi))
            day += _ONE_DAY
        if self.shut and out:
            out = _subtract(out, self.shut)
        out.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in out:
            if merged and lo <= merged[-1][1]:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def _year_span(self, year: int) -> tuple[date, date]:
        if not 1 < year < 9999:
            raise NoBusinessTimeError(
                f"business-time arithmetic reached year {year}; csmcore calendars work between "
                "the years 2 and 9998"
            )
        return date(year, 1, 1), date(year + 1, 1, 1)

    def _refresh_safe(self) -> None:
        self.safe_lo = self.midnight_us(self.day_lo + 2 * _ONE_DAY)
        self.safe_hi = self.midnight_us(self.day_hi - _ONE_DAY)

    def extend_forward(self) -> None:
        """Add the intervals of the next calendar year at the end."""
        with self.lock:
            self._extend_forward()

    def _extend_forward(self) -> None:
        first, stop = self._year_span(self.day_hi.year)
        bounds, cum = (list(part) for part in self.data)
        total = cum[-1]
        for lo, hi in self.build(first, stop):
            if bounds and lo < bounds[-1]:  # defensive: never overlap the previous year
                lo = bounds[-1]
                if hi <= lo:
                    continue
            # Adjacent intervals stay separate entries: readers never see an entry change.
            bounds.append(lo)
            bounds.append(hi)
            total += hi - lo
            cum.append(total)
        old_bounds, old_cum = self.data
        self.data = (bounds, cum)
        self.day_hi = stop
        self._refresh_safe()
        local, position = self.local
        self.local = (
            local + [_to_datetime(b, self.tz) for b in bounds[len(old_bounds) :]],
            position + [timedelta(0, 0, c) for c in cum[len(old_cum) :]],
        )
        self._refresh_fast(first, stop)

    def extend_backward(self) -> None:
        """Add the intervals of the previous calendar year at the start."""
        with self.lock:
            self._extend_backward()

    def _extend_backward(self) -> None:
        first, stop = self._year_span(self.day_lo.year - 1)
        new = self.build(first, stop)
        bounds, cum = self.data
        if bounds and new:
            # An overnight window of the new year can run into the old first interval.
            head = bounds[0]
            trimmed: list[tuple[int, int]] = []
            for lo, hi in new:
                hi = min(hi, head)
                if hi > lo:
                    trimmed.append((lo, hi))
            new = trimmed
        start = cum[0] - sum(hi - lo for lo, hi in new)
        prefix_bounds: list[int] = []
        prefix_cum: list[int] = []
        running = start
        for lo, hi in new:
            prefix_bounds.append(lo)
            prefix_bounds.append(hi)
            prefix_cum.append(running)
            running += hi - lo
        self.data = (prefix_bounds + bounds, prefix_cum + cum)
        self.day_lo = first
        self._refresh_safe()
        local, position = self.local
        self.local = (
            [_to_datetime(b, self.tz) for b in prefix_bounds] + local,
            [timedelta(0, 0, c) for c in prefix_cum] + position,
        )
        self._refresh_fast(first, stop)

    def _refresh_fast(self, first: date, stop: date) -> None:
        """Re-check the fast path's condition for the year just added, then publish it."""
        if self.fast_ok:
            self.fast_ok = self._offsets_clear(first - 2 * _ONE_DAY, stop + 2 * _ONE_DAY)
        if not self.fast_ok:
            self.fast = None
            return
        tz = self.tz
        # Inputs are compared with these by wall clock; two days of margin keep them inside
        # [safe_lo, safe_hi) whatever the offsets do at the edges.
        lo = _to_datetime(self.safe_lo, tz) + 2 * _ONE_DAY
        hi = _to_datetime(self.safe_hi, tz) - 2 * _ONE_DAY
        self.fast = (tz, lo, hi, *self.local)

    def _offsets_clear(self, first: date, stop: date) -> bool:
        """Whether every UTC offset change from ``first`` to ``stop`` lies strictly inside a
        closed gap, together with the wall times it makes ambiguous or missing."""
        tz = self.tz
        if isinstance(tz, timezone):
            return True
        bounds = self.data[0]
        second = self.midnight_us(first) // 1_000_000
        end = self.midnight_us(stop) // 1_000_000
        before = datetime.fromtimestamp(second, tz).utcoffset()
        while second < end:
            # Probing every 6 hours finds every change: tzdata zones change their offset
            # months apart, never twice within hours (which could cancel out between probes).
            probe = min(second + 6 * 3600, end)
            if datetime.fromtimestamp(probe, tz).utcoffset() == before:
                second = probe
                continue
            low, high = second, probe
            while high - low > 1:
                mid = (low + high) // 2
                if datetime.fromtimestamp(mid, tz).utcoffset() == before:
                    low = mid
                else:
                    high = mid
            after = datetime.fromtimestamp(high, tz).utcoffset()
            if before is None or after is None:
                return False
            change = high * 1_000_000
            reach = abs(after - before) // US  # wall times within this are ambiguous/missing
            k = bisect_left(bounds, change - reach)
            if k != bisect_right(bounds, change + reach) or k & 1:
                return False
            before, second = after, high
        return True

    def position(self, us: int) -> int:
        """Business microseconds from the timeline's origin to the instant ``us``.

        ``elapsed(a, b) == position(b) - position(a)``: positions turn business-time
        arithmetic into integer arithmetic for engines (the SLA engine) that make many
        queries. Positions are only comparable within one calendar object.
        """
        if not self.safe_lo <= us < self.safe_hi:
            self.cover(us)
        bounds, cum = self.data
        k = bisect_right(bounds, us)
        return cum[k >> 1] + us - bounds[k - 1] if k & 1 else cum[k >> 1]

    def instant_at(self, position: int, floor: int) -> int:
        """The earliest instant ``u >= floor`` with ``self.position(u) >= position``.

        This is ``add(floor, position - self.position(floor))`` in microseconds; raises
        NoBusinessTimeError as ``add`` does.
        """
        return self.instant_from(position, floor, self.position(floor))

    def instant_from(self, position: int, floor: int, here: int) -> int:
        """:meth:`instant_at` for a caller that knows ``here == self.position(floor)``."""
        if position <= here:
            return floor
        if position - here > _MAX_REACH_US or floor + (position - here) >= _LATEST_US:
            raise NoBusinessTimeError(
                f"{position - here} us of business time after {_iso(self.tz, floor)}: csmcore "
                f"adds at most {_MAX_REACH.days} days, and stays within the years 2 to 9998"
            )
        bounds, cum = self.data
        if position > cum[-1]:
            self.grow_forward_until(position, floor)
            bounds, cum = self.data
        m = bisect_left(cum, position) - 1
        return bounds[m << 1] + position - cum[m]

    def cover(self, us: int) -> None:
        """Extend the timeline until ``us`` lies in ``[safe_lo, safe_hi)``."""
        with self.lock:
            self._cover(us)

    def _cover(self, us: int) -> None:
        if self.day_hi == date.min:
            moment = (EPOCH + timedelta(microseconds=us)).astimezone(self.tz)
            first, _ = self._year_span(moment.year)
            self.day_lo = self.day_hi = first
            self._extend_forward()
            self._extend_backward()  # so the first year's early days are safe too
        while us >= self.safe_hi:
            self._extend_forward()
        while us < self.safe_lo:
            self._extend_backward()

    def grow_forward_until(self, target: int, origin: int) -> None:
        """Extend until the running total reaches ``target`` or the horizon runs out."""
        with self.lock:
            self._grow_forward_until(target, origin)

    def _grow_forward_until(self, target: int, origin: int) -> None:
        limit = self.day_hi + timedelta(days=BusinessCalendar.search_horizon_days)
        while self.data[1][-1] < target:
            before = self.data[1][-1]
            if self.day_hi >= limit:
                raise NoBusinessTimeError(
                    f"{self.cal!r} has no open time in the {BusinessCalendar.search_horizon_days} "
                    f"days after {_iso(self.tz, origin)}; holidays or closures shut every window"
                )
            self._extend_forward()
            if self.data[1][-1] > before:
                limit = self.day_hi + timedelta(days=BusinessCalendar.search_horizon_days)

    def grow_backward_until(self, target: int, origin: int) -> None:
        """Extend backwards until the running total reaches down to ``target``."""
        with self.lock:
            self._grow_backward_until(target, origin)

    def _grow_backward_until(self, target: int, origin: int) -> None:
        limit = self.day_lo - timedelta(days=BusinessCalendar.search_horizon_days)
        while self.data[1][0] > target:
            before = self.data[1][0]
            if self.day_lo <= limit:
                raise NoBusinessTimeError(
                    f"{self.cal!r} has no open time in the {BusinessCalendar.search_horizon_days} "
                    f"days before {_iso(self.tz, origin)}; holidays or closures shut every window"
                )
            self._extend_backward()
            if self.data[1][0] < before:
                limit = self.day_lo - timedelta(days=BusinessCalendar.search_horizon_days)


_FAST_LIMIT = 2**32 * 1_000_000
"""Below this many microseconds after the epoch (year 2106), ``fromtimestamp(u / 1e6)`` is exact:
half an ulp of the float is under half a microsecond, so rounding recovers ``u``. It is three times
cheaper than ``EPOCH + timedelta(microseconds=u)`` followed by ``astimezone``."""
_fromtimestamp = datetime.fromtimestamp


def _to_datetime(us: int, tz: tzinfo | None) -> datetime:
    """The instant ``us`` microseconds after the epoch, in ``tz``; exact."""
    if tz is timezone.utc:
        return EPOCH + US * us  # integer arithmetic: exact, and the cheapest form for UTC
    if 0 <= us < _FAST_LIMIT:
        return _fromtimestamp(us / 1e6, tz)
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)


_EARLIEST_US = (datetime(2, 1, 2, tzinfo=timezone.utc) - EPOCH) // US
_LATEST_US = (datetime(9998, 12, 31, tzinfo=timezone.utc) - EPOCH) // US


_MAX_REACH_US = 400 * 366 * 86_400 * 1_000_000
"""``add`` refuses a delta of more than about 400 years (146,400 days), whatever is cached."""
_MAX_REACH = timedelta(microseconds=_MAX_REACH_US)


def _check_reach(t: int, d: int, start: datetime, delta: timedelta) -> None:
    """Fail fast when ``add(start, delta)`` cannot be answered within the calendar's reach.

    Business time never runs faster than real time, so the result is at least ``|delta|`` of
    real time away from ``start``. A result outside the years 2 to 9998, or more than 400 years
    away, would need the timeline grown year by year over centuries (slow, and about 80 KiB a
    year): refuse at once instead.
    """
    if abs(d) > _MAX_REACH_US or not _EARLIEST_US <= t + d < _LATEST_US:
        raise NoBusinessTimeError(
            f"add(start={start.isoformat()}, delta={delta!r}): csmcore adds at most "
            f"{_MAX_REACH.days} days of business time, and its results stay within the years "
            "2 to 9998"
        )


_Fast: TypeAlias = tuple[tzinfo, datetime, datetime, list[datetime], list[timedelta]]
_ZERO = timedelta(0)


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // US


def _iso(tz: tzinfo, us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz).isoformat()


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint spans covering the same time as ``spans`` (closures may overlap)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _subtract(
    intervals: list[tuple[int, int]], holes: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    starts = [lo for lo, _ in holes]
    out: list[tuple[int, int]] = []
    for lo, hi in intervals:
        index = max(bisect_right(starts, lo) - 1, 0)
        pieces = [(lo, hi)]
        while index < len(holes) and holes[index][0] < hi:
            h_lo, h_hi = holes[index]
            next_pieces = []
            for p_lo, p_hi in pieces:
                if h_hi <= p_lo or h_lo >= p_hi:
                    next_pieces.append((p_lo, p_hi))
                    continue
                if p_lo < h_lo:
                    next_pieces.append((p_lo, h_lo))
                if h_hi < p_hi:
                    next_pieces.append((h_hi, p_hi))
            pieces = next_pieces
            index += 1
        out.extend(pieces)
    return out


# --------------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------------


def _bad_instant(value: object, argument: str) -> ValidationError:
    if isinstance(value, datetime):
        return NaiveDatetimeError(argument, value)
    return ValidationError(
        f"{argument}={value!r} is a {type(value).__name__}; expected an aware datetime"
    )


def _bad_duration(value: object, argument: str) -> ValidationError:
    return ValidationError(
        f"{argument}={value!r} is a {type(value).__name__}; expected a datetime.timedelta "
        "of business time"
    )


@serializable("business_calendar", aliases=("csmcore.calendars:BusinessCalendar",))
@attrs.frozen(kw_only=True, repr=False)
class BusinessCalendar:
    """When a team is open, and business-time arithmetic over it.

    Parameters (all keyword-only):

    ``timezone``
        IANA zone name (``"Europe/Berlin"``), ``"UTC"``, a fixed offset (``"+05:30"``) or a
        ``tzinfo``. Windows are wall-clock times in this zone.
    ``hours``
        weekday (``0``-``6`` or ``"mon"``-``"sun"``) to a list of ``(open, close)`` pairs of
        ``"HH:MM"`` strings. ``"24:00"`` is accepted as a close. A window whose close is not after
        its open runs past midnight and belongs to the day it opens on.
    ``holidays``
        dates closed all day: any collection of ``date`` (a list, a set, a ``holidays`` package
        calendar such as ``holidays.country_holidays("US")``, or :class:`CountryHolidays`). A
        holiday closes every window that opens on it, including the part past midnight.
    ``recurring_holidays``
        a dateutil ``rrule`` / ``rruleset`` / RFC 5545 string (or a list of them): every date on
        which it occurs is closed all day.
    ``closures``
        ``(start, end)`` pairs of aware datetimes: partial closures (e.g. a half-day on
        Christmas Eve), removed from the open time.

    Raises :class:`~csmcore.errors.CalendarError` (a ``ValueError``) for malformed times,
    unknown weekdays, overlapping windows or a week with no open window, and
    :class:`~csmcore.errors.UnknownTimezoneError` for an unknown zone.

    Every method that takes an instant raises :class:`~csmcore.errors.NaiveDatetimeError` for a
    naive datetime, naming the argument. Results are in the time zone of the instant given.
    """

    timezone: tzinfo = attrs.field(converter=resolve_zone)
    _week: Week = attrs.field(alias="hours", converter=_parse_hours)
    holidays: Container[date] = attrs.field(factory=frozenset, converter=_normalise_holidays)
    recurring_holidays: tuple[str, ...] = attrs.field(default=(), converter=_normalise_rules)
    closures: tuple[tuple[datetime, datetime], ...] = attrs.field(
        default=(), converter=_normalise_closures
    )
    _timeline: _Timeline = attrs.field(init=False, eq=False, hash=False)

    search_horizon_days: ClassVar[int] = 3660
    """How far ``add`` and ``next_open`` look for open time before raising NoBusinessTimeError."""

    def __attrs_post_init__(self) -> None:
        if not any(self._week):
            raise CalendarError(
                "hours: the calendar has no open window on any weekday; give at least one, "
                "e.g. hours={'mon': [('09:00', '17:00')]}, or use BusinessCalendar.always()"
            )
        object.__setattr__(self, "_timeline", _Timeline(self))

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def weekly(
        cls,
        open: TimeSpec,
        close: TimeSpec,
        *,
        days: str | Iterable[int | str] = "mon-fri",
        timezone: str | tzinfo = "UTC",
        holidays: object = (),
        recurring_holidays: object = (),
        closures: object = (),
    ) -> BusinessCalendar:
        """The same ``open``-``close`` window on each of ``days`` (``"mon-fri"``, ``"sat-mon"``,
        ``"mon,wed,fri"`` or a list of weekdays).

        >>> BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC").hours["mon"]
        (('09:00', '17:00'),)
        """
        return cls(
            timezone=timezone,
            hours={day: [(open, close)] for day in _parse_days(days)},
            holidays=holidays,
            recurring_holidays=recurring_holidays,
            closures=closures,
        )

    @classmethod
    def always(
        cls,
        *,
        timezone: str | tzinfo = "UTC",
        holidays: object = (),
        recurring_holidays: object = (),
        closures: object = (),
    ) -> BusinessCalendar:
        """Open around the clock (24/7), less any holidays or closures given.

        >>> from datetime import datetime, timedelta, timezone
        >>> start = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
        >>> BusinessCalendar.always().add(start, timedelta(hours=30)) == start + timedelta(hours=30)
        True
        """
        return cls(
            timezone=timezone,
            hours={day: [("00:00", "24:00")] for day in range(7)},
            holidays=holidays,
            recurring_holidays=recurring_holidays,
            closures=closures,
        )

    # -- views ----------------------------------------------------------------------------------

    @property
    def hours(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """The weekly windows as ``{"mon": (("09:00", "17:00"),), ...}`` (open days only)."""
        return {
            WEEKDAYS[index]: tuple(_fmt_window(w) for w in windows)
            for index, windows in enumerate(self._week)
            if windows
        }

    @property
    def timezone_name(self) -> str | None:
        """The zone's IANA name or ``"+HH:MM"`` offset; None for a tzinfo with no name."""
        return zone_name(self.timezone)

    def __repr__(self) -> str:
        zone = self.timezone_name or repr(self.timezone)
        parts = [f"timezone={zone!r}", f"hours={self.hours!r}"]
        if isinstance(self.holidays, frozenset):
            if self.holidays:
                parts.append(f"holidays=<{len(self.holidays)} dates>")
        else:
            parts.append(f"holidays={type(self.holidays).__name__}")
        if self.recurring_holidays:
            parts.append(f"recurring_holidays={self.recurring_holidays!r}")
        if self.closures:
            parts.append(f"closures=<{len(self.closures)} ranges>")
        return f"BusinessCalendar({', '.join(parts)})"

    # -- arithmetic -----------------------------------------------------------------------------

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """The instant ``delta`` of business time after ``start`` (before it when negative).

        For ``delta >= 0`` this is the earliest instant ``u >= start`` with
        ``elapsed(start, u) == delta``: a budget used up exactly at closing time gives the
        closing instant. For ``delta < 0`` it is the latest ``u <= start`` with
        ``elapsed(u, start) == -delta``. The result is in ``start``'s time zone.

        Raises NaiveDatetimeError for a naive ``start``, ValidationError when ``delta`` is not a
        timedelta, and NoBusinessTimeError when no open time lies within
        :attr:`search_horizon_days` in the direction of travel.
        """
        tl = self._timeline
        fast = tl.fast
        if fast is not None and type(start) is datetime and type(delta) is timedelta:
            tz, lo, hi, local, position = fast
            if start.tzinfo is tz and lo <= start < hi:
                k = bisect_right(local, start)
                here = position[k >> 1] + (start - local[k - 1]) if k & 1 else position[k >> 1]
                try:
                    goal = here + delta
                except OverflowError:  # a huge delta: the exact path says why it cannot be
                    goal = here
                else:
                    if delta > _ZERO:
                        if goal <= position[-1] and delta <= _MAX_REACH:
                            m = bisect_left(position, goal) - 1
                            return local[m << 1] + (goal - position[m])
                    elif delta < _ZERO:
                        if goal >= position[0] and -delta <= _MAX_REACH:
                            m = bisect_right(position, goal) - 1
                            return local[m << 1] + (goal - position[m])
                    else:
                        return start
        try:
            t = (start - EPOCH) // US
        except TypeError:
            raise _bad_instant(start, "start") from None
        try:
            d = delta // US
        except TypeError:
            raise _bad_duration(delta, "delta") from None
        if not tl.safe_lo <= t < tl.safe_hi:
            tl.cover(t)
        bounds, cum = tl.data
        k = bisect_right(bounds, t)
        base = cum[k >> 1] + t - bounds[k - 1] if k & 1 else cum[k >> 1]
        _check_reach(t, d, start, delta)
        if d > 0:
            target = base + d
            if target > cum[-1]:
                tl.grow_forward_until(target, t)
                bounds, cum = tl.data
            m = bisect_left(cum, target) - 1
            u = bounds[m << 1] + target - cum[m]
        elif d < 0:
            target = base + d
            if target < cum[0]:
                tl.grow_backward_until(target, t)
                bounds, cum = tl.data
            m = bisect_right(cum, target) - 1
            u = bounds[m << 1] + target - cum[m]
        else:
            return start
        if 0 <= u < _FAST_LIMIT:
            return _fromtimestamp(u / 1e6, start.tzinfo)
        return (EPOCH + timedelta(microseconds=u)).astimezone(start.tzinfo)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between ``start`` and ``end``; negative when ``end`` is before ``start``.

        Additive: ``elapsed(a, c) == elapsed(a, b) + elapsed(b, c)`` for any a, b, c.
        Raises NaiveDatetimeError naming ``start`` or ``end`` when one is naive.
        """
        tl = self._timeline
        fast = tl.fast
        if fast is not None and type(start) is datetime and type(end) is datetime:
            tz, lo, hi, local, position = fast
            if start.tzinfo is tz and end.tzinfo is tz and lo <= start < hi and lo <= end < hi:
                k = bisect_right(local, start)
                from_a = position[k >> 1] + (start - local[k - 1]) if k & 1 else position[k >> 1]
                k = bisect_right(local, end)
                from_b = position[k >> 1] + (end - local[k - 1]) if k & 1 else position[k >> 1]
                return from_b - from_a
        try:
            a = (start - EPOCH) // US
        except TypeError:
            raise _bad_instant(start, "start") from None
        try:
            b = (end - EPOCH) // US
        except TypeError:
            raise _bad_instant(end, "end") from None
        if not tl.safe_lo <= a < tl.safe_hi:
            tl.cover(a)
        if not tl.safe_lo <= b < tl.safe_hi:
            tl.cover(b)
        bounds, cum = tl.data
        k = bisect_right(bounds, a)
        base_a = cum[k >> 1] + a - bounds[k - 1] if k & 1 else cum[k >> 1]
        k = bisect_right(bounds, b)
        base_b = cum[k >> 1] + b - bounds[k - 1] if k & 1 else cum[k >> 1]
        return timedelta(0, 0, base_b - base_a)

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies inside an open window (windows are half-open: open at the
        opening instant, closed at the closing instant)."""
        try:
            t = (at - EPOCH) // US
        except TypeError:
            raise _bad_instant(at, "at") from None
        tl = self._timeline
        if not tl.safe_lo <= t < tl.safe_hi:
            tl.cover(t)
        return bool(bisect_right(tl.data[0], t) & 1)

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when the calendar is open then, else the next opening instant.

        Raises NoBusinessTimeError when nothing opens within :attr:`search_horizon_days`.
        """
        try:
            t = (at - EPOCH) // US
        except TypeError:
            raise _bad_instant(at, "at") from None
        tl = self._timeline
        if not tl.safe_lo <= t < tl.safe_hi:
            tl.cover(t)
        k = bisect_right(tl.data[0], t)
        if k & 1:
            return at
        if k == len(tl.data[0]):
            tl.grow_forward_until(tl.data[1][-1] + 1, t)
        return _to_datetime(tl.data[0][k], at.tzinfo)

    def next_close(self, at: datetime) -> datetime:
        """The instant the window open at ``at`` (or the next one to open) closes.

        Windows that touch (``mon 00:00-24:00`` then ``tue 00:00-...``) count as one: the
        result is the first instant at which the calendar is closed. Raises
        NoBusinessTimeError when nothing opens, or nothing closes, within
        :attr:`search_horizon_days` (so a 24/7 calendar without holidays raises).
        """
        opened = self.next_open(at)
        t = (opened - EPOCH) // US
        tl = self._timeline
        if not tl.safe_lo <= t < tl.safe_hi:
            tl.cover(t)
        # The timeline keeps windows that touch across a year boundary as separate entries
        # (e.g. a 24/7 calendar closes "on" Jan 1 00:00 and reopens at once): skip those.
        limit = t + BusinessCalendar.search_horizon_days * _DAY * 1_000_000
        close = t
        while True:
            bounds = tl.data[0]  # re-read and re-bisect: another thread may have grown it
            k = bisect_right(bounds, close)
            if not k & 1:  # after growing: nothing reopens at ``close``
                return _to_datetime(close, at.tzinfo)
            while k + 1 < len(bounds) and bounds[k + 1] == bounds[k]:
                k += 2
            close = bounds[k]
            if k + 1 < len(bounds):
                return _to_datetime(close, at.tzinfo)
            if close >= limit:
                raise NoBusinessTimeError(
                    f"{self!r} stays open for more than {self.search_horizon_days} days "
                    f"after {opened.isoformat()}; it has no closing instant to give"
                )
            tl.extend_forward()

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals between ``start`` and ``end``, clipped to them, in order.

        Adjacent windows (e.g. 24/7 days) come out as one interval. Results are in ``start``'s
        time zone. Nothing is yielded when ``end <= start``.

        >>> from datetime import datetime, timezone
        >>> cal = BusinessCalendar.weekly("09:00", "17:00", timezone="UTC")
        >>> [(a.hour, b.hour) for a, b in cal.open_intervals(
        ...     datetime(2025, 1, 3, 12, tzinfo=timezone.utc),
        ...     datetime(2025, 1, 6, 10, tzinfo=timezone.utc))]
        [(12, 17), (9, 10)]
        """
        try:
            a = (start - EPOCH) // US
        except TypeError:
            raise _bad_instant(start, "start") from None
        try:
            b = (end - EPOCH) // US
        except TypeError:
            raise _bad_instant(end, "end") from None
        return self._iter_intervals(a, b, start.tzinfo)

    def _iter_intervals(
        self, a: int, b: int, tz: tzinfo | None
    ) -> Iterator[tuple[datetime, datetime]]:
        if b <= a:
            return
        tl = self._timeline
        pending: tuple[int, int] | None = None
        cursor = a  # everything before cursor is done; re-bisect each turn, the lists may grow
        while cursor < b:
            if not tl.safe_lo <= cursor < tl.safe_hi:
                tl.cover(cursor)
            bounds = tl.data[0]
            k = bisect_right(bounds, cursor)
            if k & 1:
                lo, hi = cursor, bounds[k]
            elif k < len(bounds):
                lo, hi = bounds[k], bounds[k + 1]
            elif tl.safe_hi > b:
                break  # nothing else opens before b
            else:
                tl.extend_forward()
                continue
            if lo >= b:
                break
            hi = min(hi, b)
            if pending is not None and lo <= pending[1]:
                pending = (pending[0], hi)
            else:
                if pending is not None:
                    yield _pair(pending, tz)
                pending = (lo, hi)
            cursor = hi
        if pending is not None:
            yield _pair(pending, tz)


def _pair(span: tuple[int, int], tz: tzinfo | None) -> tuple[datetime, datetime]:
    return _to_datetime(span[0], tz), _to_datetime(span[1], tz)


# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------


def _unstructure_calendar(cal: BusinessCalendar) -> dict[str, Any]:
    zone = cal.timezone_name
    if zone is None:
        raise SerializationError(
            f"cannot serialise the time zone {cal.timezone!r}; use a zoneinfo.ZoneInfo, an IANA "
            "name or a fixed offset"
        )
    holidays: Any
    if isinstance(cal.holidays, frozenset):
        holidays = sorted(day.isoformat() for day in cal.holidays)
    elif isinstance(cal.holidays, CountryHolidays):
        holidays = {"country": cal.holidays.country, "subdiv": cal.holidays.subdiv}
    else:
        raise SerializationError(
            f"cannot serialise holidays of type {type(cal.holidays).__name__}; use a list of "
            "dates or CountryHolidays(country=..., subdiv=...) in calendars you store"
        )
    return {
        "timezone": zone,
        "hours": {day: [list(w) for w in windows] for day, windows in cal.hours.items()},
        "holidays": holidays,
        "recurring_holidays": list(cal.recurring_holidays),
        "closures": [[a.isoformat(), b.isoformat()] for a, b in cal.closures],
    }


_CALENDAR_KEYS = frozenset({"timezone", "hours", "holidays", "recurring_holidays", "closures"})


def _structure_calendar(data: Any, _: type) -> BusinessCalendar:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping of calendar fields")
    extra = set(data) - _CALENDAR_KEYS
    if extra:
        raise SerializationError(
            f"$: unknown calendar keys {sorted(extra)}; accepted: {sorted(_CALENDAR_KEYS)}"
        )
    for key in ("timezone", "hours"):
        if key not in data:
            raise SerializationError(f"$.{key}: required field missing")
    holidays_data = data.get("holidays", [])
    holidays: object
    if isinstance(holidays_data, Mapping):
        try:
            holidays = converter.structure(holidays_data, CountryHolidays)
        except Exception as err:
            raise SerializationError(
                f"$.holidays: {holidays_data!r} is not a country spec"
            ) from err
    elif isinstance(holidays_data, list):
        days: list[date] = []
        holidays = days
        for position, text in enumerate(holidays_data):
            try:
                days.append(date.fromisoformat(text))
            except (TypeError, ValueError) as err:
                raise SerializationError(
                    f"$.holidays[{position}]: {text!r} is not an ISO date (YYYY-MM-DD)"
                ) from err
    else:
        raise SerializationError(f"$.holidays: {holidays_data!r} is not a list of ISO dates")
    closures = []
    for position, pair in enumerate(data.get("closures", [])):
        try:
            closures.append((datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1])))
        except (TypeError, ValueError, IndexError) as err:
            raise SerializationError(
                f"$.closures[{position}]: {pair!r} is not a pair of ISO datetimes"
            ) from err
    try:
        return BusinessCalendar(
            timezone=data["timezone"],
            hours=data["hours"],
            holidays=holidays,
            recurring_holidays=data.get("recurring_holidays", ()),
            closures=closures,
        )
    except ValidationError as err:
        raise SerializationError(f"$: {err}") from err


converter.register_unstructure_hook(BusinessCalendar, _unstructure_calendar)
converter.register_structure_hook(BusinessCalendar, _structure_calendar)
